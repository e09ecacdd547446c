"""Default group permissions and background schedules, kept in step after migrate."""

from django.conf import settings
from django_q.models import Schedule

from incidents.schedules import keep_schedules
from incidents.setup import grant_group_permissions, perms

SCHEDULES = [
    {
        # Each warning is sent once (stamped under a row lock), so every minute is cheap
        # and "6 h left" is on time.
        "name": "Forensics: warn of breach notification deadlines",
        "func": "forensics.tasks.warn_breach_deadlines",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "Forensics: verify the evidence locker's hashes",
        "func": "forensics.tasks.verify_evidence",
        "schedule_type": Schedule.DAILY,
    },
]


def ensure_group_permissions(**kwargs) -> None:
    # Evidence is added, never changed (the custody log is written by the services); a
    # breach assessment is changed through its services, never deleted.
    responders = (
        perms(["view", "add"], ["evidenceitem"])
        + perms(["view"], ["custodyrecord"])
        + perms(["view", "add", "change"], ["breachassessment"])
    )
    grant_group_permissions(
        "forensics",
        {
            "Incident commanders": responders,
            "Responders": responders,
            settings.SECURITY_GROUP: responders,
            # They record the notifications; they read evidence of the incidents they
            # take part in (confidential ones only as participants, like everyone).
            settings.BREACH_LEGAL_GROUP: perms(["view"], ["evidenceitem", "custodyrecord"])
            + perms(["view", "add", "change"], ["breachassessment"]),
        },
    )


def ensure_schedules(**kwargs) -> None:
    keep_schedules(SCHEDULES)
