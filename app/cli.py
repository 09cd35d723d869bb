"""The ``patchbay`` command: release step, migrations, pack registration, admin bootstrap."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from app.config import ConfigError


@contextlib.contextmanager
def fail_on_config_error(exit_status: int = 2) -> Iterator[None]:
    """Turn a ConfigError into one line on stderr and exit with ``exit_status``."""
    try:
        yield
    except ConfigError as exc:
        print(f"patchbay: configuration error: {exc}", file=sys.stderr, flush=True)
        sys.exit(exit_status)


def _app():
    with fail_on_config_error():
        from app import create_app

        return create_app()


@click.group()
def main() -> None:
    """Patchbay: event-driven automation on Flask, PostgreSQL and Celery."""


@main.command()
@click.argument("revision", default="head")
def migrate(revision: str) -> None:
    """Upgrade the database schema (to REVISION, default head)."""
    from app.migrate import upgrade

    app = _app()
    upgrade(app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@main.command()
@click.option("--generate-admin", is_flag=True, help="create an admin with a generated password if none exists")
def release(generate_admin: bool) -> None:
    """The release step: migrate, built-in roles, first admin, register the packs."""
    from app.migrate import upgrade
    from app.services.release import run_release

    app = _app()
    upgrade(app.config["DATABASE_URL"])
    with app.app_context():
        for line in run_release(generate_admin=generate_admin):
            click.echo(line)


@main.command("register-packs")
@click.argument("names_or_paths", nargs=-1)
def register_packs(names_or_paths: tuple[str, ...]) -> None:
    """Register packs (names or paths inside PACKS_PATH); all of PACKS_PATH without arguments."""
    from app.db import db
    from app.errors import APIError
    from app.services.pack_loader import register_all, register_pack

    app = _app()
    with app.app_context():
        try:
            results = [register_pack(n) for n in names_or_paths] if names_or_paths else register_all()
            db.session.commit()
        except APIError as exc:
            db.session.rollback()
            click.echo(f"error: {exc.message}", err=True)
            for field, problems in exc.errors.items():
                click.echo(f"  {field}: {problems}", err=True)
            sys.exit(1)
        for result in results:
            click.echo(result.summary())


@main.command("create-admin")
@click.option("--name", prompt="Admin username", default="admin", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="prompted for when not given (safer: not in shell history)")
def create_admin(name: str, password: str) -> None:
    """Create an admin, or make an existing identity admin, with the password you type."""
    from app.db import db
    from app.errors import APIError
    from app.services.bootstrap import make_admin

    app = _app()
    with app.app_context():
        try:
            make_admin(name, password)
            db.session.commit()
        except APIError as exc:
            db.session.rollback()
            click.echo(f"error: {exc.message}", err=True)
            for field, problems in exc.errors.items():
                click.echo(f"  {field}: {' '.join(problems)}", err=True)
            sys.exit(1)
    click.echo(f"admin {name!r} is ready; log in with POST /api/v1/auth/login")


if __name__ == "__main__":
    main()
