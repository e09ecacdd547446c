"""The notification outbox.

Services call `notify()` inside their transaction: it writes one Notification row per
recipient, so a message exists exactly when its cause does (`notify_many()` writes many
messages at once, a watchdog's round: a few queries whatever the number of messages and
recipients). Delivery happens later, in
a django-q2 worker (`deliver()`), with retries and backoff recorded on the row; the
sweeper re-queues what is due and what a dead worker left half-sent. Delivery is
at-least-once: every attempt carries the same idempotency key.
"""

import contextlib
import functools
import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import IntegerField, OuterRef, Subquery, Value
from django.template import Context, Engine, Template
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from .channels import CHANNELS, DeliveryError
from .errors import StateConflict
from .extensions import notification_events
from .models import (
    ChannelKind,
    DeliveryAttempt,
    Incident,
    MessageTemplate,
    Notification,
    Role,
    RoleAssignment,
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


def is_muted() -> bool:
    """Say whether notifications are muted here (apps that page skip it too)."""
    return getattr(_muted, "on", False)


# --- writing --------------------------------------------------------------------------

STANDARD_TEMPLATE = "incident-notification"
CRITICAL_TEMPLATE = "critical-incident-notification"


@dataclass(frozen=True)
class Message:
    """What one `notify()` call writes: an event, to `users`, `targets` and `contacts`
    if given, else to the matrix's groups for the incident (see `notify` for the rest).
    `contacts` are (channel, address, user) triples: a person's own contact methods."""

    incident: Incident | None
    event: str
    message: str = ""
    users: Iterable | None = None
    targets: Iterable = ()
    next_update_at: datetime | None = None
    dedup_prefix: str | None = None
    subject: str | None = None
    mentions: Iterable = ()
    contacts: Iterable = ()


@dataclass(frozen=True)
class KnownFacts:
    """What the templates may name of an incident its caller just wrote (a declaration
    knows its commander and services): given, they are not read back."""

    commander: str | None
    services: list[str]


class _Facts:
    """The services and commander of the incidents a batch of messages is about, read
    for all of them in one query at the first use, and not at all if no template names
    them (nor for incidents whose facts the caller gave)."""

    def __init__(self, incidents, known: dict[int, KnownFacts] | None = None):
        known = known or {}
        self._ids = {incident.pk for incident in incidents if incident is not None} - set(known)
        self._services: dict[int, list[str]] = {
            pk: sorted(facts.services) for pk, facts in known.items()
        }
        self._commanders: dict[int, str | None] = {
            pk: facts.commander for pk, facts in known.items()
        }
        self._loaded = not self._ids

    def _load(self) -> None:
        commander = RoleAssignment.objects.filter(
            incident=OuterRef("pk"), role=Role.COMMANDER, relieved_at__isnull=True
        ).values("user__username")[:1]
        rows = (
            Incident.objects.filter(pk__in=self._ids)
            .annotate(commander=Subquery(commander))
            .values_list("pk", "commander", "services__name")  # one row per service
        )
        services = defaultdict(list)
        for pk, username, service in rows:
            self._commanders[pk] = username
            if service is not None:
                services[pk].append(service)
        # Sorted here, not by the database: the same order as facts a caller gave, on
        # any collation.
        self._services.update((pk, sorted(names)) for pk, names in services.items())
        self._loaded = True

    def services(self, incident: Incident) -> list[str]:
        if not self._loaded:
            self._load()
        return self._services.get(incident.pk, [])

    def commander(self, incident: Incident) -> str | None:
        if not self._loaded:
            self._load()
        return self._commanders.get(incident.pk)


def template_context(
    incident: Incident, message: str = "", next_update_at=None, facts: _Facts | None = None
) -> dict:
    facts = facts or _Facts([incident])
    return {
        "incident": incident,
        # Callables, which a template calls only if it names them (the standard
        # notification names neither): no query for what the message does not say.
        "services": lambda: facts.services(incident),
        "commander": lambda: facts.commander(incident),
        "message": message,
        "next_update_at": next_update_at,
    }


# Commanders write the message templates in the admin: they get the template language's
# variables, filters and tags, but no way to other templates on disk ({% include %},
# {% extends %}), to tag libraries ({% load %}) or to the worker's state ({% debug %}).
MESSAGE_ENGINE = Engine(loaders=[], libraries={}, autoescape=False)
REFUSED_TAGS = {"IncludeNode": "include", "ExtendsNode": "extends", "DebugNode": "debug"}


def compile_message(text: str) -> Template:
    """Compile a message template's text (TemplateSyntaxError if it cannot be)."""
    return MESSAGE_ENGINE.from_string(text)


def _render_with(template: MessageTemplate, context: dict) -> tuple[str, str]:
    context = Context(context, autoescape=False)
    # Messages cross time zones: the templates print times in UTC and say so.
    with timezone.override(UTC):
        subject = compile_message(template.subject).render(context).strip().replace("\n", " ")
        body = compile_message(template.body).render(context).strip()
    return subject[:300], body


def render_template(slug: str, incident: Incident, **extra) -> tuple[str, str] | None:
    """Return (subject, body) of the message template `slug`, or None if it is gone."""
    template = MessageTemplate.objects.filter(slug=slug).first()
    if template is None:
        return None
    return _render_with(template, template_context(incident, **extra))


class _Renderer:
    """Render the incident notification of each message of a batch: the templates are
    read once for the batch, the incidents' facts once if a template needs them."""

    def __init__(self, messages: list[Message], known: dict[int, KnownFacts] | None = None):
        self._facts = _Facts((message.incident for message in messages), known)
        self._templates: dict[str, MessageTemplate] | None = None

    def render(self, message: Message) -> tuple[str, str]:
        if message.subject is not None:
            return message.subject, message.message
        incident = message.incident
        if self._templates is None:
            self._templates = {
                template.slug: template
                for template in MessageTemplate.objects.filter(
                    slug__in=[CRITICAL_TEMPLATE, STANDARD_TEMPLATE]
                )
            }
        template = (
            incident.severity.rank == 1 and self._templates.get(CRITICAL_TEMPLATE)
        ) or self._templates.get(STANDARD_TEMPLATE)
        if template is None:  # someone deleted the defaults: still say something useful
            return f"{incident.reference}: {incident.title}", message.message
        context = template_context(
            incident, message.message, message.next_update_at, facts=self._facts
        )
        return _render_with(template, context)


def _stakeholder_recipients(incident: Incident) -> list[tuple]:
    """Return (channel, address, user id, target id) for every group the matrix names,
    group by group (its members, then its targets): one query however large the matrix
    (its members and its targets, as one UNION ALL)."""
    groups = StakeholderGroup.objects.filter(severities=incident.severity_id, via_status_page=False)
    if incident.confidential:
        groups = groups.filter(confidential_ok=True)
    # The same columns from both halves: group name and pk, members before targets, the
    # target's name, the recipient's pk (for the order), channel, address, user, target.
    members = (
        StakeholderGroup.members.through.objects.filter(
            stakeholdergroup__in=groups, user__is_active=True
        )
        .exclude(user__email="")
        .order_by()  # sorted below; no ORDER BY inside a UNION
        .values_list(
            "stakeholdergroup__name",
            "stakeholdergroup_id",
            Value(0, output_field=IntegerField()),
            Value(""),
            "user_id",
            Value(ChannelKind.EMAIL),
            "user__email",
            "user_id",
            Value(None, output_field=IntegerField()),
        )
    )
    targets = (
        StakeholderGroup.targets.through.objects.filter(
            stakeholdergroup__in=groups, channeltarget__enabled=True
        )
        .order_by()
        .values_list(
            "stakeholdergroup__name",
            "stakeholdergroup_id",
            Value(1, output_field=IntegerField()),
            "channeltarget__name",
            "channeltarget_id",
            "channeltarget__kind",
            "channeltarget__address",
            Value(None, output_field=IntegerField()),
            "channeltarget_id",
        )
    )
    # Sorted as the groups are listed (by name), each group's members before its targets.
    rows = sorted(members.union(targets, all=True), key=lambda row: row[:5])
    return [tuple(row[5:]) for row in rows]


def _recipients(message: Message, matrix: dict) -> list[tuple]:
    """Return (channel, address, user id, target id) for each recipient of `message`,
    each channel and address once (someone in two groups is told once)."""
    if message.users is not None or message.targets or message.contacts:
        recipients = (
            [
                (ChannelKind.EMAIL, user.email, user.pk, None)
                for user in message.users or ()
                if user.is_active and user.email
            ]
            + [
                (target.kind, target.address, None, target.pk)
                for target in message.targets
                if target.enabled
            ]
            + [
                (channel, address, getattr(user, "pk", None), None)
                for channel, address, user in message.contacts
            ]
        )
    else:
        # The matrix depends only on the severity and confidentiality: read once each.
        incident = message.incident
        key = (incident.severity_id, incident.confidential)
        if key not in matrix:
            matrix[key] = _stakeholder_recipients(incident)
        recipients = matrix[key]
    unique = {}
    for recipient in recipients:
        unique.setdefault(recipient[:2], recipient)
    return list(unique.values())


DEDUP_KEY_LENGTH = Notification._meta.get_field("dedup_key").max_length


def make_dedup_key(prefix: str, channel: str, address: str) -> str:
    """Return the dedup key of a message of `prefix` to (channel, address): the address
    itself while it fits the column, else its digest (a webhook URL can be 500 long)."""
    key = f"{prefix}:{channel}:{address}"
    if len(key) <= DEDUP_KEY_LENGTH:
        return key
    digest = hashlib.sha256(address.encode()).hexdigest()
    return f"{prefix}:{channel}:sha256={digest}"[:DEDUP_KEY_LENGTH]


def _dedup_key(message: Message, channel: str, address: str) -> str | None:
    return make_dedup_key(message.dedup_prefix, channel, address) if message.dedup_prefix else None


def _payload(message: Message) -> dict:
    payload = {"event": message.event, "message": message.message}
    incident = message.incident
    if incident is not None:
        payload["incident"] = {
            "reference": incident.reference,
            # Only the matrix's groups are cleared for confidential incidents; a channel
            # or a person's own webhook named by the caller gets the reference alone.
            "title": "(confidential)"
            if incident.confidential and (message.contacts or message.targets)
            else incident.title,
            "severity": incident.severity.key,
            "status": incident.status,
            "confidential": incident.confidential,
        }
    return payload


@dataclass
class _Outbox:
    """Rows written inside `outbox_batch()`, inserted together when it ends."""

    rows: list[Notification] = field(default_factory=list)
    mentioned: list[tuple[Notification, Incident]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)


_outbox: ContextVar[_Outbox | None] = ContextVar("outbox_batch", default=None)


@contextlib.contextmanager
def outbox_batch() -> Iterator[None]:
    """Insert the outbox rows of every `notify_many()` inside the block in one insert
    at its end (a declaration, and what its subscribers send), inside the caller's
    transaction. Each call still reads and renders when it is made (its message says
    what was true then); its rows get their pks when the block ends. Inside another
    batch this joins it. An error leaves nothing written (the transaction rolls back);
    so nothing inside may roll back a savepoint of its own and carry on."""
    if _outbox.get() is not None:
        yield
        return
    batch = _Outbox()
    token = _outbox.set(batch)
    try:
        yield
    finally:
        _outbox.reset(token)
    _insert(batch.rows, batch.mentioned)


def notify_many(
    messages: Iterable[Message], *, known: dict[int, KnownFacts] | None = None
) -> list[Notification]:
    """Write the outbox rows of every message and queue their delivery once the
    surrounding transaction commits; return the rows written (with their pks, or, in an
    `outbox_batch()`, with them once it ends). `known`: facts of incidents the caller
    just wrote, by pk, which the templates then take instead of reading them.

    A few queries whatever the number of messages and recipients: the matrix, the dedup
    keys already taken, the templates and the incidents' facts, one insert."""
    messages = list(messages)
    for message in messages:
        notification_events.check(message.event, field="event")
    if is_muted():
        return []
    matrix: dict = {}
    recipients = [(message, _recipients(message, matrix)) for message in messages]
    keys = [
        key
        for message, people in recipients
        for channel, address, _, _ in people
        if (key := _dedup_key(message, channel, address))
    ]
    batch = _outbox.get()
    # A key already taken is a step that already paged this person: told once. Two
    # workers writing the same step at once both miss the other's rows here; then the
    # unique dedup_key makes the second insert raise IntegrityError, which rolls back
    # the caller's transaction; the caller retries its round or counts the step as the
    # other worker's. A key a batch holds for its insert is taken too.
    taken = set(Notification.objects.filter(dedup_key__in=keys).values_list("dedup_key", flat=True))
    if batch is not None:
        taken |= batch.keys
    renderer = _Renderer(messages, known)
    now = timezone.now()
    rows, mentioned = [], []
    for message, people in recipients:
        fresh = []
        for channel, address, user_id, target_id in people:
            dedup_key = _dedup_key(message, channel, address)
            if dedup_key in taken:
                continue
            if dedup_key:
                taken.add(dedup_key)  # the same key twice in one batch: once
            fresh.append((channel, address, user_id, target_id, dedup_key))
        if not fresh:
            continue
        subject, body = renderer.render(message)
        payload = _payload(message)
        mentions = list(message.mentions)
        for channel, address, user_id, target_id, dedup_key in fresh:
            notification = Notification(
                incident=message.incident,
                event=message.event,
                channel=channel,
                recipient_id=user_id,
                target_id=target_id,
                address=address,
                subject=subject,
                body=body,
                payload=payload,
                dedup_key=dedup_key,
                next_attempt_at=now,
            )
            rows.append(notification)
            mentioned.extend((notification, incident) for incident in mentions)
    if batch is not None:
        batch.rows += rows
        batch.mentioned += mentioned
        batch.keys.update(row.dedup_key for row in rows if row.dedup_key)
        return rows
    _insert(rows, mentioned)
    return rows


def _insert(rows: list[Notification], mentioned: list[tuple[Notification, Incident]]) -> None:
    """Insert outbox rows (one statement), the incidents they mention, and queue their
    delivery once the transaction commits."""
    if not rows:
        return
    created = Notification.objects.bulk_create(rows)
    if created[0].pk is None:  # a database that cannot return the new pks
        pks = dict(
            Notification.objects.filter(
                idempotency_key__in=[row.idempotency_key for row in created]
            ).values_list("idempotency_key", "pk")
        )
        for row in created:
            row.pk = pks[row.idempotency_key]
    if mentioned:
        Notification.mentions.through.objects.bulk_create(
            Notification.mentions.through(notification_id=notification.pk, incident_id=incident.pk)
            for notification, incident in mentioned
        )
    ids = [notification.pk for notification in created]
    transaction.on_commit(lambda: queue(ids))


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
    and, in `mentions`, every incident it names (who may read it depends on them).
    With `dedup_prefix`, a person this prefix already reached is not written to again."""
    return notify_many(
        [
            Message(
                incident,
                event,
                message=message,
                users=users,
                targets=targets,
                next_update_at=next_update_at,
                dedup_prefix=dedup_prefix,
                subject=subject,
                mentions=mentions,
            )
        ]
    )


@functools.cache
def _broker():
    """One broker a process. Left to itself, async_task makes a broker per call, and with
    Redis that is a new connection per notification (its handshake alone cost a
    declaration 10 ms); redis-py's pool is thread-safe and reconnects after a fork."""
    return get_broker()


def queue(ids) -> None:
    # save=False: a delivery that succeeded is kept as its DeliveryAttempt, not also as a
    # django-q2 result. Saving one made each cluster's monitor lock and read every kept
    # result (up to Q_CLUSTER's save_limit, 1,000) per task, and the two clusters of the
    # delivery benchmark fell from 90 to 35 deliveries/s once 1,000 were kept. Failures
    # are still saved.
    for notification_id in ids:
        async_task(
            "incidents.tasks.deliver_notification",
            notification_id,
            timeout=DELIVERY_TIMEOUT,
            broker=_broker(),
            save=False,
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
