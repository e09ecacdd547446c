"""The alerts app in the admin, one module per concern: sources and raw payloads
(intake), alerts and groups (and the alerts on the incident admin), rules, the "try a
rule" page and silences. Thin: every change is one call to alerts.services."""

from . import alerts, intake, rules  # noqa: F401  (register the admins)
from .alerts import AlertAdmin, AlertGroupAdmin
from .intake import AlertPayloadAdmin, AlertSourceAdmin
from .rules import DetectionRuleAdmin, SilenceAdmin

__all__ = [
    "AlertAdmin",
    "AlertGroupAdmin",
    "AlertPayloadAdmin",
    "AlertSourceAdmin",
    "DetectionRuleAdmin",
    "SilenceAdmin",
]
