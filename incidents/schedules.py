"""Background schedules, declared in code and kept in step after every migrate."""

from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "Escalate unacknowledged incidents",
        "func": "incidents.tasks.escalate_unacknowledged",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "Remind commanders of overdue status updates",
        "func": "incidents.tasks.remind_overdue_updates",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "Deliver due notifications and recover stalled ones",
        "func": "incidents.tasks.sweep_notifications",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "Forget idempotency keys older than a day",
        "func": "incidents.tasks.prune_idempotency_records",
        "schedule_type": Schedule.HOURLY,
    },
]


def keep_schedules(rows: list[dict]) -> None:
    """Create or update schedules by name; apps built on the core call this too."""
    for row in rows:
        Schedule.objects.update_or_create(
            name=row["name"],
            defaults={key: value for key, value in row.items() if key != "name"},
        )


def ensure_schedules(**kwargs) -> None:
    """Keep the core's schedules in step (run after migrate, like the groups)."""
    keep_schedules(SCHEDULES)
