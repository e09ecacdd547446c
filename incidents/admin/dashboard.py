"""The commander's dashboard, the admin's landing page for incident staff: what needs
attention now (each row with its SLA timers and a one-click action), my work, and what
is open now; other apps add panels (contributions.contribute_dashboard).

Every read here is bounded (LIMIT) and served by an index, and the page costs the same
few queries whatever the number of incidents (tests/incidents/test_dashboard.py pins it).
The one-click actions post to one URL (SitrepAdminSite.dashboard_act), which calls the
service and redirects back with a message: a refusal is a message, never an error page.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .. import services
from ..models import Incident, Role, RoleAssignment, Severity, Source, Status
from ..queries import (
    COMMANDER_NEEDED_RANK,
    attention_q,
    incident_list_held_by,
    incident_list_visible_to,
    open_counts_by_severity,
    urgency_ordering,
    with_commander,
)
from ..watchdogs import with_last_update_due
from .contributions import DashboardAction, dashboard_action, dashboard_panels
from .timers import Timer, acknowledgement_timer, next_update_timer

# Rows shown in "Needs attention now" and "My incidents"; the rest are one link away.
ATTENTION_ROWS = 25
MINE_ROWS = 15
# Seconds between the dashboard's own refreshes (htmx; without JavaScript, a meta refresh).
REFRESH_SECONDS = 30


def action_button(request, name: str, target, label: str, *, primary: bool = False) -> str:
    """Return a one-click POST form (with the CSRF token) for the dashboard action `name`
    on `target`; it comes back to the dashboard with a message."""
    return format_html(
        '<form method="post" action="{}" class="dash-act">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
        '<input type="hidden" name="action" value="{}">'
        '<input type="hidden" name="target" value="{}">'
        '<button type="submit" class="button{}">{}</button></form>',
        reverse("admin:dashboard_act"),
        get_token(request),
        name,
        target,
        " default" if primary else "",
        label,
    )


@dataclass
class Row:
    """One incident on the dashboard, with why it is there and what can be done now."""

    incident: Incident
    acknowledgement: Timer
    next_update: Timer
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (text, css class)
    actions: list[str] = field(default_factory=list)  # HTML of buttons and links
    roles: list[str] = field(default_factory=list)


def _base(user, now: datetime, severities) -> QuerySet:
    queryset = incident_list_visible_to(user, Incident.objects.select_related("severity"))
    return with_last_update_due(with_commander(queryset))


def _row(request, incident: Incident, now: datetime, may_change: bool) -> Row:
    row = Row(incident, acknowledgement_timer(incident, now), next_update_timer(incident, now))
    commanded = getattr(incident, "commander_username", None)
    if incident.status == Status.TRIAGE:
        row.reasons.append(("Triage candidate waiting", "dash-why-triage"))
        if may_change:
            row.actions.append(
                action_button(request, "core.accept", incident.pk, "Accept", primary=True)
            )
    elif incident.status == Status.DECLARED and incident.acknowledged_at is None:
        overdue = row.acknowledgement.is_overdue
        text = "Not acknowledged, overdue" if overdue else "Not acknowledged"
        row.reasons.append((text, "dash-why-overdue" if overdue else "dash-why-due"))
        if may_change:
            row.actions.append(
                action_button(request, "core.acknowledge", incident.pk, "Acknowledge", primary=True)
            )
    if row.next_update.is_overdue:
        row.reasons.append(("Status update overdue", "dash-why-overdue"))
        row.actions.append(
            format_html(
                '<a class="button" href="{}#wr-update-box">Post update</a>',
                incident.get_absolute_url(),
            )
        )
    if (
        not commanded
        and incident.is_open
        and incident.status != Status.TRIAGE
        and incident.severity.rank <= COMMANDER_NEEDED_RANK
    ):
        row.reasons.append(("No commander", "dash-why-nocmd"))
        if may_change:
            row.actions.append(
                action_button(request, "core.command", incident.pk, "Make me commander")
            )
    return row


def attention(request, now: datetime, severities) -> tuple[list[Row], bool]:
    """Return the rows of "Needs attention now", most urgent first, and whether there
    are more than shown (one query)."""
    found = list(
        _base(request.user, now, severities)
        .filter(attention_q(now, severities))
        .order_by(*urgency_ordering(now, severities))[: ATTENTION_ROWS + 1]
    )
    may_change = request.user.has_perm("incidents.change_incident")
    rows = [_row(request, incident, now, may_change) for incident in found[:ATTENTION_ROWS]]
    return rows, len(found) > ATTENTION_ROWS


def my_incidents(request, now: datetime, severities) -> tuple[list[Row], bool]:
    """Return the open incidents in which the user holds a role now, with the roles
    (two queries)."""
    user = request.user
    found = list(
        incident_list_held_by(user, _base(user, now, severities).open()).order_by(
            *urgency_ordering(now, severities)
        )[: MINE_ROWS + 1]
    )
    shown = found[:MINE_ROWS]
    held: dict[int, list[str]] = {}
    assignments = RoleAssignment.objects.filter(
        user=user, relieved_at__isnull=True, incident_id__in=[incident.pk for incident in shown]
    ).order_by("role")
    for incident_id, role in assignments.values_list("incident_id", "role"):
        held.setdefault(incident_id, []).append(Role(role).label)
    rows = []
    for incident in shown:
        row = Row(incident, acknowledgement_timer(incident, now), next_update_timer(incident, now))
        row.roles = held.get(incident.pk, [])
        rows.append(row)
    return rows, len(found) > MINE_ROWS


def _panels(request, section: str) -> list[tuple[str, str]]:
    rendered = ((panel.title, panel.render(request)) for panel in dashboard_panels(section))
    return [(title, html) for title, html in rendered if html]


def context(request) -> dict:
    """Return what the dashboard template shows."""
    now = timezone.now()
    severities = list(Severity.objects.order_by("rank"))
    rows, more = attention(request, now, severities)
    mine, more_mine = my_incidents(request, now, severities)
    changelist = reverse("admin:incidents_incident_changelist")
    return {
        "now": now,
        "attention_rows": rows,
        "attention_more": more,
        "attention_url": f"{changelist}?attention=yes",
        "mine_rows": mine,
        "mine_more": more_mine,
        "mine_url": f"{changelist}?mine=yes",
        "open_counts": open_counts_by_severity(request.user),
        "changelist_url": changelist,
        "panels": {section: _panels(request, section) for section in ("attention", "mine", "now")},
        "refresh_seconds": REFRESH_SECONDS,
        "live_url": reverse("admin:dashboard_live"),
        "apps_url": reverse("admin:apps"),
    }


# --- the core's one-click actions ------------------------------------------------------


def _incident_for(request, target) -> Incident:
    """Return the incident `target` names if the user may see and change it."""
    if not request.user.has_perm("incidents.change_incident"):
        raise PermissionDenied
    try:
        pk = int(target)
    except (TypeError, ValueError):
        raise Http404("No such incident.") from None
    incident = incident_list_visible_to(request.user).filter(pk=pk).first()
    if incident is None:
        raise Http404("No such incident, or not visible to you.")
    return incident


def _acknowledge(request, target) -> str:
    incident = services.incident_acknowledge(
        incident=_incident_for(request, target), actor=request.user, source=Source.ADMIN
    )
    return f"Acknowledged {incident.reference}."


def _accept(request, target) -> str:
    incident = services.incident_accept(
        incident=_incident_for(request, target), actor=request.user, source=Source.ADMIN
    )
    return f"Accepted {incident.reference} from triage: it is declared."


def _command(request, target) -> str:
    incident = _incident_for(request, target)
    services.role_assign(
        incident=incident,
        role=Role.COMMANDER,
        user=request.user,
        actor=request.user,
        source=Source.ADMIN,
    )
    return f"You now command {incident.reference}."


CORE_ACTIONS = {
    action.name: action
    for action in (
        DashboardAction("core.acknowledge", _acknowledge),
        DashboardAction("core.accept", _accept),
        DashboardAction("core.command", _command),
    )
}


def find_action(name: str) -> DashboardAction | None:
    """Return the core's or a contributed one-click action called `name`."""
    return CORE_ACTIONS.get(name) or dashboard_action(name)
