"""Register packs from PACKS_PATH: write the rows of what pack_reader read, prune what left the disk.

Everything happens in the caller's transaction and only flushes; the caller commits once,
so a pack with one bad file registers nothing (the error handler rolls back). Rows whose
``source_file`` is NULL were made through the API and are never pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import array

from app.db import db
from app.engine import pack_files as files
from app.errors import Conflict, ValidationError
from app.models import Action, Pack, Rule, Sensor, Trigger
from app.services.content import find_by_ref, missing
from app.services.pack_reader import (
    declared_name,
    pack_directory,
    packs_root,
    read_pack,
    resolve_pack_dir,
)
from app.services.packs import find_pack
from app.services.rules import fit_problems
from app.services.sensors import trigger_type_problems
from app.services.webhook_declarations import (
    check_webhooks_agree,
    is_webhook_trigger,
    normalize_url,
    webhook_parameter_errors,
)

KINDS = (("triggers", Trigger), ("actions", Action), ("sensors", Sensor), ("rules", Rule))
# Transaction-scoped advisory lock: two registrations at once (two release phases, the API
# and the CLI) run one after the other instead of racing on the same rows.
REGISTRATION_LOCK = 0x7061636B  # "pack"


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


@dataclass
class RegistrationResult:
    """What registering one pack did."""

    pack: str
    path: str
    version: str
    pack_created: bool = False
    counts: dict[str, Counts] = field(default_factory=lambda: {kind: Counts() for kind, _ in KINDS})

    def summary(self) -> str:
        parts = "; ".join(
            f"{kind} {c.created} created, {c.updated} updated, {c.unchanged} unchanged, {c.removed} removed"
            for kind, c in self.counts.items()
        )
        return f"pack {self.pack} {self.version} ({'new' if self.pack_created else 'updated'}, from {self.path}/): {parts}"

    def as_dict(self) -> dict[str, Any]:
        return {"pack": self.pack, "path": self.path, "version": self.version, "pack_created": self.pack_created,
                **{kind: vars(c) for kind, c in self.counts.items()}}


def register_pack(name_or_path: str) -> RegistrationResult:
    """Register one pack (a directory name or a path inside PACKS_PATH)."""
    return register_packs([name_or_path])[0]


def register_all(authorize: Callable[[str], None] | None = None) -> list[RegistrationResult]:
    """Register every directory of PACKS_PATH that holds a ``pack.yaml``."""
    root = packs_root()
    names = sorted(d.name for d in root.iterdir()
                   if not d.name.startswith(".") and d.is_dir() and (d / "pack.yaml").is_file())
    return register_packs(names, authorize) if names else []


def register_packs(names_or_paths: Sequence[str],
                   authorize: Callable[[str], None] | None = None) -> list[RegistrationResult]:
    """Register several packs together; rules may use content of any of them.

    ``authorize(pack_name)`` is called as soon as a pack's name is read from its pack.yaml,
    before its other files, and raises to refuse it (the API's pack-scoped grants).
    """
    root = packs_root()
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REGISTRATION_LOCK})
    directories: list[Path] = []
    for value in names_or_paths:
        directory = resolve_pack_dir(root, value)
        if directory not in directories:
            directories.append(directory)
    writers: list[_PackWriter] = []
    for directory in directories:
        relative = directory.relative_to(root).as_posix()
        definition = read_pack(directory, relative, authorize)
        for other in writers:
            if other.definition.name == definition.name:
                raise ValidationError(
                    f"Directories {other.result.path!r} and {relative!r} both declare pack {definition.name!r}.",
                    {"packs": [f"Pack {definition.name!r} is declared twice."]})
        _ensure_not_registered_elsewhere(definition.name, relative)
        writers.append(_PackWriter(definition, relative))
    # Content first, rules second, pruning last: references across the packs of one call
    # resolve in any order, and a rule removed in one pack frees an action removed in another.
    for writer in writers:
        writer.write_content()
    for writer in writers:
        writer.write_rules()
    for writer in writers:
        writer.prune(Rule, "rules")
        writer.prune(Sensor, "sensors")
    check_webhooks_agree({url for writer in writers for url in writer.webhook_urls})
    for writer in writers:
        writer.prune(Action, "actions")
        writer.prune(Trigger, "triggers")
    return [writer.result for writer in writers]


def _ensure_not_registered_elsewhere(name: str, relative: str) -> None:
    """409 when pack ``name`` is registered from another directory that still declares it.

    Two directories declaring one pack would take it over from each other on every
    registration, each pruning the other's content. A pack whose directory moved (the old
    one is gone or declares another name now) is simply registered from its new place.
    """
    pack = find_pack(name)
    if pack is None or not pack.path or pack.path == relative:
        return
    old = pack_directory(pack.path)
    if old is None or declared_name(old) != name:
        return
    raise Conflict(f"Pack {name!r} is registered from {pack.path}/, which still declares it; "
                   f"{relative}/ declares it too. Rename one of them, or remove {pack.path}/.",
                   {"packs": [f"Pack {name!r} is already registered from {pack.path!r}."]})


class _PackWriter:
    """Writes one parsed pack's rows and remembers which it saw, for pruning."""

    def __init__(self, definition: files.PackDefinition, relative: str) -> None:
        self.definition = definition
        self.result = RegistrationResult(definition.name, relative, definition.meta["version"])
        self.seen: dict[type, set[int]] = {model: set() for _, model in KINDS}
        self.pack: Pack | None = None
        self.webhook_urls: set[str] = set()

    def write_content(self) -> None:
        definition = self.definition
        pack = find_pack(definition.name)
        if pack is None:
            pack = Pack(name=definition.name)
            db.session.add(pack)
            self.result.pack_created = True
        for key, value in {**definition.meta, "path": self.result.path,
                           "config_schema": definition.config_schema}.items():
            setattr(pack, key, value)
        db.session.flush()
        self.pack = pack
        for item in definition.triggers:
            self._upsert(Trigger, "triggers", item, item.fields)
        for item in definition.actions:
            self._upsert(Action, "actions", item, item.fields)
        errors = files.PackErrors()
        for item in definition.sensors:
            # Its inline trigger types were just written; those it names must exist already.
            for message in trigger_type_problems(item.refs["named"]):
                errors.add(item.source_file, "trigger_types", message)
            self._upsert(Sensor, "sensors", item, item.fields)
        self._raise_if(errors)

    def write_rules(self) -> None:
        errors = files.PackErrors()
        for item in self.definition.rules:
            trigger = find_by_ref(Trigger, item.refs["trigger"]) if item.refs["trigger"] else None
            action = find_by_ref(Action, item.refs["action"]) if item.refs["action"] else None
            if trigger is None and item.refs["trigger"]:
                errors.add(item.source_file, "trigger.type", missing("Trigger", item.refs["trigger"]))
            if action is None and item.refs["action"]:
                errors.add(item.source_file, "action.ref", missing("Action", item.refs["action"]))
            if trigger is None or action is None:
                continue
            # The API's check of a rule against its trigger and action (app/services/rules.py).
            problems = fit_problems(trigger, action, {key: item.fields[key]
                                                      for key in ("trigger_parameters", "action_parameters")})
            files.report_problems(errors, item.source_file, problems, rename=files.RULE_FILE_FIELDS)
            if is_webhook_trigger(trigger) and not errors.by_file.get(item.source_file):
                for message in webhook_parameter_errors(self.definition.name, item.fields["trigger_parameters"]):
                    errors.add(item.source_file, "trigger.parameters", message)
                self.webhook_urls.add(normalize_url(str(item.fields["trigger_parameters"].get("url", ""))))
            self._upsert(Rule, "rules", item, {**item.fields, "trigger_id": trigger.id, "action_id": action.id})
        self._raise_if(errors)

    def prune(self, model: type, kind: str) -> None:
        """Delete this pack's rows that came from files no longer there (not API-made rows)."""
        assert self.pack is not None
        query = select(model).where(model.pack_id == self.pack.id, model.source_file.is_not(None))
        if self.seen[model]:
            query = query.where(model.id.not_in(sorted(self.seen[model])))
        stale = list(db.session.scalars(query.order_by(model.id)))
        if not stale:
            return
        if model in (Action, Trigger):
            used = _still_used(model, stale)
            if used:
                label, users = ("Action", "rules") if model is Action else ("Trigger type", "rules or sensors")
                raise Conflict(f"{label} {', '.join(sorted(used))} left the pack but {users} still use it; "
                               f"change or delete those {users} first.", used)
        for row in stale:
            db.session.delete(row)
        db.session.flush()
        self.result.counts[kind].removed += len(stale)

    def _upsert(self, model: type, kind: str, item: files.Item, values: dict[str, Any]) -> None:
        assert self.pack is not None
        ref = f"{self.pack.name}.{item.name}"
        row = find_by_ref(model, ref)
        values = {**values, "source_file": item.source_file}
        counts = self.result.counts[kind]
        if row is None:
            row = model(pack_id=self.pack.id, pack_name=self.pack.name, name=item.name, ref=ref, **values)
            db.session.add(row)
            counts.created += 1
        else:
            # Same ref, same row: ids stay stable across re-registration (and an API-made
            # row of that ref is adopted by the file).
            changed = [key for key, value in values.items() if getattr(row, key) != value]
            for key in changed:
                setattr(row, key, values[key])
            if changed:
                counts.updated += 1
            else:
                counts.unchanged += 1
        db.session.flush()
        self.seen[model].add(row.id)

    def _raise_if(self, errors: files.PackErrors) -> None:
        if errors:
            raise ValidationError(
                f"Pack {self.definition.name!r} (from {self.result.path}/) has {errors.count()} problem(s); "
                "nothing was registered.", errors.by_file)


def _still_used(model: type, stale: list[Any]) -> dict[str, list[str]]:
    """Why each stale action or trigger type cannot go: the rules (and, for trigger types,
    the sensors, whose ``trigger_types`` is a list of refs and has no foreign key) using it."""
    refs = {row.id: row.ref for row in stale}
    column = Rule.action_id if model is Action else Rule.trigger_id
    used: dict[str, list[str]] = {}
    for rule_ref, item_id in db.session.execute(
        select(Rule.ref, column).where(column.in_(sorted(refs))).order_by(Rule.ref)
    ):
        used.setdefault(refs[item_id], []).append(f"Removed from the pack but still used by rule {rule_ref!r}.")
    if model is Trigger:
        for sensor_ref, emitted in db.session.execute(
            select(Sensor.ref, Sensor.trigger_types)
            .where(Sensor.trigger_types.has_any(array(sorted(refs.values())))).order_by(Sensor.ref)
        ):
            for ref in sorted(set(emitted) & set(refs.values())):
                used.setdefault(ref, []).append(f"Removed from the pack but still emitted by sensor {sensor_ref!r}.")
    return used

