"""The notification outbox.

Services call `notify()` inside their transaction: it writes one Notification row per
recipient, so a message exists exactly when its cause does. Delivery happens later, in
a django-q2 worker (`deliver()`), with retries and backoff recorded on the row; the
sweeper re-queues what is due and what a dead worker left half-sent. Delivery is
at-least-once: every attempt carries the same idempotency key.
"""

import contextlib
import logging
import threading
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.template import Context, Template
from django.utils import timezone
from django_q.tasks import async_task

from .channels import CHANNELS, DeliveryError
from .errors import StateConflict
from .models import (
    ChannelKind,
    DeliveryAttempt,
    Incident,
    MessageTemplate,
    Notification,
    Role,
    StakeholderGroup,
)

logger = logging.getLogger(__name__)
Event = Notification.Event
State = Notification.State

# One delivery is one request, each phase of it bounded by NOTIFY_HTTP_TIMEOUT; the
# worker stops a delivery task that runs past DELIVERY_TIMEOUT. So a row claimed longer
# ago than that, with a margin, belongs to a worker that died, and is handed out again:
# with the minute sweeper, a send cut short is retried 45-105 s later (defaults).
DELIVERY_TIMEOUT = settings.NOTIFY_HTTP_TIMEOUT * 2 + 10
STALE_CLAIM = timedelta(seconds=DELIVERY_TIMEOUT + 15)

_muted = threading.local()


@contextlib.contextmanager
def muted():
    """Write no notifications inside this block (loading history, demo data)."""
    _muted.on = True
    try:
        yield
    finally:
        _muted.on = False


# --- writing --------------------------------------------------------------------------


def template_context(incident: Incident, message: str = "", next_update_at=None) -> dict:
    return {
        "incident": incident,
        "services": [service.name for service in incident.services.all()],
        "commander": incident.roles.filter(role=Role.COMMANDER, relieved_at__isnull=True)
        .values_list("user__username", flat=True)
        .first(),
        "message": message,
        "next_update_at": next_update_at,
    }


def render_template(slug: str, incident: Incident, **extra) -> tuple[str, str] | None:
    """Return (subject, body) of the message template `slug`, or None if it is gone."""
    template = MessageTemplate.objects.filter(slug=slug).first()
    if template is None:
        return None
    context = Context(template_context(incident, **extra), autoescape=False)
    # Messages cross time zones: the templates print times in UTC and say so.
    with timezone.override(UTC):
        subject = Template(template.subject).render(context).strip().replace("\n", " ")
        body = Template(template.body).render(context).strip()
    return subject[:300], body


def _render(incident: Incident, message: str, next_update_at: datetime | None):
    extra = {"message": message, "next_update_at": next_update_at}
    critical = incident.severity.rank == 1
    rendered = (
        critical and render_template("critical-incident-notification", incident, **extra)
    ) or render_template("incident-notification", incident, **extra)
    # Someone deleted the defaults: still say something useful.
    return rendered or (f"{incident.reference}: {incident.title}", message)


def _stakeholder_recipients(incident: Incident) -> list[tuple]:
    """Return (channel, address, user, target) for every group the matrix names."""
    groups = StakeholderGroup.objects.filter(
        severities=incident.severity, via_status_page=False
    ).prefetch_related("members", "targets")
    if incident.confidential:
        groups = groups.filter(confidential_ok=True)
    recipients = []
    for group in groups:
        for user in group.members.all():
            if user.is_active and user.email:
                recipients.append((ChannelKind.EMAIL, user.email, user, None))
        for target in group.targets.all():
            if target.enabled:
                recipients.append((target.kind, target.address, None, target))
    return recipients


