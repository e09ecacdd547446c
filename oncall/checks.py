"""System checks: warn about what would page nobody right now (oncall.queries.activation_gaps)."""

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError

HINTS = {
    "oncall.W001": "Give the default team rotations for these roles, with members who have "
    "a verified contact method or an email address (On-call › Teams, Rotations).",
    "oncall.W002": "Give the level people, rotations, teams or an enabled channel, or tick "
    "“incident team” (On-call › Escalation policies).",
    "oncall.W003": "Mark one escalation policy as the default (On-call › Escalation policies).",
}


# A database check, as Django's own are: run by `migrate` and `check --database default`,
# not by every manage.py command (nor before the tables exist).
@register(Tags.database)
def check_activation_gaps(app_configs, databases=None, **kwargs):
    """Warn about each severity whose activation, and each policy level, pages nobody."""
    from .queries import activation_gaps

    if not databases:
        return []  # as Django's database checks do when no database is named
    try:
        gaps = activation_gaps()
    except DatabaseError:
        return []  # no tables yet (before the first migrate): nothing to check
    return [Warning(str(gap), hint=HINTS.get(gap.check_id), id=gap.check_id) for gap in gaps]
