"""The permission catalogue and the built-in roles.

A permission is ``<resource>:<verb>``. Grants may be scoped to one pack; a pack-scoped
grant covers the pack's actions, triggers, sensors, rules and their executions (and the
inquiries of the workflows rooted in the pack).
"""

from __future__ import annotations

PERMISSIONS: dict[str, str] = {
    "packs:view": "list and read packs",
    "packs:create": "create packs through the API",
    "packs:update": "change packs",
    "packs:delete": "delete packs and their content",
    "packs:register": "register packs from PACKS_PATH",
    "actions:view": "list and read actions",
    "actions:create": "create actions",
    "actions:update": "change actions",
    "actions:delete": "delete actions",
    "actions:execute": "run actions (manual execute, rerun)",
    "triggers:view": "list and read trigger types",
    "triggers:create": "create trigger types",
    "triggers:update": "change trigger types",
    "triggers:delete": "delete trigger types",
    "sensors:view": "list and read sensors",
    "sensors:create": "create sensors",
    "sensors:update": "change and enable/disable sensors",
    "sensors:delete": "delete sensors",
    "rules:view": "list and read rules",
    "rules:create": "create rules",
    "rules:update": "change and enable/disable rules",
    "rules:delete": "delete rules",
    "events:view": "list and read events and enforcements",
    "events:create": "post events through the API",
    "webhooks:post": "post to webhooks that accept Patchbay credentials",
    "webhooks:view": "list declared webhooks and the requests they received",
    "executions:view": "list and read executions and their logs",
    "executions:cancel": "cancel executions",
    "inquiries:view": "list and read inquiries",
    "inquiries:respond": "answer inquiries",
    "keys:view": "list keys and read non-secret values",
    "keys:create": "create keys",
    "keys:update": "replace keys (PUT)",
    "keys:delete": "delete keys",
    "keys:decrypt": "read secret values",
    "apikeys:create": "create and revoke one's own API keys",
    "rbac:view": "list identities, roles and grants",
    "rbac:manage": "manage identities, roles, grants, assignments and others' API keys",
    "audit:view": "read the audit log",
}

# Permissions that can be scoped to a pack (the rest are global only).
PACK_SCOPED_RESOURCES = frozenset({"packs", "actions", "triggers", "sensors", "rules", "executions", "webhooks",
                                   "events", "inquiries"})

VIEW_PERMISSIONS = sorted(p for p in PERMISSIONS if p.endswith(":view") and not p.startswith(("rbac", "audit")))

# Reading secret values is granted on purpose, never by the catch-all operator role.
OPERATOR_WITHOUT = frozenset({"keys:decrypt"})

BUILTIN_ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": ("Everything, including identities, roles and the audit log.", sorted(PERMISSIONS)),
    "operator": (
        "Runs and manages automation: every content and execution permission; no RBAC, audit or secret values.",
        sorted(p for p in PERMISSIONS if not p.startswith(("rbac:", "audit:")) and p not in OPERATOR_WITHOUT),
    ),
    "viewer": ("Reads everything except secrets, identities and the audit log.", VIEW_PERMISSIONS),
}


def is_pack_scopable(permission: str) -> bool:
    return permission.split(":", 1)[0] in PACK_SCOPED_RESOURCES
