"""django-q2 task functions: thin, they call services."""

from . import extensions, notifications, services, watchdogs


def prune_idempotency_records() -> int:
    return services.idempotency_records_prune()


def deliver_notification(notification_id: int) -> str | None:
    return notifications.deliver(notification_id)


def sweep_notifications() -> int:
    return notifications.sweep()


def escalate_unacknowledged() -> int:
    # The ladder's watchdog, or the escalation of whichever app took paging over.
    return extensions.paging.get().escalate()


def remind_overdue_updates() -> int:
    return watchdogs.remind_overdue_updates()
