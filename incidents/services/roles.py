"""Who holds which role on an incident, and handovers."""

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .. import extensions, notifications
from ..errors import DomainError, StateConflict
from ..models import MULTI_HOLDER_ROLES, Incident, Role, RoleAssignment, TimelineEvent
from .common import acting_user, lock_incident, save_as, when_happened
from .timeline import timeline_record

# The role holders of incidents declared in this transaction, kept as their roles are
# given and relieved: {incident pk: {role: [users]}}.
_fresh: ContextVar[dict[int, dict[str, list]] | None] = ContextVar("fresh_holders", default=None)


@contextlib.contextmanager
def holders_kept(incident: Incident) -> Iterator[dict[str, list]]:
    """Keep who holds which role on `incident`, just inserted by this transaction (so
    it has no role but those given inside the block, and nobody else can see it),
    without reading them back: every role change goes through `record_assignment` or
    `role_relieve`, which keep the dict this yields, {role: [users]}."""
    fresh = _fresh.get()
    token = None
    if fresh is None:
        fresh = {}
        token = _fresh.set(fresh)
    holders = fresh.setdefault(incident.pk, {})
    try:
        yield holders
    finally:
        if token is not None:
            _fresh.reset(token)


def fresh_holders(incident: Incident) -> dict[str, list] | None:
    """Return {role: [users]} held now of an incident declared in this transaction's
    `holders_kept()` block (no query), or None for any other incident."""
    fresh = _fresh.get()
    return None if fresh is None else fresh.get(incident.pk)


def _keep(incident: Incident, role: str, user, *, holds: bool) -> None:
    holders = fresh_holders(incident)
    if holders is None:
        return
    users = holders.setdefault(role, [])
    if role not in MULTI_HOLDER_ROLES and holds:
        users.clear()  # a handover: the previous holder was stood down
    if holds:
        users.append(user)
    else:
        users[:] = [held for held in users if held.pk != user.pk]
    if not users:
        del holders[role]


@transaction.atomic
def role_assign(
    *,
    incident: Incident,
    role: str,
    user,
    actor=None,
    source: str,
    occurred_at: datetime | None = None,
    tell_holder: bool = True,
) -> RoleAssignment:
    """Give `user` the role, relieving the previous holder (kept, with relieved_at).
    With `tell_holder` False the new holder gets no "role assigned" message (the caller
    tells them its own way: on-call pages the people it staffs)."""
    check_assignable(role, user)
    incident = lock_incident(incident)
    when = when_happened(occurred_at, timezone.now(), not_before=incident.detected_at)
    # Locked: two handovers of one role at once must not both relieve the same holder.
    active = list(
        incident.roles.select_for_update(of=("self",))
        .select_related("user")
        .filter(role=role, relieved_at__isnull=True)
    )
    if any(previous.user_id == user.pk for previous in active):
        raise StateConflict(
            f"{user.get_username()} is already {Role(role).label.lower()} of {incident.reference}.",
            field="user",
        )
    stood_down = []
    if role not in MULTI_HOLDER_ROLES:
        for previous in active:
            if previous.assigned_at > when:
                raise DomainError(
                    f"{previous.user.get_username()} took the role at "
                    f"{previous.assigned_at:%Y-%m-%d %H:%M} UTC; a handover cannot be earlier.",
                    field="occurred_at",
                )
            previous.relieved_at = when
            save_as(previous, actor)
            stood_down.append(previous)
    return record_assignment(
        incident,
        role=role,
        user=user,
        actor=actor,
        source=source,
        when=when,
        stood_down=stood_down,
        tell_holder=tell_holder,
    )


def check_assignable(role: str, user) -> None:
    """Refuse an unknown role, or a user who cannot hold one."""
    if role not in Role.values:
        raise DomainError(
            f"Unknown role {role!r}; use one of {', '.join(Role.values)}.", field="role"
        )
    if not user.is_active:
        raise DomainError(f"{user.get_username()} is not an active user.", field="user")


def record_assignment(
    incident: Incident,
    *,
    role: str,
    user,
    actor,
    source: str,
    when: datetime,
    stood_down=(),
    outbox: list | None = None,
    tell_holder: bool = True,
) -> RoleAssignment:
    """Write that `user` holds `role` on the locked `incident` from `when`, once the
    checks passed and `stood_down` were relieved: the row, its timeline event, the
    message to the new holder (added to `outbox` if given, for the caller to send
    with its own) and the role_assigned event. For role_assign and incident_declare."""
    relieved = [previous.user.get_username() for previous in stood_down]
    assignment = RoleAssignment(
        incident=incident,
        role=role,
        user=user,
        assigned_at=when,
        assigned_by=acting_user(actor),
    )
    save_as(assignment, actor)
    _keep(incident, role, user, holds=True)
    summary = f"{user.get_username()} is now {Role(role).label.lower()}"
    if relieved:
        summary = f"{summary}, taking over from {', '.join(relieved)}"
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.ROLE_CHANGE,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=when,
        details={"role": role, "user": user.get_username(), "relieved": relieved},
    )
    if tell_holder and (actor is None or user.pk != getattr(actor, "pk", None)):
        message = notifications.Message(
            incident,
            notifications.Event.ROLE_ASSIGNED,
            message=f"You are now {Role(role).label.lower()} of {incident.reference}.",
            users=[user],
        )
        if outbox is None:
            notifications.notify_many([message])
        else:
            outbox.append(message)
    extensions.role_assigned.run(
        extensions.RoleAssigned(
            incident=incident,
            actor=actor,
            source=source,
            assignment=assignment,
            relieved=tuple(stood_down),
        )
    )
    return assignment


@transaction.atomic
def role_relieve(
    *,
    assignment: RoleAssignment,
    actor=None,
    source: str,
    occurred_at: datetime | None = None,
) -> RoleAssignment:
    """Stand someone down from a role without naming a successor."""
    lock_incident(assignment.incident)
    assignment = RoleAssignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.relieved_at is not None:
        raise StateConflict(f"{assignment.user.get_username()} was already relieved.")
    when = when_happened(occurred_at, timezone.now())
    if when < assignment.assigned_at:
        raise DomainError("Cannot stand down before taking the role.", field="occurred_at")
    assignment.relieved_at = when
    save_as(assignment, actor)
    _keep(assignment.incident, assignment.role, assignment.user, holds=False)
    incident, role = assignment.incident, assignment.get_role_display().lower()
    summary = f"{assignment.user.get_username()} stood down as {role}"
    if assignment.role == Role.COMMANDER and incident.is_open:
        summary = f"{summary}; {incident.reference} has no commander now"  # say it, loudly
    timeline_record(
        incident,
        kind=TimelineEvent.Kind.ROLE_CHANGE,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=when,
        details={"role": assignment.role, "user": assignment.user.get_username(), "relieved": []},
    )
    if actor is None or assignment.user_id != getattr(actor, "pk", None):
        notifications.notify(
            incident,
            notifications.Event.ROLE_RELIEVED,
            message=f"You are no longer {role} of {incident.reference}.",
            users=[assignment.user],
        )
    extensions.role_relieved.run(
        extensions.RoleRelieved(
            incident=incident, actor=actor, source=source, assignment=assignment
        )
    )
    return assignment
