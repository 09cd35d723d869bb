"""Webhooks as rules declare them: a url exists while an enabled rule on ``core.webhook`` names it.

Every rule on one url must declare the same auth, limits and allow-list (409 otherwise), so
a webhook has one declaration whichever rule is read. Secrets are named, never written in a
rule: ``secret_key`` is a reference that ``resolve_secret`` turns into the secret's text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select

from app.db import db
from app.engine.parameters import secret_config_keys
from app.errors import Conflict, ValidationError
from app.models import Rule, Trigger
from app.services import pack_config
from app.services.packs import find_pack

# ``core.st2.webhook`` is StackStorm's name for the same trigger type.
WEBHOOK_TRIGGERS = ("core.webhook", "core.st2.webhook")
AUTH_MODES = ("patchbay", "signature", "token")
SECRET_MODES = ("signature", "token")
DEFAULT_TOKEN_HEADER = "X-Webhook-Token"
# The settings rules on one url must agree on (everything in trigger_parameters but the url).
SETTINGS = ("auth", "secret_key", "token_header", "max_body_bytes", "allowed_cidrs", "rate_limit")


def normalize_url(url: str) -> str:
    """A webhook's name without leading or trailing '/' (StackStorm ignores them too)."""
    return url.strip("/")


def is_webhook_trigger(trigger: Trigger | None) -> bool:
    return trigger is not None and trigger.ref in WEBHOOK_TRIGGERS


def settings_of(parameters: dict[str, Any]) -> dict[str, Any]:
    """A rule's webhook settings with the defaults filled in, so omitted and default agree."""
    found = {name: parameters.get(name) for name in SETTINGS}
    found["auth"] = found["auth"] or "patchbay"
    if found["auth"] == "token":
        found["token_header"] = found["token_header"] or DEFAULT_TOKEN_HEADER
    else:
        found["token_header"] = None
    if found["auth"] == "patchbay":
        found["secret_key"] = None
    found["allowed_cidrs"] = sorted(_network_text(c) for c in found["allowed_cidrs"] or [])
    return found


def _network_text(cidr: str) -> str:
    # Normalized so 10.0.0.1/8 and 10.0.0.0/8 agree; an invalid one is left for the 422.
    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError:
        return cidr


@dataclass
class Webhook:
    """One declared url: its settings, the rules that declared it and their packs."""

    url: str
    trigger: Trigger
    settings: dict[str, Any]
    rules: list[Rule] = field(default_factory=list)

    @property
    def packs(self) -> list[str]:
        return sorted({rule.pack_name for rule in self.rules})

    @property
    def auth(self) -> str:
        return self.settings["auth"]

    @property
    def secret_pack(self) -> str:
        """The pack whose config holds the secret (one pack: the agreement check sees to it)."""
        return self.rules[0].pack_name


# Built once: every webhook request runs the second.
_ENABLED_WEBHOOK_RULES = (select(Rule).join(Trigger, Rule.trigger_id == Trigger.id)
                          .where(Rule.enabled.is_(True), Trigger.ref.in_(WEBHOOK_TRIGGERS)).order_by(Rule.id))
_AT_URLS = _ENABLED_WEBHOOK_RULES.where(
    func.btrim(Rule.trigger_parameters["url"].astext, "/").in_(bindparam("urls", expanding=True)))


def _enabled_webhook_rules(urls: Iterable[str] | None = None) -> list[Rule]:
    if urls is None:
        return list(db.session.scalars(_ENABLED_WEBHOOK_RULES).unique())
    return list(db.session.scalars(_AT_URLS, {"urls": sorted(set(urls))}).unique())


def _group(rules: list[Rule]) -> dict[str, list[Rule]]:
    grouped: dict[str, list[Rule]] = {}
    for rule in rules:
        grouped.setdefault(normalize_url(str(rule.trigger_parameters.get("url", ""))), []).append(rule)
    return grouped


def find_webhook(url: str) -> Webhook | None:
    """The webhook declared at ``url`` (normalized), or None when no enabled rule names it."""
    rules = _enabled_webhook_rules([url])
    if not rules:
        return None
    return Webhook(url, rules[0].trigger, settings_of(rules[0].trigger_parameters), rules)


