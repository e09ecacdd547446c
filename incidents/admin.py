"""The commander's console. Thin: every change goes through incidents.services."""

import secrets

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.validators import validate_email
from django.db.models import Count, prefetch_related_objects
from django.http import Http404, HttpResponseRedirect
from django.template import Template, TemplateSyntaxError
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from . import notifications, services
from .errors import IncidentError
from .formatting import short_duration
from .models import (
    APIKey,
    BusinessCalendar,
    ChannelKind,
    ChannelTarget,
    DeliveryAttempt,
    EscalationLevel,
    Holiday,
    Incident,
    IncidentType,
    MessageTemplate,
    Notification,
    Role,
    RoleAssignment,
    Service,
    Severity,
    Source,
    StakeholderGroup,
    Status,
    StatusUpdate,
    TimelineEvent,
)
from .queries import (
    active_users,
    incident_list_visible_to,
    notification_list_visible_to,
    user_may_see_incident,
    visible_incidents_prefetch,
    with_commander,
)
from .watchdogs import next_update_due, with_last_update_due

STATUS_COLORS = {
    Status.TRIAGE: "#7c3aed",
    Status.DECLARED: "#dc2626",
    Status.INVESTIGATING: "#c2410c",
    Status.IDENTIFIED: "#a16207",
    Status.MONITORING: "#2563eb",
    Status.RESOLVED: "#16a34a",
    Status.CLOSED: "#6b7280",
    Status.CANCELLED: "#9ca3af",
}


def badge(text: str, color: str):
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
        'font-weight:600;white-space:nowrap">{}</span>',
        color,
        text,
    )


HIDDEN_INCIDENT = "(a confidential incident)"


class VisibleHistoryContext(HistoricalRecordContextHelper):
    """Names in a history diff only the incidents the reader may see."""

    def __init__(self, model, historical_record, *, user):
        super().__init__(model, historical_record)
        self.user = user

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        if isinstance(value, list):
            return [self._shown(item) for item in value]
        return self._shown(value)

    def _shown(self, value):
        incident = value if isinstance(value, Incident) else getattr(value, "incident", None)
        if isinstance(incident, Incident) and not user_may_see_incident(self.user, incident):
            return HIDDEN_INCIDENT
        return value


