"""Where alerts come from: the sources (whose secret is shown once, when made or rotated)
and the raw payloads they sent (for those who see every incident)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import OuterRef, Subquery
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from incidents.admin import GuardedHistoryAdmin, KeepsTypedInput, badge, refusals
from incidents.errors import DomainError
from incidents.queries import user_sees_all_incidents

from .. import services
from ..models import AlertPayload, AlertSource
from ..queries import payload_list_visible_to
from .common import PAYLOAD_COLORS, pre, pretty_body, run_each

Status = AlertPayload.Status
OPTION_FIELDS = (
    "description",
    "enabled",
    "signature_header",
    "timestamp_header",
    "heartbeat_minutes",
)


def may_read_payloads(user) -> bool:
    """Raw payloads may hold any alert of any incident: for those who see them all."""
    return user.has_perm("alerts.view_alertpayload") and user_sees_all_incidents(user)


# --- how to point a monitoring system at Sitrep ------------------------------------------


def alertmanager_yml(source: AlertSource, url: str, heartbeat_url: str, secret: str) -> str:
    """A receiver for alertmanager.yml (Alertmanager sends the secret as a bearer token)."""
    auth = (
        "        http_config:\n"
        "          authorization:\n"
        "            type: Bearer\n"
        f'            credentials: "{secret}"\n'
    )
    route = "route:\n  receiver: sitrep\n  group_by: [alertname, service]\n"
    receivers = (
        "receivers:\n"
        "  - name: sitrep\n"
        "    webhook_configs:\n"
        f'      - url: "{url}"\n'
        "        send_resolved: true\n" + auth
    )
    if source.heartbeat_minutes:
        # Prometheus' always-firing Watchdog, sent more often than Sitrep expects a beat.
        every = max(1, source.heartbeat_minutes // 2)
        route += (
            "  routes:\n"
            "    - matchers: ['alertname=\"Watchdog\"']\n"
            "      receiver: sitrep-heartbeat\n"
            "      group_wait: 0s\n"
            "      group_interval: 1m\n"
            f"      repeat_interval: {every}m\n"
        )
        receivers += (
            "  - name: sitrep-heartbeat\n"
            "    webhook_configs:\n"
            f'      - url: "{heartbeat_url}"\n'
            "        send_resolved: false\n" + auth
        )
    return route + receivers


def setup_for(request, source: AlertSource, secret: str) -> dict:
    """Return what the page that shows a secret tells: where to post, and how."""
    url = request.build_absolute_uri(reverse(f"alerts-api:intake-{source.kind}"))
    heartbeat_url = request.build_absolute_uri(reverse("alerts-api:heartbeat", args=[source.name]))
    setup = {
        "source": source,
        "secret": secret,
        "url": url,
        "signed_url": f"{url}?source={source.name}",
        "heartbeat_url": heartbeat_url,
        "curl": (
            f"curl -X POST '{url}' \\\n"
            f"  -H 'Authorization: Bearer {secret}' \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            '  -d \'{"title": "Disk almost full", "status": "firing", '
            '"labels": {"service": "api", "severity": "high"}, '
            '"metrics": {"disk_percent": 97}}\''
        ),
        "heartbeat_curl": (f"curl -X POST '{heartbeat_url}' -H 'Authorization: Bearer {secret}'"),
    }
    if source.kind == "alertmanager":
        setup["alertmanager_yml"] = alertmanager_yml(source, url, heartbeat_url, secret)
    return setup


# --- sources -----------------------------------------------------------------------------


class AlertSourceForm(forms.ModelForm):
    class Meta:
        model = AlertSource
        fields = ("name", "kind", *OPTION_FIELDS)


@admin.register(AlertSource)
class AlertSourceAdmin(KeepsTypedInput, GuardedHistoryAdmin):
    form = AlertSourceForm
    list_display = (
        "name",
        "kind",
        "enabled",
        "secret_hint",
        "heartbeat",
        "last_heard",
        "quiet",
    )
    list_filter = ("kind", "enabled")
    search_fields = ("name", "description")
    show_full_result_count = False
    actions = ("rotate_secret", "enable", "disable")
    add_fieldsets = (
        (None, {"fields": ("name", "kind", "description", "enabled")}),
        (
            "Signed requests (senders that sign the body, e.g. Grafana)",
            {"fields": ("signature_header", "timestamp_header"), "classes": ("collapse",)},
        ),
        ("Heartbeat", {"fields": ("heartbeat_minutes",)}),
    )
    fieldsets = (
        (None, {"fields": (("name", "kind"), "enabled", "description", "secret_hint", "endpoint")}),
        ("Signed requests", {"fields": ("signature_header", "timestamp_header")}),
        ("Heartbeat", {"fields": ("heartbeat_minutes", "last_heartbeat_at", "quiet_since")}),
        (None, {"fields": ("created_at",)}),
    )
    change_readonly = (
        "name",
        "kind",
        "secret_hint",
        "endpoint",
        "last_heartbeat_at",
        "quiet_since",
        "created_at",
    )

    def get_queryset(self, request):
        latest = (
            AlertPayload.objects.filter(source=OuterRef("pk"))
            .order_by("-received_at")
            .values("received_at")[:1]
        )
        return super().get_queryset(request).annotate(last_payload_at=Subquery(latest))

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj else self.add_fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.change_readonly if obj else ()

    def has_delete_permission(self, request, obj=None):
        # Its payloads and alerts keep it (PROTECT): disable a source instead.
        return request.user.is_superuser

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="secret", ordering="secret_hint")
    def secret_hint(self, obj):
        return obj.secret_hint or "—"

    @admin.display(description="heartbeat", ordering="heartbeat_minutes")
    def heartbeat(self, obj):
        return f"every {obj.heartbeat_minutes} min" if obj.heartbeat_minutes else "—"

    @admin.display(description="last heard")
    def last_heard(self, obj):
        heard = [t for t in (obj.last_heartbeat_at, getattr(obj, "last_payload_at", None)) if t]
        return f"{timesince(max(heard))} ago" if heard else "never"

    @admin.display(description="quiet since", ordering="quiet_since")
    def quiet(self, obj):
        if obj.quiet_since is None:
            return "—"
        return badge(f"quiet for {timesince(obj.quiet_since)}", "#b91c1c")

    @admin.display(description="post alerts to")
    def endpoint(self, obj):
        url = reverse(f"alerts-api:intake-{obj.kind}")
        return format_html(
            "<code>POST {}</code> with <code>Authorization: Bearer &lt;secret&gt;</code> "
            "(or a signature and <code>?source={}</code>). The secret was shown when the "
            "source was made; rotate it to see a new one.",
            url,
            obj.name,
        )

    # --- saving through services --------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        options = {name: data[name] for name in OPTION_FIELDS if name in data}
        with refusals():
            if change:
                changed = {k: v for k, v in options.items() if k in form.changed_data}
                if changed:
                    services.source_update(source=obj, actor=request.user, **changed)
                return
            source, secret = services.source_create(
                name=data["name"], kind=data["kind"], actor=request.user, **options
            )
        obj.pk, obj.secret_salt, obj.secret_hint = source.pk, source.secret_salt, source.secret_hint
        obj.new_secret = secret  # for response_add: shown on the next page, this once

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(obj, "new_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            f"Added the alert source {obj}. Copy its secret now: it is shown this once.",
            messages.SUCCESS,
        )
        return self.secret_page(request, [(obj, secret)], "New alert source")

    def secret_page(self, request, rotated, title):
        """The answer to the POST that made or rotated secrets: never a page to come back to."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "setups": [setup_for(request, source, secret) for source, secret in rotated],
            "changelist_url": reverse("admin:alerts_alertsource_changelist"),
        }
        response = TemplateResponse(request, "admin/alerts/alertsource/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    # --- actions ----------------------------------------------------------------------

    @admin.action(
        description="Rotate secret (the old one stops working at once)", permissions=["change"]
    )
    def rotate_secret(self, request, queryset):
        sources = list(queryset)
        if "rotate_confirmed" not in request.POST:
            context = {
                **self.admin_site.each_context(request),
                "title": "Rotate secrets",
                "opts": self.opts,
                "sources": sources,
                "action": "rotate_secret",
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/alerts/alertsource/rotate_confirm.html", context
            )
        rotated = []
        for source in sources:
            try:
                rotated.append(
                    (source, services.source_rotate_secret(source=source, actor=request.user))
                )
            except DomainError as error:
                self.message_user(request, f"{source}: {error.message}", messages.ERROR)
        if not rotated:
            return None
        self.message_user(
            request,
            f"Rotated the secret of {len(rotated)} source(s). Copy the new secrets now: they "
            "are shown this once, and the old ones no longer work.",
            messages.SUCCESS,
        )
        return self.secret_page(request, rotated, "New secrets")

    @admin.action(description="Enable", permissions=["change"])
    def enable(self, request, queryset):
        run_each(
            self,
            request,
            queryset.filter(enabled=False),
            "Enabled",
            lambda source: services.source_update(source=source, enabled=True, actor=request.user),
        )

    @admin.action(description="Disable (its payloads are refused)", permissions=["change"])
    def disable(self, request, queryset):
        run_each(
            self,
            request,
            queryset.filter(enabled=True),
            "Disabled",
            lambda source: services.source_update(source=source, enabled=False, actor=request.user),
        )


# --- raw payloads ------------------------------------------------------------------------


@admin.register(AlertPayload)
class AlertPayloadAdmin(admin.ModelAdmin):
    """Read-only: the bodies as they arrived, and why a refused one was refused."""

    list_display = (
        "id",
        "source",
        "received_at",
        "status_badge",
        "alert_count",
        "attempts",
        "error_excerpt",
    )
    list_display_links = ("id", "received_at")
    list_filter = ("status", "source")
    list_select_related = ("source",)
    list_per_page = 50
    show_full_result_count = False
    actions = ("process_again",)
    fields = (
        ("source", "received_at"),
        ("status_badge", "attempts", "processed_at"),
        ("content_type", "alert_count"),
        "error_shown",
        "alerts_link",
        "body_shown",
    )
    readonly_fields = (
        "source",
        "received_at",
        "status_badge",
        "attempts",
        "processed_at",
        "content_type",
        "alert_count",
        "error_shown",
        "alerts_link",
        "body_shown",
    )

    def get_queryset(self, request):
        return payload_list_visible_to(request.user, super().get_queryset(request))

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and user_sees_all_incidents(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the daily prune forgets old ones

    def has_retry_permission(self, request):
        # Processing a stored payload again is running the intake: for who manages it.
        return self.has_view_permission(request) and request.user.has_perm(
            "alerts.change_alertsource"
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.get_status_display(), PAYLOAD_COLORS[obj.status])

    @admin.display(description="error")
    def error_excerpt(self, obj):
        first = obj.error.strip().splitlines()[-1:] if obj.error else []
        text = first[0] if first else ""
        return (text[:100] + "…") if len(text) > 100 else (text or "—")

    @admin.display(description="error")
    def error_shown(self, obj):
        return pre(obj.error) if obj.error else "—"

    @admin.display(description="alerts")
    def alerts_link(self, obj):
        url = reverse("admin:alerts_alert_changelist") + f"?last_payload__id__exact={obj.pk}"
        return format_html('<a href="{}">The alerts last seen in this payload</a>', url)

    @admin.display(description="body (as received; JSON indented)")
    def body_shown(self, obj):
        return pre(pretty_body(obj.body)) if obj.body else "(empty)"

    @admin.action(description="Process again (received or failed ones)", permissions=["retry"])
    def process_again(self, request, queryset):
        waiting = Status.RECEIVED, Status.FAILED
        chosen = list(queryset.filter(status__in=waiting).select_related("source"))
        skipped = queryset.exclude(status__in=waiting).count()
        processed = sum(services.payload_retry(payload) for payload in chosen)
        if processed:
            self.message_user(request, f"Processed {processed} payload(s) again.", messages.SUCCESS)
        if len(chosen) - processed:
            self.message_user(
                request,
                f"{len(chosen) - processed} payload(s) could not be processed: see their error.",
                messages.ERROR,
            )
        if skipped:
            self.message_user(
                request,
                f"Left {skipped} payload(s) alone: only received or failed ones are processed "
                "again.",
                messages.WARNING,
            )
