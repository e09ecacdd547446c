"""Default group permissions and background schedules, kept in step after migrate."""

from django.conf import settings
from django_q.models import Schedule

from incidents.schedules import keep_schedules
from incidents.setup import grant_group_permissions, perms

SCHEDULES = [
    {
        "name": "On-call: send the page steps that are due",
        "func": "oncall.tasks.advance_pages",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "On-call: escalate stuck incidents",
        "func": "oncall.tasks.escalate_stuck",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
]


def ensure_group_permissions(**kwargs) -> None:
    # Commanders and responders run the rota (swaps and overrides are everyday work) and
    # see the policies; changing who is paged when is for the commanders.
    everyone = perms(
        ["view"],
        [
            "team",
            "rotation",
            "rotationmember",
            "escalationpolicy",
            "policylevel",
            "activationrule",
            "stuckrule",
            "page",
        ],
    )
    rota = perms(["view", "add", "change", "delete"], ["override"])
    planners = perms(
        ["view", "add", "change", "delete"],
        [
            "team",
            "rotation",
            "rotationmember",
            "escalationpolicy",
            "policylevel",
            "activationrule",
            "stuckrule",
        ],
    )
    grant_group_permissions(
        "oncall",
        {
            # Commanders may answer a page for someone (they know it is handled).
            "Incident commanders": everyone + rota + planners + perms(["change"], ["page"]),
            "Responders": everyone + rota,
            settings.SECURITY_GROUP: everyone + rota,
        },
    )


def ensure_schedules(**kwargs) -> None:
    keep_schedules(SCHEDULES)
