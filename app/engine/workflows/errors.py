"""The two errors of the workflow language: a refused definition, and a failing expression."""

from __future__ import annotations


class WorkflowError(ValueError):
    """A workflow definition (or a request about one) is refused.

    The message names the file, the task and the field; ``errors`` is ``{"<task>.<field>" or
    "<field>": [message]}`` for a 4xx body and may hold more than one problem.
    """

    def __init__(self, message: str, *, file: str | None = None, task: str | None = None,
                 field: str | None = None) -> None:
        where = []
        if task is not None:
            where.append(f"task '{task}'")
        if field is not None:
            where.append(f"field '{field}'")
        text = ", ".join(where)
        full = f"{text}: {message}" if text else message
        super().__init__(f"{file}: {full}" if file else full)
        self.file = file
        self.task = task
        self.field = field
        self.detail = message
        key = ".".join(part for part in (task, field) if part) or "workflow"
        self.errors: dict[str, list[str]] = {key: [message]}


class ExpressionError(ValueError):
    """A Jinja or YAQL expression is malformed or fails; the message quotes the expression."""