class GuardedHistoryAdmin(SimpleHistoryAdmin):
    """History pages that show only what the user may see, and never write.

    simple-history's history views look rows up past get_queryset (so confidential
    incidents would leak) and render past versions and diffs from the history tables,
    past the change page's filters on related incidents; its version page saves on POST
    whatever the user's permissions (reverting around the services). All are closed here.
    """

    def history_view(self, request, object_id, extra_context=None):
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404("No such record, or not visible to you.")
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "GET":
            raise PermissionDenied("Past versions are read-only.")
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404("No such record, or not visible to you.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_historical_record_context_helper(self, request, historical_record):
        return VisibleHistoryContext(self.model, historical_record, user=request.user)

    def render_history_view(self, request, template, context, **kwargs):
        # A past version is rebuilt from the history table: give its many-to-many
        # links to incidents (rendered when the page shows them) only the visible ones.
        version = context.get("original")
        if version is not None:
            links = [
                visible_incidents_prefetch(request.user, field.name)
                for field in version._meta.many_to_many
                if field.related_model is Incident
            ]
            prefetch_related_objects([version], *links)
        return super().render_history_view(request, template, context, **kwargs)


class ServiceBackedAdmin(GuardedHistoryAdmin):
    """An admin whose saves and actions call services: a refusal is a message, not a 500."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # A service refusal raised while saving unwinds the admin's transaction, so
        # nothing of the submission is kept; the page says why.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except IncidentError as error:
            self.message_user(request, f"Nothing was saved: {error.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def run_service(self, request, queryset, verb, call):
        """Apply `call` to each row; report how many worked and why others did not."""
        done, failed = 0, []
        for obj in queryset:
            try:
                call(obj)
                done += 1
            except IncidentError as error:
                failed.append(error.message)
        if done:
            noun = self.model._meta.verbose_name
            self.message_user(request, f"{verb} {done} {noun}(s).", messages.SUCCESS)
        for message in failed:
            self.message_user(request, message, messages.ERROR)


# --- catalogue ------------------------------------------------------------------------


@admin.register(Service)
class ServiceAdmin(GuardedHistoryAdmin):
    list_display = ("name", "slug", "owning_team", "tier")
    list_filter = ("tier", "owning_team")
    search_fields = ("name", "slug", "owning_team", "description")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Severity)
class SeverityAdmin(GuardedHistoryAdmin):
    list_display = (
        "key",
        "colored_label",
        "rank",
        "acknowledge_within",
        "update_every",
        "escalate_after",
        "response_in_business_hours",
        "postmortem_required",
        "postmortem_due_days",
    )
    search_fields = ("key", "label")
    fieldsets = (
        (None, {"fields": ("key", "label", "rank", "aliases", "color", "description")}),
        (
            "Response policy",
            {
                "fields": (
                    "acknowledge_within",
                    "update_every",
                    "escalate_after",
                    "response_in_business_hours",
                )
            },
        ),
        ("Post-mortem", {"fields": ("postmortem_required", "postmortem_due_days")}),
    )

    @admin.display(description="label", ordering="label")
    def colored_label(self, obj):
        return badge(obj.label, obj.color)


@admin.register(IncidentType)
class IncidentTypeAdmin(GuardedHistoryAdmin):
    list_display = ("name", "slug", "confidential_by_default")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


# --- incidents ------------------------------------------------------------------------


class OpenFilter(admin.SimpleListFilter):
    title = "open / closed"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return (("yes", "Open"), ("no", "Resolved, closed or cancelled"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.open()
        if self.value() == "no":
            return queryset.closed()
        return queryset


class IncidentActionForm(ActionForm):
    """Extra inputs beside the action menu, read by the actions that need them."""

    to_status = forms.ChoiceField(
        required=False, label="Move to", choices=[("", "status…"), *Status.choices]
    )
    new_severity = forms.ModelChoiceField(
        required=False, label="Severity", queryset=Severity.objects.all(), empty_label="severity…"
    )
    note = forms.CharField(required=False, label="Note / reason")


class IncidentAdminForm(forms.ModelForm):
    move_to = forms.ChoiceField(
        required=False,
        label="Move to status",
        help_text="Only the moves the lifecycle allows from the current status are offered.",
    )
    move_note = forms.CharField(required=False, label="Note on the status change")
    severity_reason = forms.CharField(
        required=False,
        label="Reason for severity change",
        help_text="Required when the severity changes; it goes on the timeline.",
    )
    commander = forms.ModelChoiceField(
        required=False,
        queryset=active_users(),
        help_text="Who runs the response. Leave empty to assign later.",
    )

    class Meta:
        model = Incident
        fields = (
            "title",
            "severity",
            "incident_type",
            "environment",
            "summary",
            "services",
            "customer_impact",
            "estimated_users_affected",
            "detection_source",
            "confidential",
            "started_at",
            "detected_at",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            # Declaring: both times default to now, as in the services.
            for name in ("started_at", "detected_at"):
                if name in self.fields:
                    self.fields[name].required = False
                    self.fields[name].help_text = "Leave empty for now."
        if "move_to" in self.fields:
            allowed = services.allowed_transitions(self.instance.status)
            self.fields["move_to"].choices = [("", "—")] + [
                (value, Status(value).label) for value in allowed
            ]

    def clean(self):
        cleaned = super().clean()
        # Check the times here too, so a mistake keeps what was typed on the page.
        now = timezone.now()
        started = cleaned.get("started_at") or self.instance.started_at or now
        detected = cleaned.get("detected_at") or self.instance.detected_at or now
        try:
            services.check_times(started, detected, now, self.instance.declared_at)
        except IncidentError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        if (
            self.instance.pk is not None
            and "severity" in self.changed_data
            and not cleaned.get("severity_reason", "").strip()
        ):
            self.add_error("severity_reason", "Say why the severity changes.")
        return cleaned


class RoleAssignmentInline(admin.TabularInline):
    model = RoleAssignment
    fk_name = "incident"
    fields = ("role", "user", "assigned_at", "relieved_at", "assigned_by")
    readonly_fields = ("assigned_at", "relieved_at", "assigned_by")
    extra = 1
    verbose_name = "role"
    verbose_name_plural = "Roles (assigning a role hands it over; the previous holder is kept)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "assigned_by")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A plain list of active people: the user autocomplete would need every
        # commander to have view access to the whole user admin.
        if db_field.name == "user":
            kwargs["queryset"] = active_users()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # Past assignments are the record: they are shown, never edited or deleted.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TimelineEntryForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=[(kind.value, kind.label) for kind in TimelineEvent.MANUAL_KINDS],
        initial=TimelineEvent.Kind.NOTE,
    )
    occurred_at = forms.SplitDateTimeField(
        required=False,
        widget=admin.widgets.AdminSplitDateTime,
        help_text="Leave empty for now.",
    )
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 2, "cols": 70}))

    class Meta:
        model = TimelineEvent
        fields = ("occurred_at", "kind", "summary")

    def clean_occurred_at(self):
        # Empty means now; the service refuses times in the future.
        return self.cleaned_data.get("occurred_at") or timezone.now()


class TimelineEventInline(admin.TabularInline):
    model = TimelineEvent
    form = TimelineEntryForm
    fields = ("occurred_at", "kind", "summary", "author", "source")
    readonly_fields = ("author", "source")
    extra = 1
    verbose_name = "timeline entry"
    verbose_name_plural = "Timeline (add a note, action, decision or communication below)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")

    # The timeline is append-only.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(ServiceBackedAdmin):
    form = IncidentAdminForm
    action_form = IncidentActionForm
    list_display = (
        "reference",
        "title",
        "severity_badge",
        "status_badge",
        "environment",
        "commander",
        "declared_ago",
        "acknowledgement",
        "next_update",
    )
    list_display_links = ("reference", "title")
    list_filter = (
        OpenFilter,
        "status",
        "severity",
        "incident_type",
        "environment",
        "services",
        "confidential",
        ("declared_at", admin.DateFieldListFilter),
    )
    search_fields = ("reference", "title", "summary")
    list_select_related = ("severity", "incident_type")
    list_per_page = 50
    show_full_result_count = False
    view_on_site = False
    autocomplete_fields = ("services",)
    actions = ("acknowledge", "move_to_status", "change_severity", "make_me_commander")
    history_list_display = ("status", "severity")

    add_fieldsets = (
        (
            "What is happening",
            {"fields": ("title", "severity", "incident_type", "environment", "summary")},
        ),
        (
            "Impact",
            {
                "fields": (
                    "services",
                    "customer_impact",
                    "estimated_users_affected",
                    "detection_source",
                    "confidential",
                )
            },
        ),
        ("When", {"fields": ("started_at", "detected_at")}),
        ("Response", {"fields": ("commander",)}),
    )
    change_fieldsets = (
        (
            None,
            {
                "fields": (
                    ("reference", "status_badge", "acknowledgement", "next_update"),
                    "title",
                    ("severity", "severity_reason"),
                    ("move_to", "move_note"),
                    ("incident_type", "environment"),
                    "summary",
                )
            },
        ),
        (
            "Impact",
            {
                "fields": (
                    "services",
                    "customer_impact",
                    "estimated_users_affected",
                    "detection_source",
                    "confidential",
                )
            },
        ),
        (
            "Milestones",
            {
                "fields": (
                    ("started_at", "detected_at"),
                    ("declared_at", "declared_by"),
                    ("acknowledged_at", "identified_at"),
                    ("mitigated_at", "resolved_at"),
                    "closed_at",
                    "durations",
                )
            },
        ),
    )
    change_readonly_fields = (
        "reference",
        "status_badge",
        "acknowledgement",
        "next_update",
        "declared_at",
        "declared_by",
        "acknowledged_at",
        "identified_at",
        "mitigated_at",
        "resolved_at",
        "closed_at",
        "durations",
    )

    def get_queryset(self, request):
        queryset = incident_list_visible_to(request.user, super().get_queryset(request))
        return with_last_update_due(with_commander(queryset))

    def get_fieldsets(self, request, obj=None):
        return self.change_fieldsets if obj else self.add_fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.change_readonly_fields if obj else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # Editing the policy from inside an incident is a detour; it has its own pages.
        for name in ("severity", "incident_type"):
            if name not in form.base_fields:  # read-only for view-only users
                continue
            widget = form.base_fields[name].widget
            widget.can_add_related = widget.can_change_related = False
            widget.can_delete_related = widget.can_view_related = False
        return form

    def get_inlines(self, request, obj):
        return (RoleAssignmentInline, StatusUpdateInline, TimelineEventInline) if obj else ()

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="severity", ordering="severity__rank")
    def severity_badge(self, obj):
        return badge(obj.severity.key, obj.severity.color)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.get_status_display(), STATUS_COLORS[obj.status])

    @admin.display(description="commander")
    def commander(self, obj):
        return getattr(obj, "commander_username", None) or "—"

    @admin.display(description="declared", ordering="declared_at")
    def declared_ago(self, obj):
        if obj.declared_at is None:
            return "in triage"
        return f"{timesince(obj.declared_at)} ago"

    @admin.display(description="acknowledgement")
    def acknowledgement(self, obj):
        if obj.acknowledged_at is not None:
            taken = obj.acknowledged_at - (obj.declared_at or obj.acknowledged_at)
            return format_html("✔ in {}", short_duration(taken))
        if not obj.is_open or obj.ack_due_at is None:
            return "—"
        now = timezone.now()
        if obj.is_ack_overdue(now):
            return badge(f"OVERDUE by {short_duration(now - obj.ack_due_at)}", "#b91c1c")
        return format_html(
            '<span style="color:#b45309">due in {}</span>', short_duration(obj.ack_due_at - now)
        )

    @admin.display(description="next update")
    def next_update(self, obj):
        due = next_update_due(obj, getattr(obj, "last_update_due", None))
        if due is None:
            return "—"
        now = timezone.now()
        if due < now:
            return badge(f"update overdue {short_duration(now - due)}", "#b91c1c")
        return f"in {short_duration(due - now)}"

    @admin.display(description="durations")
    def durations(self, obj):
        rows = [
            ("to detect", obj.started_at, obj.detected_at),
            ("to acknowledge", obj.declared_at, obj.acknowledged_at),
            ("to mitigate", obj.started_at, obj.mitigated_at),
            ("to resolve", obj.started_at, obj.resolved_at),
        ]
        parts = [
            f"{label}: {short_duration(end - start)}" for label, start, end in rows if start and end
        ]
        return " · ".join(parts) or "—"

    # --- saving through services ------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            created = services.incident_declare(
                title=data["title"],
                severity=data["severity"],
                incident_type=data["incident_type"],
                environment=data["environment"],
                summary=data.get("summary", ""),
                services=data.get("services") or (),
                customer_impact=data.get("customer_impact", ""),
                estimated_users_affected=data.get("estimated_users_affected"),
                detection_source=data.get("detection_source") or None,
                # Unticked means "the type's default" (security starts confidential).
                confidential=True if data.get("confidential") else None,
                started_at=data.get("started_at"),
                detected_at=data.get("detected_at"),
                commander=data.get("commander"),
                actor=request.user,
                source=Source.ADMIN,
            )
            obj.pk, obj.reference = created.pk, created.reference
            return
        self._save_changes(request, obj, form)

    def _save_changes(self, request, obj, form):
        data = form.cleaned_data
        edited = {
            name: data[name] for name in form.changed_data if name in services.EDITABLE_FIELDS
        }
        if edited or "services" in form.changed_data:
            services.incident_update_details(
                incident=obj,
                actor=request.user,
                services=data["services"] if "services" in form.changed_data else None,
                **edited,
            )
        if "severity" in form.changed_data:
            services.incident_change_severity(
                incident=obj,
                severity=data["severity"],
                reason=data["severity_reason"],
                actor=request.user,
            )
        if data.get("move_to"):
            services.incident_transition(
                incident=obj,
                to_status=data["move_to"],
                note=data.get("move_note", ""),
                actor=request.user,
            )

    def save_related(self, request, form, formsets, change):
        # Services and the m2m were written by the services; only the inlines remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change)

    def save_formset(self, request, form, formset, change):
        incident = form.instance
        for instance in formset.save(commit=False):
            if instance.pk is not None:
                continue
            if isinstance(instance, RoleAssignment):
                services.role_assign(
                    incident=incident,
                    role=instance.role,
                    user=instance.user,
                    actor=request.user,
                )
            elif isinstance(instance, StatusUpdate):
                services.status_update_post(
                    incident=incident,
                    audience=instance.audience,
                    summary=instance.summary,
                    next_update_at=instance.next_update_at,
                    actor=request.user,
                )
            elif isinstance(instance, TimelineEvent):
                services.timeline_add_entry(
                    incident=incident,
                    kind=instance.kind,
                    summary=instance.summary,
                    occurred_at=instance.occurred_at,
                    actor=request.user,
                )

    def has_delete_permission(self, request, obj=None):
        # Incidents are records: cancel one instead. Superusers may still purge test data.
        return request.user.is_superuser

    # --- actions ----------------------------------------------------------------------

    @admin.action(description="Acknowledge", permissions=["change"])
    def acknowledge(self, request, queryset):
        self.run_service(
            request,
            queryset,
            "Acknowledged",
            lambda incident: services.incident_acknowledge(incident=incident, actor=request.user),
        )

    @admin.action(description="Move to the status chosen (with the note)", permissions=["change"])
    def move_to_status(self, request, queryset):
        to_status = request.POST.get("to_status", "")
        if to_status not in Status.values:
            self.message_user(request, "Choose a status to move to.", messages.ERROR)
            return
        note = request.POST.get("note", "").strip()
        self.run_service(
            request,
            queryset,
            f"Moved to {Status(to_status).label.lower()}:",
            lambda incident: services.incident_transition(
                incident=incident, to_status=to_status, note=note, actor=request.user
            ),
        )

    @admin.action(description="Change severity (with the reason)", permissions=["change"])
    def change_severity(self, request, queryset):
        severity = Severity.objects.filter(pk=request.POST.get("new_severity") or None).first()
        if severity is None:
            self.message_user(request, "Choose the new severity.", messages.ERROR)
            return
        reason = request.POST.get("note", "")
        self.run_service(
            request,
            queryset,
            f"Changed to {severity.key}:",
            lambda incident: services.incident_change_severity(
                incident=incident, severity=severity, reason=reason, actor=request.user
            ),
        )

    @admin.action(description="Make me commander", permissions=["change"])
    def make_me_commander(self, request, queryset):
        self.run_service(
            request,
            queryset,
            "You now command",
            lambda incident: services.role_assign(
                incident=incident, role=Role.COMMANDER, user=request.user, actor=request.user
            ),
        )


# --- API keys -------------------------------------------------------------------------


class APIKeyCreateForm(forms.ModelForm):
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=services.API_KEY_MAX_DAYS,
        help_text="Leave empty for a key that does not expire.",
    )

    class Meta:
        model = APIKey
        fields = ("name", "user")


@admin.register(APIKey)
class APIKeyAdmin(GuardedHistoryAdmin):
    list_display = ("name", "prefix", "user", "created_at", "expires_at", "state", "last_used_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = (
        "name",
        "user",
        "prefix",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    actions = ("revoke",)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # People manage their own keys; superusers manage everyone's.
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = APIKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj else ("name", "user", "expires_in_days")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            users = active_users()
            kwargs["queryset"] = (
                users if request.user.is_superuser else users.filter(pk=request.user.pk)
            )
            kwargs.setdefault("initial", request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        key, plaintext = services.api_key_create(
            user=data["user"],
            name=data["name"],
            expires_in_days=data.get("expires_in_days"),
            actor=request.user,
        )
        obj.pk = key.pk
        self.message_user(
            request,
            f"Copy the key now; it is not stored and will not be shown again: {plaintext}",
            messages.WARNING,
        )

    def has_change_permission(self, request, obj=None):
        return False  # keys are created and revoked, never edited

    @admin.display(description="state")
    def state(self, obj):
        if obj.revoked_at:
            return badge("revoked", "#6b7280")
        if not obj.is_usable():
            return badge("expired", "#b45309")
        return badge("active", "#16a34a")

    @admin.action(description="Revoke", permissions=["delete"])
    def revoke(self, request, queryset):
        revoked = 0
        for key in queryset:
            try:
                services.api_key_revoke(key=key, actor=request.user)
                revoked += 1
            except IncidentError as error:
                self.message_user(request, error.message, messages.ERROR)
        if revoked:
            self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)


# --- communications -------------------------------------------------------------------


class StatusUpdateInline(admin.TabularInline):
    model = StatusUpdate
    fields = ("number", "audience", "status", "summary", "next_update_at", "author", "published_at")
    readonly_fields = ("number", "status", "author", "published_at")
    extra = 1
    verbose_name = "status update"
    verbose_name_plural = (
        "Status updates (post the next one below; public ones go on the status page)"
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        rendered = obj and notifications.render_template("customer-update", obj)
        if rendered:
            # Pre-fill the blank row from the editable customer-update template.
            class PrefilledForm(formset.form):
                def __init__(self, *args, **form_kwargs):
                    super().__init__(*args, **form_kwargs)
                    if self.instance.pk is None:
                        self.initial["summary"] = rendered[1]

            formset.form = PrefilledForm
        return formset

    def has_change_permission(self, request, obj=None):
        return False  # updates are published records

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "finished_at", "succeeded", "status_code", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "event",
        "incident_reference",
        "channel",
        "address",
        "state_badge",
        "attempts",
        "next_attempt_at",
        "last_error_short",
    )
    list_filter = ("state", "channel", "event")
    list_select_related = ("incident",)
    search_fields = ("address", "subject", "incident__reference")
    readonly_fields = [field.name for field in Notification._meta.fields]
    # The incidents a message names decide who may read it: neither shown (they would
    # list every incident) nor editable.
    exclude = ("mentions",)
    inlines = (DeliveryAttemptInline,)
    actions = ("retry",)
    show_full_result_count = False

    STATE_COLORS = {
        Notification.State.PENDING: "#a16207",
        Notification.State.SENDING: "#2563eb",
        Notification.State.DELIVERED: "#16a34a",
        Notification.State.FAILED: "#b91c1c",
    }

    def get_queryset(self, request):
        return notification_list_visible_to(request.user, super().get_queryset(request))

    @admin.display(description="incident", ordering="incident__reference")
    def incident_reference(self, obj):
        return obj.incident.reference if obj.incident else "—"

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return badge(obj.get_state_display(), self.STATE_COLORS[obj.state])

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return obj.last_error[:80]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry failed notifications", permissions=["change"])
    def retry(self, request, queryset):
        retried = 0
        for notification in queryset:
            try:
                notifications.retry(notification)
                retried += 1
            except IncidentError as error:
                self.message_user(request, error.message, messages.ERROR)
        if retried:
            self.message_user(request, f"Queued {retried} notification(s) again.", messages.SUCCESS)


class ChannelTargetForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhook signing secret. Leave empty to keep the current one "
        "(a new webhook without one gets a generated secret, shown once).",
    )

    class Meta:
        model = ChannelTarget
        fields = ("name", "kind", "address", "secret", "enabled")

    def clean_secret(self):
        # Blank means "unchanged": the stored secret is never sent back to the browser.
        return self.cleaned_data["secret"] or self.instance.secret

    def clean(self):
        cleaned = super().clean()
        kind, address = cleaned.get("kind"), cleaned.get("address", "")
        if kind == ChannelKind.EMAIL:
            try:
                validate_email(address)
            except forms.ValidationError:
                self.add_error("address", "Enter an email address.")
        elif kind and not address.startswith(("https://", "http://")):
            self.add_error("address", "Enter the http(s):// URL to post to.")
        return cleaned


@admin.register(ChannelTarget)
class ChannelTargetAdmin(GuardedHistoryAdmin):
    form = ChannelTargetForm
    list_display = ("name", "kind", "address", "enabled", "has_secret")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "address")

    @admin.display(description="signed", boolean=True)
    def has_secret(self, obj):
        return bool(obj.secret)

    def save_model(self, request, obj, form, change):
        generated = obj.kind == ChannelKind.WEBHOOK and not obj.secret
        if generated:
            obj.secret = secrets.token_urlsafe(32)
        super().save_model(request, obj, form, change)
        if generated:
            self.message_user(
                request,
                f"Signing secret for {obj.name} (configure the receiver; shown once): {obj.secret}",
                messages.WARNING,
            )


@admin.register(StakeholderGroup)
class StakeholderGroupAdmin(GuardedHistoryAdmin):
    list_display = ("name", "matrix", "via_status_page", "confidential_ok", "member_count")
    search_fields = ("name", "slug")
    filter_horizontal = ("severities", "members", "targets")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related("severities")
            .annotate(members_total=Count("members", distinct=True))
        )

    @admin.display(description="told about (the communication matrix)")
    def matrix(self, obj):
        ticked = {severity.key for severity in obj.severities.all()}
        return format_html_join(
            " ",
            '<span title="{}" style="display:inline-block;width:3.2em">{} {}</span>',
            (
                (key, "✅" if key in ticked else "–", key)
                for key in Severity.objects.values_list("key", flat=True)
            ),
        )

    @admin.display(description="members", ordering="members_total")
    def member_count(self, obj):
        return obj.members_total


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ("slug", "name", "audience", "subject", "body")

    def clean(self):
        cleaned = super().clean()
        for name in ("subject", "body"):
            try:
                Template(cleaned.get(name, ""))
            except TemplateSyntaxError as error:
                self.add_error(name, f"Template error: {error}")
        return cleaned


@admin.register(MessageTemplate)
class MessageTemplateAdmin(GuardedHistoryAdmin):
    form = MessageTemplateForm
    list_display = ("name", "slug", "audience")
    search_fields = ("name", "slug", "body")


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(GuardedHistoryAdmin):
    list_display = ("name", "time_zone", "day_starts", "day_ends", "working_days")
    inlines = (HolidayInline,)


@admin.register(EscalationLevel)
class EscalationLevelAdmin(GuardedHistoryAdmin):
    list_display = ("level", "name", "member_list")
    filter_horizontal = ("members", "targets")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")

    @admin.display(description="members")
    def member_list(self, obj):
        return ", ".join(user.get_username() for user in obj.members.all()) or "—"