def list_webhooks() -> list[Webhook]:
    """Every declared webhook, by url."""
    return [Webhook(url, rules[0].trigger, settings_of(rules[0].trigger_parameters), rules)
            for url, rules in sorted(_group(_enabled_webhook_rules()).items())]


def webhook_parameter_errors(pack_name: str, parameters: dict[str, Any]) -> list[str]:
    """What the schema cannot say about a webhook rule's trigger parameters (empty when valid)."""
    problems = []
    if not normalize_url(str(parameters.get("url", ""))):
        problems.append("url: must name the webhook (not only '/').")
    for cidr in parameters.get("allowed_cidrs") or []:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"allowed_cidrs: {cidr!r} is not an address or network (e.g. 10.0.0.0/8).")
    limit = parameters.get("max_body_bytes")
    if limit is not None and limit > current_app.config["MAX_CONTENT_LENGTH"]:
        problems.append(f"max_body_bytes: must be at most the global limit, {current_app.config['MAX_CONTENT_LENGTH']}.")
    auth = parameters.get("auth") or "patchbay"
    reference = parameters.get("secret_key")
    if auth in SECRET_MODES and not reference:
        problems.append(f"secret_key: {auth} auth needs the name of the secret (a key reference).")
    elif auth in SECRET_MODES and reference not in secret_reference_names(pack_name):
        problems.append(f"secret_key: {reference!r} names no secret of pack {pack_name!r}: declare it with "
                        "`secret: true` in the pack's config schema and set it in the pack's config.")
    if auth == "patchbay" and (reference or parameters.get("token_header")):
        problems.append("secret_key and token_header apply to signature and token auth only.")
    return problems


def secret_reference_names(pack_name: str) -> set[str]:
    """The names a rule of ``pack_name`` may use as ``secret_key``."""
    pack = find_pack(pack_name)
    return secret_config_keys(pack.config_schema) if pack is not None else set()


def resolve_secret(pack_name: str, reference: str) -> str | None:
    """The secret a key reference names, or None when it is not set.

    The one place a reference is resolved: today it names a config value of the rule's pack
    declared ``secret: true``; the key store will resolve the same names when it exists.
    """
    pack = find_pack(pack_name)  # once: every webhook request resolves its secret
    if pack is None or reference not in secret_config_keys(pack.config_schema):
        return None
    # From Vault, read once per change of the pack per process (app/services/pack_config.py).
    value = pack_config.runtime(pack)[0].get(reference)
    # A template would need rendering with kv, which does not exist yet: treat it as unset.
    if not isinstance(value, str) or not value or "{{" in value or "{%" in value:
        return None
    return value


def check_webhook_rule(rule: Rule) -> None:
    """422 for a webhook rule whose settings cannot work; 409 when it disagrees with its url's rules."""
    if not is_webhook_trigger(rule.trigger):
        return
    problems = webhook_parameter_errors(rule.pack_name, rule.trigger_parameters or {})
    if problems:
        raise ValidationError("The rule's webhook settings are not valid.", {"trigger_parameters": problems})
    if rule.enabled:
        check_webhooks_agree([normalize_url(str(rule.trigger_parameters.get("url", "")))])


def _comparable(rule: Rule) -> dict[str, Any]:
    settings = settings_of(rule.trigger_parameters)
    # Header names are case-insensitive.
    return {**settings, "token_header": (settings["token_header"] or "").lower()}


def check_webhooks_agree(urls: Iterable[str] | None = None) -> None:
    """409 naming each url whose enabled rules declare different settings (flushed rows)."""
    conflicts: dict[str, list[str]] = {}
    for url, rules in _group(_enabled_webhook_rules(urls)).items():
        first = rules[0]
        expected = _comparable(first)
        for other in rules[1:]:
            if _comparable(other) != expected:
                conflicts.setdefault(url, []).append(
                    f"Rule {other.ref!r} declares other webhook settings than rule {first.ref!r}.")
            elif expected["auth"] in SECRET_MODES and other.pack_name != first.pack_name:
                # The secret is read from one pack's config; two packs could hold two secrets.
                conflicts.setdefault(url, []).append(
                    f"Rule {other.ref!r} and rule {first.ref!r} reference a secret from different packs.")
    if conflicts:
        raise Conflict("Rules on the same webhook url must declare the same auth, limits and allow-list.",
                       {"webhooks": conflicts})
