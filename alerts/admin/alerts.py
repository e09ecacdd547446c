"""The alerts and their groups, read-only (monitoring writes them), and what the alerts
app adds to the incident admin: the alerts column and the alerts panel."""

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from incidents.admin import GuardedHistoryAdmin, Panel, contribute
from incidents.admin.contributions import contribute_dashboard
from incidents.models import Incident

from .. import services
from ..models import Alert, AlertGroup
from ..queries import alert_group_list_visible_to, alert_list_visible_to
from . import dashboard
from .common import admin_link, mapping_table, safe_url, status_badge
from .intake import may_read_payloads


class SilencedFilter(admin.SimpleListFilter):
    title = "silenced"
    parameter_name = "silenced"

    def lookups(self, request, model_admin):
        return (("yes", "Held by a silence"), ("no", "Not silenced"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(silenced_by__isnull=False)
        if self.value() == "no":
            return queryset.filter(silenced_by__isnull=True)
        return queryset


class WithIncidentFilter(admin.SimpleListFilter):
    title = "incident"
    parameter_name = "has_incident"

    def lookups(self, request, model_admin):
        return (("yes", "Opened or joined one"), ("no", "None (no rule, waiting, ignored…)"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(incident__isnull=self.value() == "no")
        return queryset


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alerts as monitoring knows them; only the rules' judgement can be run again."""

    list_display = (
        "title",
        "status_shown",
        "source",
        "fingerprint_short",
        "times_received",
        "first_seen_at",
        "last_seen_at",
        "incident_link",
        "disposition",
    )
    list_filter = ("status", "source", "rule", SilencedFilter, WithIncidentFilter)
    search_fields = ("^fingerprint", "title")
    list_select_related = ("source", "incident")
    list_per_page = 50
    show_full_result_count = False
    date_hierarchy = None
    actions = ("judge_again",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("title", "status_shown"),
                    ("source", "fingerprint"),
                    "incident_link",
                    "disposition",
                    ("rule_link", "silence_link"),
                    "evaluate_at",
                )
            },
        ),
        (
            "What monitoring said",
            {"fields": ("labels_shown", "annotations_shown", "metrics_shown", "generator_link")},
        ),
        (
            "When",
            {
                "fields": (
                    ("starts_at", "ends_at"),
                    ("first_seen_at", "last_seen_at"),
                    ("resolved_at", "times_received"),
                    "payload_link",
                )
            },
        ),
    )
    readonly_fields = (
        "title",
        "status_shown",
        "source",
        "fingerprint",
        "incident_link",
        "disposition",
        "rule_link",
        "silence_link",
        "evaluate_at",
        "labels_shown",
        "annotations_shown",
        "metrics_shown",
        "generator_link",
        "starts_at",
        "ends_at",
        "first_seen_at",
        "last_seen_at",
        "resolved_at",
        "times_received",
        "payload_link",
    )

    def get_queryset(self, request):
        return alert_list_visible_to(request.user, super().get_queryset(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_judge_permission(self, request):
        # Judging again may open incidents: for those who tune the rules.
        return request.user.has_perm("alerts.change_detectionrule")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            obj.reader = request.user  # which links the page offers depends on who reads
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="status", ordering="status")
    def status_shown(self, obj):
        return status_badge(obj)

    @admin.display(description="fingerprint", ordering="fingerprint")
    def fingerprint_short(self, obj):
        return format_html('<code title="{}">{}</code>', obj.fingerprint, obj.fingerprint[:12])

    @admin.display(description="incident", ordering="incident__reference")
    def incident_link(self, obj):
        if obj.incident is None:
            return "—"
        url = reverse("admin:incidents_incident_change", args=[obj.incident_id])
        return format_html('<a href="{}">{}</a>', url, obj.incident.reference)

    @admin.display(description="rule")
    def rule_link(self, obj):
        return admin_link(obj.rule, user=getattr(obj, "reader", None))

    @admin.display(description="silenced by")
    def silence_link(self, obj):
        return admin_link(obj.silenced_by, user=getattr(obj, "reader", None))

    @admin.display(description="labels")
    def labels_shown(self, obj):
        return mapping_table(obj.labels)

    @admin.display(description="annotations")
    def annotations_shown(self, obj):
        return mapping_table(obj.annotations)

    @admin.display(description="metric values")
    def metrics_shown(self, obj):
        return mapping_table(obj.metrics, number=True)

    @admin.display(description="source of the alert")
    def generator_link(self, obj):
        return safe_url(obj.generator_url)

    @admin.display(description="last raw payload")
    def payload_link(self, obj):
        reader = getattr(obj, "reader", None)
        if obj.last_payload_id is None:
            return "— (pruned)"
        if reader is None or not may_read_payloads(reader):
            return "(raw payloads are for the security group)"
        url = reverse("admin:alerts_alertpayload_change", args=[obj.last_payload_id])
        return format_html('<a href="{}">payload #{}</a>', url, obj.last_payload_id)

    # --- actions ----------------------------------------------------------------------

    @admin.action(description="Judge again with today's rules", permissions=["judge"])
    def judge_again(self, request, queryset):
        chosen = list(queryset.filter(status=Alert.Status.FIRING, incident__isnull=True))
        looked_at = services.alerts_judge_again(chosen) if chosen else 0
        if looked_at:
            opened = (
                Alert.objects.filter(pk__in=[a.pk for a in chosen], incident__isnull=False)
                .values("incident")
                .distinct()
                .count()
            )
            self.message_user(
                request,
                f"Judged {looked_at} alert(s) again; {opened} now belong to an incident.",
            )
        left = queryset.count() - len(chosen)
        if left:
            self.message_user(
                request,
                f"Left {left} alert(s) as they are: only firing alerts without an incident "
                "are judged again.",
                "warning",
            )


@admin.register(AlertGroup)
class AlertGroupAdmin(GuardedHistoryAdmin):
    """Which open incident holds the alerts of a grouping key (read-only)."""

    list_display = ("key", "incident_link", "rule", "opened_at", "all_resolved_at", "closed_at")
    list_filter = (("closed_at", admin.EmptyFieldListFilter), "rule")
    search_fields = ("key", "incident__reference")
    list_select_related = ("incident", "rule")
    show_full_result_count = False
    fields = ("key", "incident_link", "rule", "opened_at", "all_resolved_at", "closed_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return alert_group_list_visible_to(request.user, super().get_queryset(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="incident", ordering="incident__reference")
    def incident_link(self, obj):
        if obj.incident is None:
            return "—"
        url = reverse("admin:incidents_incident_change", args=[obj.incident_id])
        return format_html('<a href="{}">{}</a>', url, obj.incident.reference)


# --- on the incident admin ----------------------------------------------------------------

PANEL_ROWS = 25


def _count(**where):
    return Coalesce(
        Subquery(
            Alert.objects.filter(incident=OuterRef("pk"), **where)
            .order_by()
            .values("incident")
            .annotate(n=Count("pk"))
            .values("n"),
            output_field=IntegerField(),
        ),
        Value(0),
    )


def with_alert_counts(request, queryset):
    """Annotate each incident with its alerts, all and firing (two subqueries on the
    alerts' incident index, whatever the length of the list)."""
    return queryset.annotate(
        alerts_total=_count(), alerts_firing=_count(status=Alert.Status.FIRING)
    )


@admin.display(description="alerts", ordering="alerts_firing")
def alerts_column(incident):
    total = getattr(incident, "alerts_total", 0)
    firing = getattr(incident, "alerts_firing", 0)
    if not total:
        return "—"
    if firing:
        return format_html('<span style="color:#dc2626;font-weight:600">{} firing</span>', firing)
    return "all resolved"


def alerts_panel(request, incident):
    """The incident's alerts, newest first; nothing when it has none."""
    alerts = Alert.objects.filter(incident=incident).select_related("source")
    counts = alerts.aggregate(
        total=Count("pk"), firing=Count("pk", filter=Q(status=Alert.Status.FIRING))
    )
    if not counts["total"]:
        return None
    shown = list(alerts.order_by("-last_seen_at")[:PANEL_ROWS])
    may_open = request.user.has_perm("alerts.view_alert")
    rows = [
        {
            "alert": alert,
            "status": status_badge(alert),
            "url": reverse("admin:alerts_alert_change", args=[alert.pk]) if may_open else "",
        }
        for alert in shown
    ]
    group = AlertGroup.objects.filter(incident=incident).first()
    return render_to_string(
        "admin/alerts/incident_alerts.html",
        {
            "rows": rows,
            "total": counts["total"],
            "firing": counts["firing"],
            "more": counts["total"] - len(shown),
            "group": group,
            "all_url": reverse("admin:alerts_alert_changelist")
            + f"?incident__id__exact={incident.pk}"
            if may_open
            else "",
        },
    )


contribute(
    Incident,
    columns=[alerts_column],
    querysets=[with_alert_counts],
    panels=[Panel("Alerts", alerts_panel)],
)
contribute_dashboard(dashboard.PANEL)  # firing alerts in no incident, quiet sources
