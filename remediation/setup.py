"""Default group permissions and background schedules, kept in step after migrate."""

from django.conf import settings
from django_q.models import Schedule

from incidents.schedules import keep_schedules
from incidents.setup import grant_group_permissions, perms

SCHEDULES = [
    {
        # Hourly: the dedup keys make each reminder once a day (digest once a week), and
        # a worker that was down catches up within the hour.
        "name": "Remind owners of overdue, due-soon and long-blocked action items",
        "func": "remediation.tasks.send_reminders",
        "schedule_type": Schedule.HOURLY,
    },
]


def ensure_group_permissions(**kwargs) -> None:
    # Progress updates are a record: added (through the services), never changed.
    writers = (
        perms(["view", "add", "change"], ["actionitem"])
        + perms(["view", "add"], ["actionitemupdate"])
        + perms(["view"], ["remediationreport"])
    )
    grant_group_permissions(
        "remediation",
        {
            "Incident commanders": writers,
            "Responders": writers,
            settings.SECURITY_GROUP: writers,
            # The review pages list action items with their live status; the report is
            # the follow-up's scoreboard.
            "Stakeholders": perms(["view"], ["actionitem", "remediationreport"]),
        },
    )


def ensure_schedules(**kwargs) -> None:
    keep_schedules(SCHEDULES)
