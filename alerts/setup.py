"""Default group permissions and background schedules, kept in step after migrate."""

from django.conf import settings
from django_q.models import Schedule

from incidents.schedules import keep_schedules
from incidents.setup import grant_group_permissions, perms

SCHEDULES = [
    {
        "name": "Alerts: raise an alert for sources gone quiet",
        "func": "alerts.tasks.check_heartbeats",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "Alerts: judge again those whose firing time or silence is up",
        "func": "alerts.tasks.evaluate_due_alerts",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "Alerts: process stored payloads a failure left behind",
        "func": "alerts.tasks.sweep_payloads",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "Alerts: forget old raw payloads",
        "func": "alerts.tasks.prune_payloads",
        "schedule_type": Schedule.DAILY,
    },
]


def ensure_group_permissions(**kwargs) -> None:
    # Commanders and responders tune the rules and silence noise; sources (secrets) and
    # raw payloads are for the administrators and the security group.
    tuners = perms(["view"], ["alert", "alertgroup", "alertsource"]) + perms(
        ["view", "add", "change", "delete"],
        ["detectionrule", "rulecondition", "silence", "silencematcher"],
    )
    grant_group_permissions(
        "alerts",
        {
            "Incident commanders": tuners,
            "Responders": tuners,
            settings.SECURITY_GROUP: tuners
            + perms(["view"], ["alertpayload"])
            + perms(["add", "change"], ["alertsource"]),
        },
    )


def ensure_schedules(**kwargs) -> None:
    keep_schedules(SCHEDULES)
