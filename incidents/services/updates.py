"""Numbered status updates to an audience, and the promise of the next one."""

from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .. import extensions, notifications, status_page
from ..errors import DomainError
from ..models import Audience, Incident, StatusUpdate, TimelineEvent
from .common import NEXT_UPDATE_HORIZON, NOTE_TEXT, acting_user, clean_text, lock_incident, save_as
from .timeline import timeline_record


@transaction.atomic
def status_update_post(
    *,
    incident: Incident,
    audience: str,
    summary: str,
    next_update_at: datetime | None = None,
    actor=None,
    source: str,
) -> StatusUpdate:
    """Post the next numbered update; an open incident gets a next-update time from its
    severity's cadence unless one is given."""
    if audience not in Audience.values:
        raise DomainError(
            f"Unknown audience {audience!r}; use one of {', '.join(Audience.values)}.",
            field="audience",
        )
    summary = clean_text(
        summary, field="summary", limit=NOTE_TEXT, required="The update needs some text."
    )
    incident = lock_incident(incident)
    now = timezone.now()
    if incident.confidential and audience == Audience.PUBLIC:
        raise DomainError("A confidential incident cannot have public updates.", field="audience")
    if next_update_at is not None and next_update_at <= now:
        raise DomainError("The next update must be in the future.", field="next_update_at")
    # A promise far ahead would silence the cadence reminders for as long.
    horizon = max(NEXT_UPDATE_HORIZON, incident.severity.update_every)
    if next_update_at is not None and next_update_at > now + horizon:
        raise DomainError(
            f"Promise the next update within {horizon.days} days.", field="next_update_at"
        )
    if next_update_at is None and incident.is_open:
        next_update_at = now + incident.severity.update_every
    number = (incident.updates.aggregate(last=Max("number"))["last"] or 0) + 1
    update = StatusUpdate(
        incident=incident,
        number=number,
        audience=audience,
        status=incident.status,
        summary=summary,
        next_update_at=next_update_at,
        author=acting_user(actor),
        published_at=now,
    )
    save_as(update, actor)
    status_page.invalidate()
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.COMMUNICATION,
        summary=f"{Audience(audience).label} update #{number}: {summary}",
        actor=actor,
        source=source,
        occurred_at=now,
        details={"update": number, "audience": audience},
    )
    notifications.notify(
        incident,
        notifications.Event.STATUS_UPDATE,
        message=summary,
        next_update_at=next_update_at,
    )
    extensions.update_posted.run(
        extensions.UpdatePosted(incident=incident, actor=actor, source=source, update=update)
    )
    return update
