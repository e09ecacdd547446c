"""The commander's dashboard panel of alerts: what monitoring says that no incident
holds yet (firing alerts waiting, held by a silence or matched by no rule), and the
sources gone quiet (a missing heartbeat means we may be blind)."""

from django.template.loader import render_to_string
from django.urls import reverse

from incidents.admin.contributions import DashboardPanel

from ..models import Alert, AlertSource
from ..queries import alert_list_visible_to

PANEL_ROWS = 8


def alerts_panel(request) -> str | None:
    """Firing alerts without an incident, most recent first, and the quiet sources:
    three queries, each bounded; None when monitoring has nothing to add."""
    user = request.user
    if not user.has_perm("alerts.view_alert"):
        return None
    # Firing alerts are few (the one-firing-per-fingerprint index holds exactly them).
    waiting = alert_list_visible_to(
        user, Alert.objects.filter(status=Alert.Status.FIRING, incident__isnull=True)
    )
    alerts = list(
        waiting.select_related("source", "silenced_by").order_by("-last_seen_at")[: PANEL_ROWS + 1]
    )
    quiet = []
    if user.has_perm("alerts.view_alertsource"):
        quiet = list(
            AlertSource.objects.filter(
                enabled=True, heartbeat_minutes__isnull=False, quiet_since__isnull=False
            ).order_by("quiet_since")[:PANEL_ROWS]
        )
    if not alerts and not quiet:
        return None
    firing = waiting.count() if len(alerts) > PANEL_ROWS else len(alerts)
    changelist = reverse("admin:alerts_alert_changelist")
    return render_to_string(
        "admin/alerts/dashboard_panel.html",
        {
            "alerts": [
                {"alert": alert, "url": reverse("admin:alerts_alert_change", args=[alert.pk])}
                for alert in alerts[:PANEL_ROWS]
            ],
            "firing": firing,
            "all_url": f"{changelist}?status__exact=firing&has_incident=no",
            "quiet": [
                {
                    "source": source,
                    "url": reverse("admin:alerts_alertsource_change", args=[source.pk]),
                }
                for source in quiet
            ],
        },
    )


PANEL = DashboardPanel("Monitoring", alerts_panel, section="attention", order=30)
