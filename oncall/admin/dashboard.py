"""The commander's dashboard panels of on-call: the pages nobody has answered yet (each
with an Acknowledge button for whoever may), and who is on call now."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from incidents.admin.contributions import DashboardAction, DashboardPanel
from incidents.admin.dashboard import action_button
from incidents.formatting import short_duration
from incidents.models import OPEN_STATUSES, Role, RoleAssignment, Source

from .. import schedule
from ..models import OnCallRole, Page
from ..queries import page_list_visible_to, user_may_acknowledge_page
from ..services import paging

PANEL_ROWS = 10
ACKNOWLEDGE = "oncall.acknowledge_page"


def _commanded_by(user, incident_ids) -> set[int]:
    """The incidents among `incident_ids` that `user` commands now (one query)."""
    return set(
        RoleAssignment.objects.filter(
            user=user, role=Role.COMMANDER, relieved_at__isnull=True, incident_id__in=incident_ids
        ).values_list("incident_id", flat=True)
    )


def unanswered_pages_panel(request) -> str | None:
    """Pages still unanswered on open incidents, oldest first; two queries."""
    user = request.user
    if not user.has_perm("oncall.view_page"):
        return None
    # Pages are stopped when their incident leaves the working states, so open pages
    # live on open incidents: the incident's (status, ...) index narrows them first.
    pages = list(
        page_list_visible_to(
            user,
            Page.objects.filter(
                acknowledged_at__isnull=True,
                stopped_at__isnull=True,
                incident__status__in=OPEN_STATUSES,
            ),
        )
        .select_related("incident", "user")
        .order_by("created_at", "pk")[: PANEL_ROWS + 1]
    )
    if not pages:
        return None
    shown = pages[:PANEL_ROWS]
    sees_all = user.has_perm("oncall.change_page")
    commands = set() if sees_all else _commanded_by(user, {page.incident_id for page in shown})
    now = timezone.now()
    rows = []
    for page in shown:
        may = sees_all or page.user_id == user.pk or page.incident_id in commands
        if page.next_step_at is not None:
            following = timezone.localtime(page.next_step_at)
            state = f"step {page.steps_sent} of {len(page.plan)} sent; next at {following:%H:%M %Z}"
        else:
            state = f"all {len(page.plan)} steps sent, unanswered"
        rows.append(
            {
                "page": page,
                "state": state,
                "waiting": short_duration(now - page.created_at),
                "button": action_button(request, ACKNOWLEDGE, page.pk, "Acknowledge")
                if may
                else "",
            }
        )
    return render_to_string(
        "admin/oncall/dashboard_pages.html",
        {
            "rows": rows,
            "more": len(pages) > PANEL_ROWS,
            "all_url": reverse("admin:oncall_page_changelist") + "?state=open",
        },
    )


def acknowledge_page(request, target) -> str:
    """Acknowledge the page named (as the page's person, or the incident's commander)."""
    try:
        pk = int(target)
    except (TypeError, ValueError):
        raise Http404("No such page.") from None
    page = (
        page_list_visible_to(request.user).select_related("incident", "user").filter(pk=pk).first()
    )
    if page is None:
        raise Http404("No such page, or not visible to you.")
    if not user_may_acknowledge_page(request.user, page):
        raise PermissionDenied
    paging.page_acknowledge(page=page, actor=request.user, via="admin", source=Source.ADMIN)
    return f"Acknowledged the page to {page.user.get_username()} for {page.incident.reference}."


def on_call_now_panel(request) -> str | None:
    """Who is on call now, team by team (schedule.on_call: three queries)."""
    if not request.user.has_perm("oncall.view_rotation"):
        return None
    shifts = schedule.on_call()
    if not shifts:
        return None
    labels = dict(OnCallRole.choices)
    rows = [
        {
            "team": shift.team,
            "role": labels.get(shift.role, shift.role),
            "user": shift.user,
            "until": shift.ends_at,
            "override": shift.override is not None,
        }
        for shift in shifts
    ]
    return render_to_string("admin/oncall/dashboard_on_call.html", {"rows": rows})


PAGES_PANEL = DashboardPanel(
    "Pages not answered",
    unanswered_pages_panel,
    section="attention",
    order=20,
    actions=(DashboardAction(ACKNOWLEDGE, acknowledge_page),),
)
ON_CALL_PANEL = DashboardPanel("On call now", on_call_now_panel, section="now", order=20)
