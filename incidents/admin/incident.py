"""The commander's console: the incident list, its filters and actions, and the page."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME, ActionForm
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .. import metrics, services
from ..errors import DomainError
from ..formatting import short_duration
from ..models import (
    Incident,
    Role,
    RoleAssignment,
    Severity,
    Source,
    Status,
    StatusUpdate,
    TimelineEvent,
)
from ..queries import (
    ack_overdue_q,
    active_users,
    attention_q,
    false_positive_list,
    incident_list_held_by,
    incident_list_visible_to,
    update_overdue_q,
    urgency_ordering,
    with_commander,
    without_commander_q,
)
from ..watchdogs import with_last_update_due
from .base import STATUS_COLORS, KeepsTypedInput, Refused, ServiceBackedAdmin, badge, refusals
from .contributions import ContributableAdmin
from .declare import DeclareViews
from .incident_inlines import RoleAssignmentInline, StatusUpdateInline, TimelineEventInline
from .timers import acknowledgement_column, next_update_column
from .warroom import WarRoomViews


def urgency_inputs(request) -> tuple:
    """Return (now, severities) for the urgency filters and order, read once a request:
    every filter and the order then agree on what is overdue."""
    if not hasattr(request, "_sitrep_urgency"):
        request._sitrep_urgency = (timezone.now(), list(Severity.objects.all()))
    return request._sitrep_urgency


class OpenFilter(admin.SimpleListFilter):
    """Open incidents unless asked otherwise: the list is for triage. "All" is a choice
    of its own (open=all), since no parameter means the default.

    The default holds only for the bare list: another filter or a search (status=closed,
    a reference) looks at every incident, and an action on the rows ticked acts on
    those rows; "select all" acts on what the list showed."""

    title = "open / closed"
    parameter_name = "open"
    default = "yes"

    def __init__(self, request, params, model, model_admin):
        # The first filter: `params` still holds every filter's parameter.
        narrowed = bool(set(params) - {self.parameter_name}) or bool(request.GET.get("q"))
        ticked = request.method == "POST" and request.POST.get("select_across") != "1"
        super().__init__(request, params, model, model_admin)
        self.applies_default = not narrowed and not ticked

    def lookups(self, request, model_admin):
        return (("yes", "Open"), ("no", "Resolved, closed or cancelled"), ("all", "All"))

    def value(self):
        return super().value() or (self.default if self.applies_default else "all")

    def choices(self, changelist):
        # Not the stock "All" (which drops the parameter, so means "Open" here).
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.open()
        if self.value() == "no":
            return queryset.closed()
        return queryset


class AttentionFilter(admin.SimpleListFilter):
    """What the dashboard's "Needs attention now" shows (queries.attention_q)."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return (("yes", "Needs attention now"),)

    def queryset(self, request, queryset):
        if self.value() == "yes":
            now, severities = urgency_inputs(request)
            return queryset.filter(attention_q(now, severities))
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return (("yes", "Acknowledgement or update overdue"),)

    def queryset(self, request, queryset):
        if self.value() == "yes":
            now, severities = urgency_inputs(request)
            late = ack_overdue_q(now, severities) | update_overdue_q(now, severities)
            return queryset.filter(late)
        return queryset


class MineFilter(admin.SimpleListFilter):
    title = "mine"
    parameter_name = "mine"

    def lookups(self, request, model_admin):
        return (("yes", "I hold a role"),)

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return incident_list_held_by(request.user, queryset)
        return queryset


class CommanderFilter(admin.SimpleListFilter):
    title = "commander"
    parameter_name = "commander"

    def lookups(self, request, model_admin):
        return (("none", "Open, without a commander"),)

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.open().filter(without_commander_q())
        return queryset


class IncidentChangeList(ChangeList):
    """Rows link to the incident's own page (the war room), not the edit form."""

    def url_for_result(self, result):
        return result.get_absolute_url()

    def get_ordering_field_columns(self):
        # The default order is the urgency, which no column shows: mark no column sorted
        # (Django would mark the model's Meta ordering, declared_at).
        if ORDER_VAR not in self.params:
            return {}
        return super().get_ordering_field_columns()


class FalsePositiveFilter(admin.SimpleListFilter):
    title = "triage outcome"
    parameter_name = "triage"

    def lookups(self, request, model_admin):
        return (("declined", "Declined as false positive"),)

    def queryset(self, request, queryset):
        if self.value() == "declined":
            return false_positive_list(queryset)
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


