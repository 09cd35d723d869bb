"""The permission and role tables of docs/auth.md, generated from the catalogue."""

from __future__ import annotations

from app.security.permissions import BUILTIN_ROLES, PERMISSIONS, is_pack_scopable


def permissions_table() -> str:
    """Markdown: every permission, what it allows, whether it can be pack-scoped, who has it."""
    lines = ["| permission | allows | pack-scopable | admin | operator | viewer |",
             "|---|---|---|---|---|---|"]
    for name, text in PERMISSIONS.items():
        holders = ["yes" if name in BUILTIN_ROLES[role][1] else "" for role in ("admin", "operator", "viewer")]
        lines.append(f"| `{name}` | {text} | {'yes' if is_pack_scopable(name) else ''} | " + " | ".join(holders) + " |")
    return "\n".join(lines)


def roles_table() -> str:
    lines = ["| role | description |", "|---|---|"]
    lines += [f"| `{name}` | {description} |" for name, (description, _) in BUILTIN_ROLES.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(roles_table() + "\n\n" + permissions_table())
