"""Background schedules, declared in code and kept in step after every migrate."""

from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "Forget idempotency keys older than a day",
        "func": "incidents.tasks.prune_idempotency_records",
        "schedule_type": Schedule.HOURLY,
    },
]


def ensure_schedules(**kwargs) -> None:
    """Create or update our schedules by name (run after migrate, like the groups)."""
    for row in SCHEDULES:
        Schedule.objects.update_or_create(
            name=row["name"],
            defaults={"func": row["func"], "schedule_type": row["schedule_type"]},
        )