class DeclineForm(forms.Form):
    """The reason a triage candidate is declined: asked on a page of its own, so it is
    not missed, and kept there when it is refused."""

    reason = forms.CharField(
        label="Why is it a false positive?",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=services.NOTE_TEXT,
        help_text="It goes on each candidate's timeline.",
        error_messages={"required": services.DECLINE_REASON_REQUIRED},
    )

    def clean_reason(self):
        try:
            return services.clean_text(
                self.cleaned_data["reason"],
                field="reason",
                limit=services.NOTE_TEXT,
                required=services.DECLINE_REASON_REQUIRED,
            )
        except DomainError as error:
            raise forms.ValidationError(error.message) from None


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

    # The moves to offer (services.MoveOption), set per request by IncidentAdmin.get_form
    # since the guards need the user; None offers every move the lifecycle allows.
    move_options = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            # Declaring: both times default to now, as in the services.
            for name in ("started_at", "detected_at"):
                if name in self.fields:
                    self.fields[name].required = False
                    self.fields[name].help_text = "Leave empty for now."
        zone = timezone.get_current_timezone_name()
        for name in ("started_at", "detected_at"):
            if name in self.fields:
                self.fields[name].help_text += f" Time zone: {zone}."
        if "move_to" in self.fields:
            self._offer_moves()

    def _offer_moves(self):
        # Offer only what the guards would accept; say why the others are not offered,
        # rather than let the save throw away what else was typed.
        options = self.move_options
        if options is None:
            options = [
                services.MoveOption(value, Status(value).label, True)
                for value in services.allowed_transitions(self.instance.status)
            ]
        field = self.fields["move_to"]
        field.choices = [("", "—")] + [
            (option.status, option.label) for option in options if option.allowed
        ]
        refused = [(option.label, option.reason) for option in options if not option.allowed]
        if refused:
            # The admin renders help text unescaped: the reasons are escaped here.
            field.help_text = format_html(
                "{} Not possible now: {}.",
                field.help_text,
                format_html_join("; ", "{} ({})", refused),
            )

    def clean(self):
        cleaned = super().clean()
        # Check the times here too, so a mistake keeps what was typed on the page.
        now = timezone.now()
        started = cleaned.get("started_at") or self.instance.started_at or now
        detected = cleaned.get("detected_at") or self.instance.detected_at or now
        try:
            services.check_times(started, detected, now, self.instance.declared_at)
        except DomainError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        if (
            self.instance.pk is not None
            and "severity" in self.changed_data
            and not cleaned.get("severity_reason", "").strip()
        ):
            self.add_error("severity_reason", "Say why the severity changes.")
        return cleaned


