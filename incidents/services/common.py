"""What every incident service shares: the acting user on history rows, the row lock,
when something happened, and the checks every text and participant passes."""

import re
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from ..errors import DomainError
from ..models import Incident
from ..queries import users_who_may_see

# Longest summary or impact text, and longest note, reason or timeline entry.
LONG_TEXT = 20_000
NOTE_TEXT = 5_000
# What no page, CSV cell or XML feed can carry (XML 1.0 refuses these outright): control
# characters but tab and line breaks, lone surrogates, and the non-characters U+FFFE/F.
UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def acting_user(actor: AbstractBaseUser | None):
    return actor if actor is not None and actor.is_authenticated else None


def save_as(instance, actor, **kwargs) -> None:
    """Save with the acting user on the history row (no request in CLI and tasks)."""
    user = acting_user(actor)
    if user is not None:
        instance._history_user = user
    instance.save(**kwargs)


# How far back a time given for something that already happened may go (a timeline entry,
# a status change, a declaration), and how far ahead an update may promise the next one.
MAX_BACKDATE = timedelta(days=365)
NEXT_UPDATE_HORIZON = timedelta(days=7)


def when_happened(
    occurred_at: datetime | None,
    now: datetime,
    field: str = "occurred_at",
    not_before: datetime | None = None,
) -> datetime:
    """Return when something happened: now, or a back-dated time that makes sense."""
    if occurred_at is None:
        return now
    if timezone.is_naive(occurred_at):
        raise DomainError("Times must include a time zone.", field=field)
    if occurred_at > now:
        raise DomainError("Cannot be in the future.", field=field)
    if occurred_at < now - MAX_BACKDATE:
        raise DomainError(f"Cannot be more than {MAX_BACKDATE.days} days ago.", field=field)
    if not_before is not None and occurred_at < not_before:
        raise DomainError(
            f"Cannot be before {not_before:%Y-%m-%d %H:%M:%S} UTC, "
            "the last thing already recorded for this incident.",
            field=field,
        )
    return occurred_at


def lock_incident(incident: Incident) -> Incident:
    # Two commanders acting on one incident at once must not both read the old
    # status and both write: the row lock serialises them (PostgreSQL; SQLite
    # serialises every write transaction anyway).
    # of=("self",): lock only the incident, not the severity and type rows it joins,
    # which every other incident shares.
    return (
        Incident.objects.select_for_update(of=("self",))
        .select_related("severity", "incident_type")
        .get(pk=incident.pk)
    )


def clean_text(value, *, field: str, limit: int, required: str | None = None) -> str:
    """Return `value` stripped, without unprintable characters (a pasted terminal's
    escapes); refuse what is not text, longer than `limit`, or empty when `required`
    (the message to give). Every text a person or client writes passes through here."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DomainError("Must be text.", field=field)
    value = UNPRINTABLE.sub("", value).strip()
    if required and not value:
        raise DomainError(required, field=field)
    if len(value) > limit:
        raise DomainError(f"At most {limit:,} characters.", field=field)
    return value


def check_may_see(user, incident: Incident, field: str) -> None:
    """Refuse to give `user` a part in a confidential incident they may not read."""
    check_all_may_see([user], incident, field)


def check_all_may_see(users, incident: Incident, field: str) -> None:
    """Refuse to give `users` a part in a confidential incident that any of them may
    not read (one query for the lot)."""
    users = list(users)
    allowed = users_who_may_see(incident, users)
    for user in users:
        if user.pk not in allowed:
            raise DomainError(
                f"{user.get_username()} may not see confidential {incident.reference}; "
                "give them a role on the incident first.",
                field=field,
            )
