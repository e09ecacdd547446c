"""The commander's console, one module per concern. Thin: every change goes through
incidents.services. Importing the package registers every admin; other apps import the
shared bases from here, and add to the core's admins with `contribute` (contributions.py)."""

from . import access, catalogue, comms, incident  # noqa: F401  (register the admins)
from .base import (
    HIDDEN_INCIDENT,
    STATUS_COLORS,
    GuardedHistoryAdmin,
    KeepsTypedInput,
    Refused,
    ServiceBackedAdmin,
    VisibleHistoryContext,
    badge,
    refusals,
)
from .contributions import ContributableAdmin, Contributions, Inline, Panel, contribute
from .incident import IncidentAdmin

__all__ = [
    "HIDDEN_INCIDENT",
    "STATUS_COLORS",
    "ContributableAdmin",
    "Contributions",
    "GuardedHistoryAdmin",
    "IncidentAdmin",
    "Inline",
    "KeepsTypedInput",
    "Panel",
    "Refused",
    "ServiceBackedAdmin",
    "VisibleHistoryContext",
    "badge",
    "contribute",
    "refusals",
]
