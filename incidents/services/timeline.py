"""The timeline's writes: events the services record and entries people add."""

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .. import extensions
from ..errors import DomainError
from ..history import bulk_create_with_history
from ..models import Incident, TimelineEvent
from .common import NOTE_TEXT, acting_user, clean_text, lock_incident, save_as, when_happened

_pending: ContextVar[list[TimelineEvent] | None] = ContextVar("timeline_batch", default=None)


@contextlib.contextmanager
def timeline_batch() -> Iterator[None]:
    """Insert the events `timeline_record()` writes inside the block, and their history,
    in two statements at its end (a declaration and what its subscribers record),
    inside the caller's transaction; each event gets its pk then. Inside another batch
    this joins it. An error leaves nothing written (the transaction rolls back); so
    nothing inside may roll back a savepoint of its own and carry on, and nothing
    inside reads the timeline back (no subscriber does)."""
    if _pending.get() is not None:
        yield
        return
    events: list[TimelineEvent] = []
    token = _pending.set(events)
    try:
        yield
    finally:
        _pending.reset(token)
    if events:
        # Without _history_user, simple-history names the request's user, as save() does.
        bulk_create_with_history(events, TimelineEvent)


def timeline_record(
    incident: Incident,
    *,
    kind: str,
    summary: str,
    actor,
    source: str,
    occurred_at: datetime,
    details: dict | None = None,
) -> TimelineEvent:
    """Append a service-written event to the incident's timeline (in a
    `timeline_batch()`, when the batch ends)."""
    event = _event(incident, kind, summary, actor, source, occurred_at, details)
    pending = _pending.get()
    if pending is None:
        save_as(event, actor)
    else:
        user = acting_user(actor)
        if user is not None:
            event._history_user = user
        pending.append(event)
    return event


def timeline_record_many(entries: Iterable[dict], *, actor, source: str) -> list[TimelineEvent]:
    """Append service-written events to several timelines at once (a watchdog's round):
    each entry holds timeline_record's incident, kind, summary, occurred_at and details.
    Two inserts (events, their history) however many entries."""
    events = [
        _event(
            entry["incident"],
            entry["kind"],
            entry["summary"],
            actor,
            source,
            entry["occurred_at"],
            entry.get("details"),
        )
        for entry in entries
    ]
    user = acting_user(actor)
    for event in events:
        if user is not None:
            event._history_user = user
    return bulk_create_with_history(events, TimelineEvent) if events else []


def _event(incident, kind, summary, actor, source, occurred_at, details) -> TimelineEvent:
    extensions.timeline_kinds.check(kind, field="kind")
    return TimelineEvent(
        incident=incident,
        kind=kind,
        summary=summary,
        author=acting_user(actor),
        source=source,
        occurred_at=occurred_at,
        details=details or {},
    )


@transaction.atomic
def timeline_add_entry(
    *,
    incident: Incident,
    kind: str,
    summary: str,
    actor=None,
    source: str,
    occurred_at: datetime | None = None,
    details: dict | None = None,
) -> TimelineEvent:
    """Add a note, action, decision or communication written by a person."""
    if kind not in TimelineEvent.MANUAL_KINDS:
        allowed = ", ".join(str(k) for k in TimelineEvent.MANUAL_KINDS)
        raise DomainError(f"Cannot add a {kind!r} entry; use one of {allowed}.", field="kind")
    summary = clean_text(
        summary, field="summary", limit=NOTE_TEXT, required="The entry needs some text."
    )
    incident = lock_incident(incident)
    return timeline_record(
        incident,
        kind=kind,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=when_happened(occurred_at, timezone.now()),
        details=details,
    )
