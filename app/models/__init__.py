"""All models, imported here so metadata is complete for Alembic and relationships resolve."""

from app.models.action import Action
from app.models.audit import AuditEntry
from app.models.event import Enforcement, Event
from app.models.execution import Execution, ExecutionLogLine
from app.models.identity import ApiKey, Identity, PermissionGrant, Role, RoleAssignment
from app.models.inquiry import Inquiry
from app.models.key import Key
from app.models.pack import Pack
from app.models.rule import Rule
from app.models.run_token import RunToken
from app.models.sensor import Sensor, SensorValue
from app.models.timer import TimerState
from app.models.trigger import Trigger
from app.models.webhook import WebhookRequest

__all__ = [
    "Action", "ApiKey", "AuditEntry", "Enforcement", "Event", "Execution", "ExecutionLogLine",
    "Identity", "Inquiry", "Key", "Pack", "PermissionGrant", "Role", "RoleAssignment", "Rule", "RunToken",
    "Sensor", "SensorValue", "TimerState", "Trigger", "WebhookRequest",
]
