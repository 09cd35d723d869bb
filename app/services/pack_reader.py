"""Finding and reading packs on disk: paths inside PACKS_PATH, and parsing a pack's files.

Nothing here writes to the database; ``read_pack`` returns a checked PackDefinition or
raises a 422 naming every bad file and field.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import current_app

from app.engine import pack_files as files
from app.engine.runner_types import WORKFLOW_RUNNERS
from app.engine.sensor_source import polling_sensor_problem
from app.engine.workflows import WorkflowError, load_workflow
from app.errors import NotFound, ValidationError
from app.pack_paths import EntryPointOutside, inside, locate_entry_point, resolve

MAX_FILE_BYTES = 1024 * 1024
MAX_FILES_PER_FOLDER = 1000


def packs_root() -> Path:
    # Read at call time so a test (or an operator) can point PACKS_PATH elsewhere.
    return Path(current_app.config["PACKS_PATH"]).resolve()


def resolve_pack_dir(root: Path, value: Any) -> Path:
    """The pack directory ``value`` names; 422 outside PACKS_PATH, 404 when it is not there."""
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > 1024:
        raise ValidationError("The request is not valid.", {"packs": [f"{value!r} is not a pack name or path."]})
    if ".." in value.replace("\\", "/").split("/"):
        raise ValidationError("The request is not valid.",
                              {"packs": [f"{value!r} may not contain '..'; name a directory inside PACKS_PATH."]})
    directory = resolve(root / value)  # follows symlinks, so one pointing away is caught below
    if directory is None or not inside(directory, root) or directory == root:
        raise ValidationError("The request is not valid.",
                              {"packs": [f"{value!r} is not a directory inside PACKS_PATH."]})
    try:
        is_dir = directory.is_dir()
        has_meta = is_dir and (directory / "pack.yaml").is_file()
    except (OSError, ValueError):
        # A name no file system can look up (a part longer than 255 bytes, say) names no pack.
        raise ValidationError("The request is not valid.",
                              {"packs": [f"{value!r} is not a pack name or path."]}) from None
    if not is_dir:
        raise NotFound(f"There is no pack {value!r} in PACKS_PATH.", {"packs": [f"{value!r} does not exist."]})
    if not has_meta:
        raise NotFound(f"{value!r} in PACKS_PATH is not a pack (it has no pack.yaml).",
                       {"packs": [f"{value!r} has no pack.yaml."]})
    return directory


def read_pack(directory: Path, relative: str,
              authorize: Callable[[str], None] | None = None) -> files.PackDefinition:
    """Parse every file of the pack; 422 naming each bad file and field."""
    errors = files.PackErrors()
    text = _read(directory, "pack.yaml", errors)
    parsed = files.parse_pack_meta(text, errors) if text is not None else None
    name, meta = parsed if parsed else (Path(relative).name, {})
    if authorize is not None:
        authorize(name)
    definition = files.PackDefinition(name=name, meta=meta)
    if (directory / "config.schema.yaml").exists():
        text = _read(directory, "config.schema.yaml", errors)
        if text is not None:
            definition.config_schema = files.parse_config_schema(text, errors)
    for file, text in _content_files(directory, "triggers", errors):
        _append(definition.triggers, files.parse_trigger_file(file, text, name, errors))
    for file, text in _content_files(directory, "actions", errors):
        action = files.parse_action(file, text, name, errors)
        if action is not None and action.fields["entry_point"]:  # a bad entry_point is "" here
            _check_entry_point(directory, "actions", action, errors)
            _check_workflow(directory, action, errors)
        _append(definition.actions, action)
    for file, text in _content_files(directory, "sensors", errors):
        sensor, inline = files.parse_sensor(file, text, name, errors)
        if sensor is not None and sensor.fields["entry_point"]:
            _check_entry_point(directory, "sensors", sensor, errors)
            _check_polling_sensor(directory, sensor, errors)
        _append(definition.sensors, sensor)
        definition.triggers.extend(inline)
    for file, text in _content_files(directory, "rules", errors):
        _append(definition.rules, files.parse_rule(file, text, name, errors))
    for items in (definition.triggers, definition.actions, definition.sensors, definition.rules):
        _check_unique(items, errors)
    if errors:
        raise ValidationError(
            f"Pack {name!r} (from {relative}/) has {errors.count()} problem(s); nothing was registered.",
            errors.by_file)
    return definition


def _append(items: list[files.Item], item: files.Item | None) -> None:
    if item is not None:
        items.append(item)


def _read(directory: Path, relative: str, errors: files.PackErrors) -> str | None:
    path = resolve(directory / relative)
    if path is None or not inside(path, directory):
        errors.add(relative, "_file", "Is a link leading outside the pack (or a link loop).")
        return None
    try:
        if not path.is_file():
            errors.add(relative, "_file", "Is not a regular file.")
            return None
        if path.stat().st_size > MAX_FILE_BYTES:
            errors.add(relative, "_file", f"Is larger than {MAX_FILE_BYTES} bytes.")
            return None
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        errors.add(relative, "_file", "Is not UTF-8 text.")
    except OSError as exc:
        errors.add(relative, "_file", f"Cannot be read: {exc.strerror or exc}.")
    return None


def _content_files(directory: Path, folder: str, errors: files.PackErrors) -> list[tuple[str, str]]:
    """(relative path, text) of each ``<folder>/*.yaml`` (and ``.yml``) file."""
    path = directory / folder
    if not path.is_dir():
        return []
    if not inside(resolve(path), directory):
        errors.add(folder, "_file", "Is a link leading outside the pack (or a link loop).")
        return []
    try:
        names = sorted(p.name for p in path.iterdir() if p.suffix in (".yaml", ".yml") and not p.name.startswith("."))
    except OSError as exc:
        errors.add(folder, "_file", f"Cannot be read: {exc.strerror or exc}.")
        return []
    if len(names) > MAX_FILES_PER_FOLDER:
        errors.add(folder, "_file", f"Holds more than {MAX_FILES_PER_FOLDER} YAML files.")
        return []
    found = []
    for name in names:
        relative = f"{folder}/{name}"
        text = _read(directory, relative, errors)
        if text is not None:
            found.append((relative, text))
    return found


def _check_entry_point(directory: Path, folder: str, item: files.Item, errors: files.PackErrors) -> None:
    entry_point = item.fields["entry_point"]
    try:
        found = locate_entry_point(directory, folder, entry_point)
    except EntryPointOutside:
        errors.add(item.source_file, "entry_point", "Leads outside the pack.")
        return
    if found is None:
        errors.add(item.source_file, "entry_point",
                   f"There is no file {entry_point} or {folder}/{entry_point} in the pack.")


def _check_workflow(directory: Path, action: files.Item, errors: files.PackErrors) -> None:
    """A workflow action's definition is checked when its pack registers (the error names the
    file, the task and the field), never first when it runs."""
    if action.fields.get("runner_type") not in WORKFLOW_RUNNERS:
        return
    try:
        found = locate_entry_point(directory, "actions", action.fields["entry_point"])
    except EntryPointOutside:
        return  # reported by _check_entry_point
    if found is None:
        return
    relative = str(found.relative_to(directory))
    text = _read(directory, relative, errors)
    if text is None:
        return
    try:
        load_workflow(text, relative)
    except WorkflowError as exc:
        for where, messages in exc.errors.items():
            for message in messages:
                errors.add(relative, where, message)


def _check_polling_sensor(directory: Path, sensor: files.Item, errors: files.PackErrors) -> None:
    """Refuse a sensor that is not a PollingSensor, reading its source (never importing it)."""
    try:
        found = locate_entry_point(directory, "sensors", sensor.fields["entry_point"])
    except EntryPointOutside:
        return  # reported by _check_entry_point
    if found is None or not sensor.fields["class_name"] or not found.name.endswith(".py"):
        return
    text = _read(directory, str(found.relative_to(directory)), errors)
    problem = polling_sensor_problem(text, sensor.fields["class_name"]) if text is not None else None
    if problem:
        errors.add(sensor.source_file, "class_name", problem)


def pack_directory(path: str | None) -> Path | None:
    """The absolute directory of a pack whose ``Pack.path`` is ``path`` (relative to this
    host's PACKS_PATH), or None when it is not there or would lead outside PACKS_PATH."""
    if not path or "\x00" in path:
        return None
    root = packs_root()
    directory = resolve(root / path)
    return directory if directory and inside(directory, root) and directory != root and directory.is_dir() else None


def _check_unique(items: list[files.Item], errors: files.PackErrors) -> None:
    first: dict[str, str] = {}
    for item in items:
        if item.name in first:
            errors.add(item.source_file, "name", f"{item.name!r} is also defined in {first[item.name]}.")
        else:
            first[item.name] = item.source_file


def declared_name(directory: Path) -> str | None:
    """The pack name ``directory``'s pack.yaml declares (None when it cannot be read)."""
    errors = files.PackErrors()
    text = _read(directory, "pack.yaml", errors)
    parsed = files.parse_pack_meta(text, errors) if text is not None else None
    return parsed[0] if parsed and not errors else None
