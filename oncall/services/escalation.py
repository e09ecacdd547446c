"""Escalation policies: who is paged, level by level, while an incident waits for an
acknowledgement or is stuck; and paging a level or a person by hand.

The watchdogs copy the core's shape (incidents.watchdogs): a cheap scan, then the due
incidents locked in pk order, what already fired read again under the lock, and an
`Escalation` row per step, whose unique constraint is the database's word on "once".
Paging is never silent: a level that reaches nobody says so on the timeline and tells
the incident's lead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from incidents import notifications, services
from incidents.errors import DomainError, StateConflict
from incidents.models import Incident, Source, Status, StatusUpdate
from incidents.queries import user_may_see_incident
from incidents.services import NOTE_TEXT, clean_text
from incidents.watchdogs import WAITING, escalation_due_at

from .. import schedule
from ..models import Escalation, EscalationPolicy, Page, PolicyLevel, StuckRule
from ..vocabulary import Event, Kind
from . import paging
from .activation import teams_by_incident, teams_of

# --- policies and levels --------------------------------------------------------------


def policies_loaded() -> dict[int, EscalationPolicy]:
    """Return every policy by pk, each with its levels and their people, rotations,
    teams and channels (six queries, however many incidents use them)."""
    levels = PolicyLevel.objects.order_by("number").prefetch_related(
        "users", "rotations", "teams", "targets"
    )
    return {
        policy.pk: policy
        for policy in EscalationPolicy.objects.prefetch_related(Prefetch("levels", queryset=levels))
    }


def _policy_of(teams, policies: dict[int, EscalationPolicy]) -> EscalationPolicy | None:
    for team in teams:
        if team.escalation_policy_id in policies:
            return policies[team.escalation_policy_id]
    return next((policy for policy in policies.values() if policy.is_default), None)


def policy_for(incident: Incident, *, teams=None) -> EscalationPolicy | None:
    """Return the policy of the incident's team (the first of its teams with one), else
    the default policy, else None; with its levels loaded."""
    teams = teams_of(incident) if teams is None else teams
    return _policy_of(teams, policies_loaded())


@dataclass
class Recipients:
    """Whom a level pages: people (by their paging rules) and channel targets."""

    users: list = field(default_factory=list)
    targets: list = field(default_factory=list)

    @property
    def reaches_anyone(self) -> bool:
        return bool(self.users or self.targets)


def level_recipients(level: PolicyLevel, *, incident: Incident, at=None, teams=None) -> Recipients:
    """Return who `level` pages for `incident` at `at`: its people, whoever is on call in
    its rotations and for its teams (and the incident's own team, if it says so), and
    its enabled channel targets. Inactive people are left out."""
    at = at or timezone.now()
    users = list(level.users.all())
    rotations = list(level.rotations.all())
    if rotations:
        users += [shift.user for shift in schedule.on_call(rotations=rotations, at=at)]
    on_call_teams = list(level.teams.all())
    if level.incident_team:
        # The incident's own team: the first owner of its services (the default team
        # only when no team owns them; its commanders and scribes are not "the team").
        teams = teams_of(incident) if teams is None else teams
        on_call_teams += teams[:1]
    if on_call_teams:
        unique = list({team.pk: team for team in on_call_teams}.values())
        users += [shift.user for shift in schedule.on_call(teams=unique, at=at)]
    people = list({user.pk: user for user in users if user.is_active}.values())
    return Recipients(users=people, targets=[t for t in level.targets.all() if t.enabled])


def level_due_at(incident: Incident, level: PolicyLevel) -> datetime | None:
    """Return when an unacknowledged incident reaches `level`: its delay after the
    declaration, or (no delay) the core ladder's rule for its number."""
    if incident.declared_at is None:
        return None
    if level.delay is None:
        return escalation_due_at(incident, level.number)
    return incident.declared_at + level.delay


# --- paging a level -------------------------------------------------------------------


@dataclass
class Outcome:
    """What paging a level (or a person) did."""

    pages: list = field(default_factory=list)
    unreachable: list = field(default_factory=list)
    already_paged: list = field(default_factory=list)
    targets: list = field(default_factory=list)


def _open_pages(incident: Incident, reasons=None) -> set[int]:
    pages = Page.objects.filter(
        incident=incident, acknowledged_at__isnull=True, stopped_at__isnull=True
    )
    if reasons is not None:
        pages = pages.filter(reason__in=reasons)
    return set(pages.values_list("user_id", flat=True))


def page_level(
    incident: Incident,
    level: PolicyLevel,
    *,
    reason: str,
    why: str,
    summary: str,
    teams=None,
    skip_reasons=None,
    actor=None,
    source: str,
    now: datetime,
) -> Outcome:
    """Page everyone `level` reaches about `incident` (inside the caller's transaction):
    its channels get the message, its people a page each, except those with an open
    page (of `skip_reasons`, else of any reason), who are being paged already. The
    timeline says so (`summary` first); a level that reaches nobody warns the lead."""
    recipients = level_recipients(level, incident=incident, at=now, teams=teams)
    if not recipients.reaches_anyone:
        paging.warn_paged_nobody(
            incident,
            f"{why}, but {level} has no people, nobody on call and no enabled channels",
            actor=actor,
            source=source,
            when=now,
        )
        return Outcome()
    busy = _open_pages(incident, skip_reasons)
    outcome = Outcome(
        already_paged=[user for user in recipients.users if user.pk in busy],
        targets=recipients.targets,
    )
    fresh = [user for user in recipients.users if user.pk not in busy]
    parts = [summary]
    if outcome.targets:
        parts.append(f"told {', '.join(target.name for target in outcome.targets)}")
    if outcome.already_paged:
        names = ", ".join(user.get_username() for user in outcome.already_paged)
        parts.append(f"already being paged: {names}")
    services.timeline_record(
        incident,
        kind=Kind.PAGING,
        summary="; ".join(parts)[:1000],
        actor=actor,
        source=source,
        occurred_at=now,
        details={
            "level": level.number,
            "reason": reason,
            "targets": [target.name for target in outcome.targets],
            "already_paged": [user.get_username() for user in outcome.already_paged],
            "paged_nobody": False,
        },
    )
    if outcome.targets:
        title = "a confidential incident" if incident.confidential else incident.title
        notifications.notify(
            incident,
            Event.PAGE,
            subject=f"Paged: {incident.severity.key} {incident.reference}: {title}"[:300],
            message=f"{incident.reference} {why}.\n\n"
            f"{settings.SITE_URL}{incident.get_absolute_url()}",
            users=[],
            targets=outcome.targets,
        )
    if fresh:
        paged = paging.page_people(
            incident=incident,
            users=fresh,
            reason=reason,
            level=level.number,
            why=why,
            actor=actor,
            source=source,
            now=now,
        )
        outcome.pages, outcome.unreachable = paged.pages, paged.unreachable
    return outcome


# --- not acknowledged in time ---------------------------------------------------------


def _fired(incident_ids, reasons) -> set[tuple]:
    """Return (incident pk, reason, level, due_at) of each escalation already fired."""
    rows = Escalation.objects.filter(incident_id__in=incident_ids, reason__in=reasons).order_by()
    return set(rows.values_list("incident_id", "reason", "level", "due_at"))


def _fired_levels(incident_ids) -> set[tuple[int, int]]:
    rows = Escalation.objects.filter(
        incident_id__in=incident_ids, reason=Escalation.Reason.UNACKNOWLEDGED
    ).order_by()
    return set(rows.values_list("incident_id", "level"))


def _due_levels(incident, policy, done, now) -> list[tuple[PolicyLevel, datetime]]:
    if policy is None:
        return []
    due = []
    for level in policy.levels.all():
        if (incident.pk, level.number) in done:
            continue
        at = level_due_at(incident, level)
        if at is not None and at <= now:
            due.append((level, at))
    return due


def escalate_unacknowledged(now: datetime | None = None) -> int:
    """Page every level of its policy an unacknowledged incident has reached; return
    how many levels fired. A fixed number of queries to find them however many
    incidents wait: one that fired as many levels as the longest policy has is not
    read at all; then a few per level fired."""
    now = now or timezone.now()
    policies = policies_loaded()
    most = max((len(policy.levels.all()) for policy in policies.values()), default=0)
    if not most:
        return 0
    fired = (
        Escalation.objects.filter(incident=OuterRef("pk"), reason=Escalation.Reason.UNACKNOWLEDGED)
        .order_by()
        .values("incident")
        .annotate(n=Count("pk"))
        .values("n")
    )
    waiting = list(
        Incident.objects.filter(**WAITING)
        .select_related("severity")
        .annotate(fired=Coalesce(Subquery(fired, output_field=IntegerField()), Value(0)))
        .filter(fired__lt=most)
    )
    if not waiting:
        return 0
    teams = teams_by_incident(waiting)
    done = _fired_levels([incident.pk for incident in waiting])
    due = [
        incident.pk
        for incident in waiting
        if _due_levels(incident, _policy_of(teams[incident.pk], policies), done, now)
    ]
    if not due:
        return 0
    try:
        with transaction.atomic():
            return _fire_unacknowledged(due, policies, teams, now)
    except IntegrityError:
        # Another round wrote one of these escalations first: it paged for them; the
        # next round fires whatever else is due.
        return 0


def _fire_unacknowledged(incident_ids, policies, teams, now) -> int:
    # An acknowledgement racing this round must stop the page, not follow it: the row
    # lock holds it off until the pages are written, and the filter drops incidents
    # acknowledged (or cancelled) since the scan. Locked in pk order, so two watchdogs
    # locking overlapping sets queue behind each other, never deadlock.
    locked = list(
        Incident.objects.select_for_update(of=("self",))
        .select_related("severity", "incident_type")
        .filter(pk__in=incident_ids, **WAITING)
        .order_by("pk")
    )
    # What another watchdog fired while we waited for the locks; nobody else can now.
    done = _fired_levels([incident.pk for incident in locked])
    steps = [
        (incident, level, due)
        for incident in locked
        for level, due in _due_levels(incident, _policy_of(teams[incident.pk], policies), done, now)
    ]
    fired_at = timezone.now()
    # one_escalation_per_step: a second round with the same step fails here, and its
    # whole round rolls back (see escalate_unacknowledged).
    Escalation.objects.bulk_create(
        Escalation(
            incident=incident,
            reason=Escalation.Reason.UNACKNOWLEDGED,
            level=level.number,
            due_at=due,
            fired_at=fired_at,
        )
        for incident, level, due in steps
    )
    for incident, level, _ in steps:
        page_level(
            incident,
            level,
            reason=Page.Reason.ESCALATION,
            why=f"escalation {level}: not acknowledged in time",
            summary=f"Not acknowledged in time: escalated to {level}",
            teams=teams[incident.pk],
            source=Source.SYSTEM,
            now=now,
        )
    return len(steps)


# --- stuck ----------------------------------------------------------------------------

STUCK_STATUSES = (Status.INVESTIGATING, Status.IDENTIFIED)


def _stuck_candidates(rules, now, **filters):
    """Acknowledged, open incidents of a severity with a stuck rule that one of its
    deadlines has passed for (the not-mitigated one only if it has not fired yet)."""
    latest = StatusUpdate.objects.filter(incident=OuterRef("pk")).order_by("-number")
    mitigated_fired = Escalation.objects.filter(
        incident=OuterRef("pk"), reason=Escalation.Reason.NOT_MITIGATED
    )
    conditions = []
    for rule in rules.values():
        parts = []
        if rule.no_update_for:
            since = now - rule.no_update_for
            parts.append(
                Q(last_update_at__lte=since)
                | Q(last_update_at__isnull=True, acknowledged_at__lte=since)
            )
        if rule.not_mitigated_in:
            parts.append(
                Q(
                    mitigated_at__isnull=True,
                    declared_at__lte=now - rule.not_mitigated_in,
                    mitigation_fired=False,
                )
            )
        if parts:
            conditions.append(Q(severity_id=rule.severity_id) & reduce(or_, parts))
    if not conditions:
        return Incident.objects.none()
    return (
        Incident.objects.filter(
            status__in=STUCK_STATUSES,
            acknowledged_at__isnull=False,
            declared_at__isnull=False,
            **filters,
        )
        .annotate(
            last_update_at=Subquery(latest.values("published_at")[:1]),
            mitigation_fired=Exists(mitigated_fired),
        )
        .filter(reduce(or_, conditions))
        .select_related("severity", "incident_type")
    )


def _stuck_steps(incident, rule, done, now) -> list[tuple[str, datetime]]:
    steps = []
    if rule.no_update_for:
        last = incident.last_update_at or incident.acknowledged_at
        due = last + rule.no_update_for
        key = (incident.pk, Escalation.Reason.NO_UPDATE, rule.level, due)
        if due <= now and key not in done:
            steps.append((Escalation.Reason.NO_UPDATE, due))
    if rule.not_mitigated_in and incident.mitigated_at is None:
        due = incident.declared_at + rule.not_mitigated_in
        key = (incident.pk, Escalation.Reason.NOT_MITIGATED, rule.level, due)
        if due <= now and key not in done:
            steps.append((Escalation.Reason.NOT_MITIGATED, due))
    return steps


STUCK_REASONS = [Escalation.Reason.NO_UPDATE, Escalation.Reason.NOT_MITIGATED]


def escalate_stuck(now: datetime | None = None) -> int:
    """Page the policy level a stuck rule names for each acknowledged incident that has
    gone without a status update too long (once per missed deadline) or is not
    mitigated in time (once); return how many escalations fired. The scan reads only
    incidents a deadline has passed for, in a fixed number of queries."""
    now = now or timezone.now()
    rules = {rule.severity_id: rule for rule in StuckRule.objects.all()}
    if not rules:
        return 0
    candidates = list(_stuck_candidates(rules, now))
    if not candidates:
        return 0
    done = _fired([incident.pk for incident in candidates], STUCK_REASONS)
    due = [
        incident.pk
        for incident in candidates
        if _stuck_steps(incident, rules[incident.severity_id], done, now)
    ]
    if not due:
        return 0
    try:
        with transaction.atomic():
            return _fire_stuck(due, rules, now)
    except IntegrityError:
        return 0  # another round fired these first (one_escalation_per_step)


def _fire_stuck(incident_ids, rules, now) -> int:
    # Locked in pk order and read again under the lock, as for the unacknowledged: an
    # update posted or a mitigation meanwhile is seen here, and pages nobody.
    pks = list(
        Incident.objects.select_for_update(of=("self",))
        .filter(pk__in=incident_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    locked = list(_stuck_candidates(rules, now, pk__in=pks).order_by("pk"))
    done = _fired(pks, STUCK_REASONS)
    steps = [
        (incident, reason, due)
        for incident in locked
        for reason, due in _stuck_steps(incident, rules[incident.severity_id], done, now)
    ]
    fired_at = timezone.now()
    Escalation.objects.bulk_create(
        Escalation(
            incident=incident,
            reason=reason,
            level=rules[incident.severity_id].level,
            due_at=due,
            fired_at=fired_at,
        )
        for incident, reason, due in steps
    )
    if not steps:
        return 0
    policies = policies_loaded()
    teams = teams_by_incident([incident for incident, _, _ in steps])
    for incident, reason, _ in steps:
        rule = rules[incident.severity_id]
        if reason == Escalation.Reason.NO_UPDATE:
            last = incident.last_update_at or incident.acknowledged_at
            what = f"no status update since {last:%Y-%m-%d %H:%M} UTC"
        else:
            what = f"not mitigated within {_duration(rule.not_mitigated_in)} of the declaration"
        policy = _policy_of(teams[incident.pk], policies)
        level = next(
            (
                level
                for level in (policy.levels.all() if policy else ())
                if level.number == rule.level
            ),
            None,
        )
        if level is None:
            paging.warn_paged_nobody(
                incident,
                f"stuck ({what}), but "
                + (
                    f"{policy} has no level {rule.level}"
                    if policy
                    else "there is no escalation policy"
                ),
                source=Source.SYSTEM,
                when=now,
            )
            continue
        page_level(
            incident,
            level,
            reason=Page.Reason.STUCK,
            why=f"stuck, {what}: escalation {level}",
            summary=f"Stuck, {what}: escalated to {level}",
            teams=teams[incident.pk],
            source=Source.SYSTEM,
            now=now,
        )
    return len(steps)


def _duration(delta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} min"


# --- by hand --------------------------------------------------------------------------

ENDED = (Status.CLOSED, Status.CANCELLED)


@transaction.atomic
def page_manually(
    *,
    incident: Incident,
    level: int | None = None,
    user=None,
    message: str = "",
    actor,
    source: str,
    now: datetime | None = None,
) -> Outcome:
    """Page level `level` of the incident's policy now, or one person (exactly one of
    the two), with `message` saying why."""
    if (level is None) == (user is None):
        raise DomainError(
            "Page either a level of the escalation policy or one person."
            if level is None
            else "Page a level or a person, not both.",
            field="level" if user is None else "user",
        )
    message = clean_text(message, field="message", limit=NOTE_TEXT)
    now = now or timezone.now()
    incident = services.lock_incident(incident)
    if incident.status in ENDED:
        raise StateConflict(
            f"{incident.reference} is {incident.get_status_display().lower()}; "
            "nobody can be paged for it."
        )
    who = actor.get_username() if actor is not None else "the system"
    note = f": {message}" if message else ""
    if user is not None:
        return _page_person(incident, user, who=who, note=note, actor=actor, source=source, now=now)
    teams = teams_of(incident)
    policy = policy_for(incident, teams=teams)
    levels = {lvl.number: lvl for lvl in policy.levels.all()} if policy else {}
    if level not in levels:
        if not levels:
            raise DomainError(
                "This incident has no escalation policy with levels (its team has none and "
                "there is no default policy with levels).",
                field="level",
            )
        known = ", ".join(str(lvl) for lvl in levels.values())
        raise DomainError(f"{policy} has no level {level}; its levels: {known}.", field="level")
    chosen = levels[level]
    return page_level(
        incident,
        chosen,
        reason=Page.Reason.MANUAL,
        why=f"{chosen} by hand, by {who}{note}",
        summary=f"{who} paged {chosen} by hand{note}",
        teams=teams,
        # A page by hand is meant: only an open page by hand already covers someone.
        skip_reasons=[Page.Reason.MANUAL],
        actor=actor,
        source=source,
        now=now,
    )


def _page_person(incident, user, *, who, note, actor, source, now) -> Outcome:
    name = user.get_username()
    if not user.is_active:
        raise DomainError(f"{name} is not an active user.", field="user")
    if not user_may_see_incident(user, incident):
        raise DomainError(
            f"{name} may not see confidential {incident.reference}; give them a role on "
            "the incident first, then page them.",
            field="user",
        )
    if user.pk in _open_pages(incident, [Page.Reason.MANUAL]):
        raise StateConflict(
            f"{name} is already being paged by hand for {incident.reference} and has not "
            "answered yet.",
            field="user",
        )
    paged = paging.page_people(
        incident=incident,
        users=[user],
        reason=Page.Reason.MANUAL,
        why=f"by hand, by {who}{note}",
        actor=actor,
        source=source,
        now=now,
    )
    return Outcome(pages=paged.pages, unreachable=paged.unreachable)
