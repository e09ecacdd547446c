"""The oncall app's paging provider (the core's `paging` slot): a triage candidate pages
whoever is on call for its team, and the escalation watchdog follows the escalation
policies instead of the core's ladder."""

from __future__ import annotations

from datetime import datetime

from incidents.models import Incident

from . import schedule
from .models import OnCallRole, Page
from .services import escalation, paging
from .services.activation import teams_of

# Who triages a candidate: the on-call responder, else the technical lead, else anyone
# on call for the team (None: any role).
TRIAGE_ROLES = [OnCallRole.RESPONDER, OnCallRole.TECHNICAL_LEAD, None]


def triage_people(incident: Incident, *, at: datetime, teams=None) -> list:
    """Return who is paged to triage `incident`: the first of TRIAGE_ROLES anyone is on
    call for, in the incident's teams."""
    teams = teams_of(incident) if teams is None else teams
    if not teams:
        return []
    shifts = [shift for shift in schedule.on_call(teams=teams, at=at) if shift.user.is_active]
    for role in TRIAGE_ROLES:
        users = [shift.user for shift in shifts if role is None or shift.role == role]
        if users:
            return list({user.pk: user for user in users}.values())
    return []


class OnCallPaging:
    """Rotations and escalation policies page; the core's ladder pages nobody."""

    uses_ladder = False

    def __repr__(self):
        return "<on-call rotations and escalation policies>"

    def triage(self, incident, *, lead, actor, source, when) -> list:
        teams = teams_of(incident)
        users = triage_people(incident, at=when, teams=teams)
        if users:
            # page_people writes its own outbox rows (and says whom it could not reach).
            paging.page_people(
                incident=incident,
                users=users,
                reason=Page.Reason.TRIAGE,
                why="to triage it",
                urgency=paging.urgency_of(incident.severity),
                actor=actor,
                source=source,
                now=when,
            )
            return []
        problem = (
            f"nobody is on call in {' or '.join(team.name for team in teams)}"
            if teams
            else "no team owns its services and there is no default team"
        )
        # Told to the lead the core names (the commander, else whoever raised it).
        paging.warn_paged_nobody(
            incident, problem, actor=actor, source=source, when=when, why="to triage it"
        )
        return []

    def escalate(self, now: datetime | None = None) -> int:
        return escalation.escalate_unacknowledged(now)
