"""The Orquesta workflow language: parsing and validation, expressions, and the conductor.

Pure logic: no database, broker or web framework. The conductor keeps all of a workflow's
state in one JSON-serialisable dict that its caller stores between steps.
"""

from .conductor import Conductor, TaskRequest
from .errors import ExpressionError, WorkflowError
from .expressions import ExpressionScope, evaluate
from .spec import ENGINE_COMMANDS, MAX_DOCUMENT, WorkflowSpec, load_workflow

# Where a rerun's prepared state (``Conductor.rerun``) reaches the runner: the key, in the
# runner state a new execution starts with, that the runner resumes from instead of ``start``.
RERUN_STATE = "workflow_rerun"

__all__ = [
    "ENGINE_COMMANDS",
    "MAX_DOCUMENT",
    "RERUN_STATE",
    "Conductor",
    "ExpressionError",
    "ExpressionScope",
    "TaskRequest",
    "WorkflowError",
    "WorkflowSpec",
    "evaluate",
    "load_workflow",
]