@admin.register(Incident)
class IncidentAdmin(
    WarRoomViews, DeclareViews, KeepsTypedInput, ContributableAdmin, ServiceBackedAdmin
):
    """The one incident admin; other apps add to it with `contribute(Incident, ...)`."""

    form = IncidentAdminForm
    action_form = IncidentActionForm
    list_display = (
        "reference",
        "title_cell",
        "severity_badge",
        "status_badge",
        "environment",
        "commander",
        "declared_ago",
        "acknowledgement",
        "next_update",
    )
    list_display_links = ("reference", "title_cell")
    list_filter = (
        OpenFilter,
        AttentionFilter,
        OverdueFilter,
        MineFilter,
        CommanderFilter,
        "status",
        FalsePositiveFilter,
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
    actions = (
        "acknowledge",
        "accept_triage",
        "decline_false_positive",
        "move_to_status",
        "change_severity",
        "make_me_commander",
    )
    history_list_display = ("status", "severity")
    inlines = (RoleAssignmentInline, StatusUpdateInline, TimelineEventInline)

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
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("reference", "status_badge", "acknowledgement", "next_update"),
                    "title",
                    "public_title",
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
                "description": f"Times in {settings.TIME_ZONE}.",
                "fields": (
                    ("started_at", "detected_at"),
                    ("declared_at", "declared_by"),
                    ("acknowledged_at", "identified_at"),
                    ("mitigated_at", "resolved_at"),
                    "closed_at",
                    "durations",
                ),
            },
        ),
    )
    readonly_fields = (
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

    def get_ordering(self, request):
        # Triage order: overdue first, then the most severe, then the oldest; a column
        # click sorts by that column instead.
        return urgency_ordering(*urgency_inputs(request))

    def get_changelist(self, request, **kwargs):
        return IncidentChangeList

    # The add page declares (one service call); the change page holds the rest, and the
    # contributions of other apps (ContributableAdmin).
    def get_fieldsets(self, request, obj=None):
        return super().get_fieldsets(request, obj) if obj else self.add_fieldsets

    def get_readonly_fields(self, request, obj=None):
        return super().get_readonly_fields(request, obj) if obj else ()

    def get_inlines(self, request, obj):
        # The add page has none of its own; contributions may still offer theirs there.
        return super().get_inlines(request, obj) if obj else self._contributed_inlines(obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # Editing the policy from inside an incident is a detour; it has its own pages.
        for name in ("severity", "incident_type"):
            if name not in form.base_fields:  # read-only for view-only users
                continue
            widget = form.base_fields[name].widget
            widget.can_add_related = widget.can_change_related = False
            widget.can_delete_related = widget.can_view_related = False
        if obj is not None and "move_to" in form.base_fields:
            options = services.transition_options(incident=obj, actor=request.user)
            form = type(form.__name__, (form,), {"move_options": options})
        return form

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="severity", ordering="severity__rank")
    def severity_badge(self, obj):
        return badge(obj.severity.key, obj.severity.color)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.get_status_display(), STATUS_COLORS[obj.status])

    @admin.display(description="title", ordering="title")
    def title_cell(self, obj):
        # Cut to one line by console.css; the whole title shows on hover.
        return format_html(
            '<span class="incident-title" title="{}">{}</span>', obj.title, obj.title
        )

    @admin.display(description="commander", ordering="commander_username")
    def commander(self, obj):
        return getattr(obj, "commander_username", None) or "—"

    @admin.display(description="declared", ordering="declared_at")
    def declared_ago(self, obj):
        if obj.declared_at is None:
            return "in triage"
        # Compact ("3h 15m ago"), so every column fits at 1366 px; the time on hover.
        return format_html(
            '<span title="{}">{} ago</span>',
            timezone.localtime(obj.declared_at).strftime("%Y-%m-%d %H:%M %Z"),
            short_duration(timezone.now() - obj.declared_at),
        )

    @admin.display(description="ack")
    def acknowledgement(self, obj):
        return acknowledgement_column(obj)

    @admin.display(description="next update")
    def next_update(self, obj):
        return next_update_column(obj)

    @admin.display(description="durations")
    def durations(self, obj):
        lengths = metrics.response_times(metrics.milestone_times(obj))
        parts = [
            f"to {key}: {short_duration(length)}"
            for key, length in lengths.items()
            if length is not None
        ]
        return " · ".join(parts) or "—"

    # --- saving through services ------------------------------------------------------

    def save_model(self, request, obj, form, change):
        # A refusal re-shows the page with everything typed (KeepsTypedInput).
        with refusals():
            self._save_model(request, obj, form, change)

    def _save_model(self, request, obj, form, change):
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
                source=Source.ADMIN,
                services=data["services"] if "services" in form.changed_data else None,
                **edited,
            )
        if "severity" in form.changed_data:
            services.incident_change_severity(
                incident=obj,
                severity=data["severity"],
                reason=data["severity_reason"],
                actor=request.user,
                source=Source.ADMIN,
            )
        if data.get("move_to"):
            services.incident_transition(
                incident=obj,
                to_status=data["move_to"],
                note=data.get("move_note", ""),
                actor=request.user,
                source=Source.ADMIN,
            )

    def save_related(self, request, form, formsets, change):
        # Services and the m2m were written by the services; only the inlines remain.
        for formset in formsets:
            try:
                self.save_formset(request, form, formset, change)
            except DomainError as error:
                # Said above the form: the field it names is the inline's, not the
                # incident's (an update's summary is not the incident's summary).
                label = str(formset.model._meta.verbose_name).capitalize()
                raise Refused(DomainError(f"{label}: {error.message}")) from error

    def save_formset(self, request, form, formset, change):
        if self.is_contributed(formset):
            super().save_formset(request, form, formset, change)
            return
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
                    source=Source.ADMIN,
                )
            elif isinstance(instance, StatusUpdate):
                services.status_update_post(
                    incident=incident,
                    audience=instance.audience,
                    summary=instance.summary,
                    next_update_at=instance.next_update_at,
                    actor=request.user,
                    source=Source.ADMIN,
                )
            elif isinstance(instance, TimelineEvent):
                services.timeline_add_entry(
                    incident=incident,
                    kind=instance.kind,
                    summary=instance.summary,
                    occurred_at=instance.occurred_at,
                    actor=request.user,
                    source=Source.ADMIN,
                )

    def has_delete_permission(self, request, obj=None):
        # Incidents are records: cancel one instead. Superusers may still purge test data.
        return request.user.is_superuser

    # --- standing down from a role (a link on each active row of the roles inline) ------

    def get_urls(self):
        stand_down = self.admin_site.admin_view(self.stand_down_view)
        return [
            path(
                "<path:object_id>/roles/<int:assignment_id>/stand-down/",
                stand_down,
                name="incidents_incident_stand_down",
            ),
            *super().get_urls(),
        ]

    def stand_down_view(self, request, object_id, assignment_id):
        """Ask to confirm; on POST stand the holder down from the role without a successor."""
        incident = self.get_object(request, unquote(object_id))
        if incident is None:
            raise Http404("No such incident, or not visible to you.")
        if not self.has_change_permission(request, incident):
            raise PermissionDenied
        assignment = (
            incident.roles.select_related("user")
            .filter(pk=assignment_id, relieved_at__isnull=True)
            .first()
        )
        if assignment is None:
            raise Http404("No such role held on this incident.")
        incident_url = incident.get_absolute_url()
        if request.method == "POST":
            try:
                services.role_relieve(
                    assignment=assignment, actor=request.user, source=Source.ADMIN
                )
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    # Not "bob stood down": the admin capitalises a message's first letter.
                    f"Stood {assignment.user.get_username()} down as "
                    f"{assignment.get_role_display().lower()}.",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(incident_url)
        context = {
            **self.admin_site.each_context(request),
            "title": "Stand down from a role",
            "opts": self.opts,
            "incident": incident,
            "incident_url": incident_url,
            "assignment": assignment,
        }
        return TemplateResponse(request, "admin/incidents/incident/stand_down.html", context)

    # --- actions ----------------------------------------------------------------------

    @admin.action(description="Acknowledge", permissions=["change"])
    def acknowledge(self, request, queryset):
        self.run_service(
            request,
            queryset,
            "Acknowledged",
            lambda incident: services.incident_acknowledge(
                incident=incident, actor=request.user, source=Source.ADMIN
            ),
        )

    @admin.action(description="Accept triage candidate", permissions=["change"])
    def accept_triage(self, request, queryset):
        # The severity and note beside the action menu, if given: re-rate on acceptance.
        severity = Severity.objects.filter(pk=request.POST.get("new_severity") or None).first()
        reason = request.POST.get("note", "")
        self.run_service(
            request,
            queryset,
            "Accepted from triage:",
            lambda incident: services.incident_accept(
                incident=incident,
                severity=severity,
                reason=reason,
                actor=request.user,
                source=Source.ADMIN,
            ),
        )

    @admin.action(description="Decline as false positive", permissions=["change"])
    def decline_false_positive(self, request, queryset):
        # First from the changelist: ask for the reason (what the note box held, if
        # anything); then from that page, confirmed.
        confirmed = "decline_confirmed" in request.POST
        form = DeclineForm(
            request.POST if confirmed else None, initial={"reason": request.POST.get("note", "")}
        )
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            declined = self.run_service(
                request,
                queryset,
                "Declined as false positive:",
                lambda incident: services.incident_decline(
                    incident=incident, reason=reason, actor=request.user, source=Source.ADMIN
                ),
            )
            if declined:
                return None  # back to the list, which says what was done
            # Nothing declined: the page again, with the reason as typed.
        context = {
            **self.admin_site.each_context(request),
            "title": "Decline as false positive",
            "opts": self.opts,
            "form": form,
            "incidents": list(queryset.select_related("severity")),
            "action": "decline_false_positive",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/incidents/incident/decline.html", context)

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
                incident=incident,
                to_status=to_status,
                note=note,
                actor=request.user,
                source=Source.ADMIN,
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
                incident=incident,
                severity=severity,
                reason=reason,
                actor=request.user,
                source=Source.ADMIN,
            ),
        )

    @admin.action(description="Make me commander", permissions=["change"])
    def make_me_commander(self, request, queryset):
        self.run_service(
            request,
            queryset,
            "You now command",
            lambda incident: services.role_assign(
                incident=incident,
                role=Role.COMMANDER,
                user=request.user,
                actor=request.user,
                source=Source.ADMIN,
            ),
        )
