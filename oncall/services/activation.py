"""Team activation: declaring an incident (or raising its severity) staffs the roles its
severity's activation rules name, from whoever is on call for the incident's team.

The teams are those owning the incident's services, in name order, then the default
team: for each role, the first with someone on call for it staffs it (a service team
has its responders and technical leads; the default team, commanders and scribes).
Each person staffed is given the role and paged once, naming every role they took.
Paging is never silent:
a role nobody is on call for, or an incident no team would answer, says so on the
timeline and to the incident's lead.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from incidents import extensions, notifications, services
from incidents.models import Incident, Role, RoleAssignment, Source, Status

from .. import schedule
from ..models import ActivationRule, Page, Team
from . import paging

# The order roles are staffed and named in: the reference's, commander first.
ROLE_ORDER = [role for role in Role.values if role != Role.SME]
NO_TEAM = "no team owns its services and there is no default team"


def _owns(incident_ids) -> Exists:
    through = Team.services.through
    return Exists(through.objects.filter(team=OuterRef("pk"), service__incidents__in=incident_ids))


def teams_of(incident: Incident) -> list[Team]:
    """Return the incident's teams: those owning its services (by name), then the
    default team. One query."""
    teams = list(
        Team.objects.annotate(owns=_owns([incident.pk]))
        .filter(Q(owns=True) | Q(is_default=True))
        .select_related("escalation_policy")
        .order_by("name")
    )
    owners = [team for team in teams if team.owns]
    return owners + [team for team in teams if team.is_default and not team.owns]


def teams_by_incident(incidents) -> dict[int, list[Team]]:
    """Return `teams_of` for each of `incidents`, in two queries for them all."""
    incidents = list(incidents)
    if not incidents:
        return {}
    through = Team.services.through
    owned = defaultdict(list)
    teams = {}
    pairs = list(
        through.objects.filter(service__incidents__in=[incident.pk for incident in incidents])
        .values_list("service__incidents", "team_id")
        .distinct()
    )
    wanted = {team_id for _, team_id in pairs}
    for team in Team.objects.filter(Q(pk__in=wanted) | Q(is_default=True)).select_related(
        "escalation_policy"
    ):
        teams[team.pk] = team
    default = next((team for team in teams.values() if team.is_default), None)
    for incident_id, team_id in pairs:
        owned[incident_id].append(teams[team_id])
    result = {}
    for incident in incidents:
        owners = sorted(owned.get(incident.pk, []), key=lambda team: team.name)
        result[incident.pk] = owners + ([default] if default and default not in owners else [])
    return result


def roles_missing(incident: Incident) -> list[str]:
    """Return the roles the incident's severity staffs for its type and nobody holds
    now, in ROLE_ORDER: one query (the rules, less the roles held, as a subquery)."""
    held = RoleAssignment.objects.filter(incident=incident, relieved_at__isnull=True)
    rules = (
        ActivationRule.objects.filter(severity_id=incident.severity_id)
        .filter(Q(incident_types__isnull=True) | Q(incident_types=incident.incident_type_id))
        .exclude(role__in=held.values("role"))
    )
    wanted = set(rules.values_list("role", flat=True).distinct())
    return [role for role in ROLE_ORDER if role in wanted]


def _label(role: str) -> str:
    return Role(role).label.lower()


def activate(*, incident: Incident, actor, source: str, now: datetime | None = None) -> list:
    """Staff every role the incident's severity needs and nobody holds, from who is on
    call for its team now, and page each person staffed (inside the caller's
    transaction). Return the pages started."""
    if notifications.is_muted():
        return []  # history being loaded (demo data, imports): nobody is woken for it
    now = now or timezone.now()
    missing = roles_missing(incident)
    if not missing:
        return []
    teams = teams_of(incident)
    if not teams:
        paging.warn_paged_nobody(
            incident,
            f"{NO_TEAM}, so nobody was staffed as {', '.join(map(_label, missing))}",
            actor=actor,
            source=source,
            when=now,
        )
        return []
    # Who is on call, read once for every team and role; per role, the first team (in
    # name order) with someone on call for it staffs it.
    by_team_role = defaultdict(list)
    for shift in schedule.on_call(teams=teams, at=now):
        if shift.user.is_active:
            by_team_role[(shift.team.pk, shift.role)].append(shift.user)
    staffed: dict[int, list[str]] = {}
    people = {}
    uncovered = []
    for role in missing:
        user = next(
            (
                by_team_role[(team.pk, role)][0]
                for team in teams
                if by_team_role.get((team.pk, role))
            ),
            None,
        )
        if user is None:
            uncovered.append(role)
            continue
        # The page below tells them (once, naming every role they took).
        services.role_assign(
            incident=incident,
            role=role,
            user=user,
            actor=None,
            source=Source.SYSTEM,
            tell_holder=False,
        )
        staffed.setdefault(user.pk, []).append(role)
        people[user.pk] = user
    pages = []
    # One page per person, naming every role they took: two pages for one person a
    # second apart would only wake them twice for the same call.
    for pk, roles in staffed.items():
        result = paging.page_people(
            incident=incident,
            users=[people[pk]],
            reason=Page.Reason.ACTIVATION,
            role=roles[0],
            why=f"as {' and '.join(map(_label, roles))}",
            actor=actor,
            source=source,
        )
        pages += result.pages
    if uncovered:
        names = " or ".join(team.name for team in teams)
        paging.warn_paged_nobody(
            incident,
            f"nobody is on call in {names} for {', '.join(map(_label, uncovered))}",
            actor=actor,
            source=source,
            when=now,
        )
    return pages


# Declared, not yet resolved: an incident whose team is (or should be) at work.
ACTIVE = {Status.DECLARED, Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING}


def activate_on_declared(event: extensions.Declared) -> None:
    """Subscriber of `declared`: staff the new incident's roles."""
    activate(incident=event.incident, actor=event.actor, source=event.source)


def activate_on_severity(event: extensions.SeverityChanged) -> None:
    """Subscriber of `severity_changed`: raising the severity staffs the roles now
    missing; lowering it stands nobody down and staffs nothing. A triage candidate is
    staffed when it is accepted (its `declared`), not when it is re-rated."""
    if event.to_severity.rank >= event.from_severity.rank:
        return
    if event.incident.status not in ACTIVE:
        return
    activate(incident=event.incident, actor=event.actor, source=event.source)
