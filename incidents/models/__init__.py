"""Models of the incidents app, split by concern; import them from here."""

from .access import APIKey, IdempotencyRecord
from .core import (
    MULTI_HOLDER_ROLES,
    OPEN_STATUSES,
    DetectionSource,
    Environment,
    Incident,
    IncidentQuerySet,
    IncidentType,
    ReferenceCounter,
    Role,
    RoleAssignment,
    Service,
    Severity,
    SeverityQuerySet,
    Source,
    Status,
    TimelineEvent,
)

__all__ = [
    "MULTI_HOLDER_ROLES",
    "OPEN_STATUSES",
    "APIKey",
    "DetectionSource",
    "Environment",
    "IdempotencyRecord",
    "Incident",
    "IncidentQuerySet",
    "IncidentType",
    "ReferenceCounter",
    "Role",
    "RoleAssignment",
    "Service",
    "Severity",
    "SeverityQuerySet",
    "Source",
    "Status",
    "TimelineEvent",
]
