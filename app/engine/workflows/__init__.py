"""The Orquesta workflow language: parsing and validation, expressions, and the conductor.

Pure logic: no database, broker or web framework. The conductor keeps all of a workflow's
state in one JSON-serialisable dict that its caller stores between steps.
"""

from .conductor import Conductor, TaskRequest
from .errors import ExpressionError, WorkflowError
from .expressions import ExpressionScope, evaluate
from .spec import ENGINE_COMMANDS, WorkflowSpec, load_workflow

__all__ = [
    "ENGINE_COMMANDS",
    "Conductor",
    "ExpressionError",
    "ExpressionScope",
    "TaskRequest",
    "WorkflowError",
    "WorkflowSpec",
    "evaluate",
    "load_workflow",
]
