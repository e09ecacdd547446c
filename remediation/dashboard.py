"""The commander's dashboard panel of remediation: my overdue action items."""

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from incidents.admin.contributions import DashboardPanel

from .models import ActionItem
from .queries import action_item_list_visible_to

PANEL_ROWS = 10


def my_overdue_items_panel(request) -> str | None:
    """My unfinished items past their due date, oldest due first (the (owner, status)
    index); None when there are none or the user may not read items."""
    user = request.user
    if not user.has_perm("remediation.view_actionitem"):
        return None
    today = timezone.localdate()
    items = list(
        action_item_list_visible_to(user, ActionItem.objects.overdue(today).filter(owner=user))
        .select_related("incident")
        .order_by("due_on", "priority", "pk")[: PANEL_ROWS + 1]
    )
    if not items:
        return None
    rows = [
        {
            "item": item,
            "url": reverse("admin:remediation_actionitem_change", args=[item.pk]),
            "days_late": (today - item.due_on).days,
        }
        for item in items[:PANEL_ROWS]
    ]
    return render_to_string(
        "admin/remediation/dashboard_panel.html",
        {
            "rows": rows,
            "more": len(items) > PANEL_ROWS,
            "all_url": reverse("admin:remediation_actionitem_changelist")
            + "?mine=yes&attention=overdue",
        },
    )


PANEL = DashboardPanel("My overdue action items", my_overdue_items_panel, section="mine", order=20)
