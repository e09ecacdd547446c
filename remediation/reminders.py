"""Reminders about action items, sent through the notification outbox by a schedule.

Each kind of reminder carries a dedup key naming its period (the day, the ISO week, the
blocking), so however often the schedule runs and however many workers run it, a person
hears once per period: overdue items daily, the "due this week" digest weekly, a long
block once.
"""

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone

from incidents import notifications
from incidents.models import Role, RoleAssignment
from incidents.queries import user_may_see_incident

from .models import ActionItem
from .services import item_link
from .vocabulary import Event


def _send(item: ActionItem | None, users, key: str, subject: str, message: str, mentions=()) -> int:
    # An incident made confidential since: only those who may still see it are told.
    users = [
        user
        for user in users
        if user is not None and (item is None or user_may_see_incident(user, item.incident))
    ]
    try:
        with transaction.atomic():
            sent = notifications.notify(
                item.incident if item else None,
                Event.FOLLOW_UP,
                users=users,
                subject=subject,
                message=message,
                dedup_prefix=key,
                mentions=mentions,
            )
    except IntegrityError:
        return 0  # another worker sent this reminder of this period first (its dedup key)
    return len(sent)


def _with_answerable(items):
    """Load what _review_owner needs in a few queries, not one per item."""
    commanders = RoleAssignment.objects.filter(
        role=Role.COMMANDER, relieved_at__isnull=True
    ).select_related("user")
    return items.select_related(
        "incident__severity", "owner", "postmortem__owner"
    ).prefetch_related(
        Prefetch("incident__roles", queryset=commanders, to_attr="current_commanders")
    )


def _review_owner(item: ActionItem):
    """Who answers for the follow-up: the review's owner, else the incident commander."""
    if item.postmortem is not None and item.postmortem.owner is not None:
        return item.postmortem.owner
    commanders = item.incident.current_commanders
    return commanders[0].user if commanders else None


def remind_overdue(now: datetime | None = None) -> int:
    """Remind each owner of their overdue items, once a day; after the grace period,
    the review's owner too. Return how many messages were written."""
    today = timezone.localdate(now or timezone.now())
    grace = settings.ACTION_ITEM_ESCALATE_AFTER_DAYS
    sent = 0
    overdue = _with_answerable(ActionItem.objects.overdue(today))
    for item in overdue:
        days = (today - item.due_on).days
        subject = f"Overdue by {days} day(s): {item.title} ({item.incident.reference})"
        message = (
            f"Action item #{item.pk} was due {item.due_on} and is "
            f"{item.get_status_display().lower()}. Update it, or change its due date.\n\n"
            f"{item_link(item)}"
        )
        sent += _send(
            item, [item.owner], f"action-item:{item.pk}:overdue:{today}", subject, message
        )
        if days >= grace:
            owner = item.owner.get_username() if item.owner else "nobody"
            sent += _send(
                item,
                [_review_owner(item)],
                f"action-item:{item.pk}:escalated:{today}",
                f"Follow-up overdue {days} days: {item.title} ({item.incident.reference})",
                f"Owned by {owner}. {message}",
            )
    return sent


def send_due_this_week_digest(now: datetime | None = None) -> int:
    """Send each owner one digest a week of their items due within the next 7 days."""
    today = timezone.localdate(now or timezone.now())
    year, week, _ = today.isocalendar()
    soon = (
        ActionItem.objects.unfinished()
        .filter(due_on__gte=today, due_on__lt=today + timedelta(days=7), owner__isnull=False)
        .select_related("incident", "owner")
        .order_by("due_on", "priority")
    )
    # Each digest names only what its reader may see, and records every incident it
    # names, so nobody else can read it in the outbox unless they may see them all.
    by_owner = defaultdict(list)
    for item in soon:
        if user_may_see_incident(item.owner, item.incident):
            by_owner[item.owner].append(item)
    sent = 0
    for owner, items in by_owner.items():
        lines = [
            f"- {item.due_on} {item.priority} {item.title} ({item.incident.reference}) "
            f"{item_link(item)}"
            for item in items
        ]
        sent += _send(
            None,
            [owner],
            f"action-digest:{owner.pk}:{year}-W{week:02d}",
            f"Due this week: {len(items)} action item(s)",
            "Your action items due in the next 7 days:\n\n" + "\n".join(lines),
            mentions={item.incident for item in items},
        )
    return sent


def flag_long_blocked(now: datetime | None = None) -> int:
    """Tell the owner and the review's owner, once per blocking, that an item has been
    blocked longer than ACTION_ITEM_BLOCKED_FLAG_DAYS."""
    stale = _with_answerable(ActionItem.objects.stale_blocked(now))
    sent = 0
    for item in stale:
        days = ((now or timezone.now()) - item.blocked_at).days
        sent += _send(
            item,
            [item.owner, _review_owner(item)],
            f"action-item:{item.pk}:blocked-since:{item.blocked_at:%Y%m%d%H%M%S}",
            f"Blocked {days} days: {item.title} ({item.incident.reference})",
            f"Blocked because: {item.blocked_reason}\n\nUnblock it, re-plan it or close it as "
            f"won't do.\n\n{item_link(item)}",
        )
    return sent


def send_reminders(now: datetime | None = None) -> int:
    """Run every kind of reminder; return how many messages were written."""
    return remind_overdue(now) + send_due_this_week_digest(now) + flag_long_blocked(now)