def notify(
    incident: Incident | None,
    event: str,
    *,
    message: str = "",
    users=None,
    targets=(),
    next_update_at: datetime | None = None,
    dedup_prefix: str | None = None,
    subject: str | None = None,
    mentions=(),
) -> list[Notification]:
    """Write outbox rows for `event` (to `users` and `targets` if given, else to the
    matrix's groups) and queue their delivery once the surrounding transaction commits.

    With `subject`, the message is that subject and `message` as the body, instead of
    the incident notification templates (for messages about something else, a review);
    such a message may concern no single incident (a digest), then name its recipients
    and, in `mentions`, every incident it names (who may read it depends on them)."""
    if getattr(_muted, "on", False):
        return []
    if users is not None or targets:
        recipients = [
            (ChannelKind.EMAIL, user.email, user, None)
            for user in users or ()
            if user.is_active and user.email
        ] + [(target.kind, target.address, None, target) for target in targets if target.enabled]
    else:
        recipients = _stakeholder_recipients(incident)
    if not recipients:
        return []
    if subject is None:
        subject, body = _render(incident, message, next_update_at)
    else:
        body = message
    payload = {"event": event, "message": message}
    if incident is not None:
        payload["incident"] = {
            "reference": incident.reference,
            "title": incident.title,
            "severity": incident.severity.key,
            "status": incident.status,
            "confidential": incident.confidential,
        }
    now = timezone.now()
    created, seen = [], set()
    for channel, address, user, target in recipients:
        if (channel, address) in seen:
            continue  # in two groups: told once
        seen.add((channel, address))
        dedup_key = f"{dedup_prefix}:{channel}:{address}" if dedup_prefix else None
        if dedup_key and Notification.objects.filter(dedup_key=dedup_key).exists():
            continue  # this step already paged this person
        created.append(
            Notification.objects.create(
                incident=incident,
                event=event,
                channel=channel,
                recipient=user,
                target=target,
                address=address,
                subject=subject,
                body=body,
                payload=payload,
                dedup_key=dedup_key,
                next_attempt_at=now,
            )
        )
    if mentions:
        Notification.mentions.through.objects.bulk_create(
            Notification.mentions.through(notification_id=notification.pk, incident_id=mentioned.pk)
            for notification in created
            for mentioned in mentions
        )
    ids = [notification.pk for notification in created]
    transaction.on_commit(lambda: queue(ids))
    return created


def queue(ids) -> None:
    for notification_id in ids:
        async_task(
            "incidents.tasks.deliver_notification", notification_id, timeout=DELIVERY_TIMEOUT
        )


# --- delivering -----------------------------------------------------------------------


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: base, 2×base, 4×base… capped at an hour."""
    seconds = settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, 3600))


def deliver(notification_id: int) -> str | None:
    """Try to deliver one notification now; return its new state (None if not ours)."""
    now = timezone.now()
    # Compare-and-set claim: of two workers handed the same id, one wins.
    claimed = Notification.objects.filter(
        pk=notification_id, state=State.PENDING, next_attempt_at__lte=now
    ).update(state=State.SENDING, claimed_at=now)
    if not claimed:
        return None
    notification = Notification.objects.select_related("target").get(pk=notification_id)
    attempt = DeliveryAttempt(
        notification=notification,
        number=notification.delivery_attempts.count() + 1,
        started_at=now,
    )
    try:
        attempt.status_code = CHANNELS[notification.channel].send(notification)
        attempt.succeeded = True
    except DeliveryError as error:
        attempt.succeeded = False
        attempt.status_code = error.status_code
        attempt.error = str(error)
    except Exception as error:
        # A fault in a channel is still a recorded, retried attempt, not a row held
        # in 'sending' until the sweeper frees it.
        logger.exception(
            "Channel %s raised on notification %s", notification.channel, notification.pk
        )
        attempt.succeeded = False
        attempt.error = f"{type(error).__name__}: {error}"
    attempt.finished_at = timezone.now()

    with transaction.atomic():
        attempt.save()
        notification.attempts += 1  # in this round (a manual retry starts a new one)
        notification.claimed_at = None
        if attempt.succeeded:
            notification.state = State.DELIVERED
            notification.delivered_at = attempt.finished_at
            notification.last_error = ""
        else:
            notification.last_error = attempt.error
            if notification.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
                notification.state = State.FAILED
                logger.warning(
                    "Notification %s failed for good: %s", notification.pk, attempt.error
                )
            else:
                notification.state = State.PENDING
                notification.next_attempt_at = attempt.finished_at + retry_delay(
                    notification.attempts
                )
        notification.save()
    return notification.state


def sweep() -> int:
    """Queue every notification that is due, and free those a dead worker held."""
    now = timezone.now()
    Notification.objects.filter(state=State.SENDING, claimed_at__lt=now - STALE_CLAIM).update(
        state=State.PENDING, claimed_at=None
    )
    due = list(
        Notification.objects.filter(state=State.PENDING, next_attempt_at__lte=now).values_list(
            "pk", flat=True
        )[:1000]
    )
    queue(due)
    return len(due)


@transaction.atomic
def retry(notification: Notification) -> Notification:
    """Give a failed notification another full round of attempts."""
    notification = Notification.objects.select_for_update().get(pk=notification.pk)
    if notification.state != State.FAILED:
        raise StateConflict(f"Notification {notification.pk} is {notification.state}, not failed.")
    notification.state = State.PENDING
    notification.attempts = 0
    notification.next_attempt_at = timezone.now()
    notification.save()
    transaction.on_commit(lambda: queue([notification.pk]))
    return notification
