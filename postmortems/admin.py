"""Writing reviews in the admin. Thin: every change goes through postmortems.services."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db import models
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from incidents.admin import (
    ContributableAdmin,
    KeepsTypedInput,
    ServiceBackedAdmin,
    badge,
    contribute,
    refusals,
)
from incidents.admin.contributions import contribute_dashboard
from incidents.errors import DomainError
from incidents.formatting import short_duration
from incidents.models import Incident, Source
from incidents.queries import active_users, incident_list_visible_to

from . import dashboard, services
from .models import (
    BLAMELESS_NOTE,
    SECTIONS,
    ContributingFactor,
    PostMortem,
    ReviewDecision,
    TimelineEntry,
)
from .queries import postmortem_list_visible_to, with_visible_related

STATUS_COLORS = {
    PostMortem.Status.DRAFT: "#6b7280",
    PostMortem.Status.IN_REVIEW: "#2563eb",
    PostMortem.Status.PUBLISHED: "#16a34a",
}

# The workflow steps the change page offers, with the service each calls.
WORKFLOW = {
    "sync": "Re-sync facts and timeline from the incident",
    "submit": "Submit for review",
    "approve": "Approve (as a named reviewer)",
    "request_changes": "Request changes (say what, below)",
    "publish": "Publish to stakeholders",
    "reopen": "Reopen for correction (say why, below)",
}


def run_step(postmortem: PostMortem, step: str, user, comment: str) -> str:
    """Run one workflow step through its service; return what to tell the user."""
    if step == "sync":
        added = services.postmortem_sync(postmortem=postmortem, actor=user, source=Source.ADMIN)
        return f"Re-synced from the incident: {added} new timeline event(s)."
    if step == "submit":
        services.postmortem_submit(postmortem=postmortem, actor=user, source=Source.ADMIN)
        return "Submitted for review; the reviewers were notified."
    if step == "approve":
        services.postmortem_approve(
            postmortem=postmortem, actor=user, comment=comment, source=Source.ADMIN
        )
        return "Approved."
    if step == "request_changes":
        services.postmortem_request_changes(
            postmortem=postmortem, actor=user, comment=comment, source=Source.ADMIN
        )
        return "Sent back to the owner with your comments."
    if step == "publish":
        services.postmortem_publish(postmortem=postmortem, actor=user, source=Source.ADMIN)
        return "Published; the stakeholder groups were notified."
    if step == "reopen":
        services.postmortem_reopen(
            postmortem=postmortem, actor=user, reason=comment, source=Source.ADMIN
        )
        return "Reopened as a draft."
    raise DomainError(f"Unknown step {step!r}.")


class OverdueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return (("overdue", "Overdue"), ("this_week", "Due within 7 days"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "overdue":
            return queryset.overdue(now)
        if self.value() == "this_week":
            return queryset.exclude(status=PostMortem.Status.PUBLISHED).filter(
                due_at__gte=now, due_at__lt=now + timedelta(days=7)
            )
        return queryset


class PostMortemActionForm(ActionForm):
    comment = forms.CharField(required=False, label="Comment / reason")


class PostMortemForm(forms.ModelForm):
    workflow = forms.ChoiceField(
        required=False,
        label="Next step",
        choices=[("", "— just save —"), *WORKFLOW.items()],
        help_text="Runs after your edits are saved; if it is refused, nothing is saved "
        "and the page keeps what you typed.",
    )
    workflow_comment = forms.CharField(
        required=False,
        label="Comment / reason",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required to request changes or to reopen; optional with an approval.",
    )

    class Meta:
        model = PostMortem
        fields = (
            "owner",
            "reviewers",
            "participants",
            "related_incidents",
            "due_at",
            "review_meeting_at",
            *SECTIONS,
            "no_action_needed",
            "no_action_reason",
        )
        widgets = {
            name: forms.Textarea(attrs={"rows": 8, "class": "vLargeTextField"}) for name in SECTIONS
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (_, question) in SECTIONS.items():
            if name in self.fields:
                self.fields[name].help_text = f"{question} Markdown."
        for name in ("owner", "reviewers", "participants"):
            if name in self.fields:
                self.fields[name].queryset = active_users()
        if "owner" in self.fields:
            # Editing users is a detour from writing a review; it has its own pages.
            widget = self.fields["owner"].widget
            widget.can_add_related = widget.can_change_related = False
            widget.can_delete_related = widget.can_view_related = False


COMPACT_TEXT = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 70})}}


class ContributingFactorInline(admin.TabularInline):
    model = ContributingFactor
    formfield_overrides = COMPACT_TEXT
    fields = ("position", "category", "description")
    extra = 1
    verbose_name_plural = "Contributing factors (conditions, not culprits)"

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not (obj and obj.is_published)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not (obj and obj.is_published)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.is_published)


class TimelineEntryInline(admin.TabularInline):
    model = TimelineEntry
    formfield_overrides = COMPACT_TEXT
    fields = ("occurred_at", "kind", "summary", "is_key", "commentary")
    readonly_fields = ("occurred_at", "kind", "summary")
    extra = 0
    verbose_name_plural = "Timeline (copied from the incident; mark the key events, add commentary)"

    def has_add_permission(self, request, obj=None):
        return False  # entries come from the incident's timeline by syncing

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not (obj and obj.is_published)


class ReviewDecisionInline(admin.TabularInline):
    model = ReviewDecision
    fields = ("round", "reviewer", "decision", "comment", "decided_at")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "Review decisions"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("reviewer")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PostMortem)
class PostMortemAdmin(KeepsTypedInput, ContributableAdmin, ServiceBackedAdmin):
    """Reviews; other apps add to this page with `contribute(PostMortem, ...)`."""

    form = PostMortemForm
    action_form = PostMortemActionForm
    list_display = (
        "reference",
        "title",
        "severity_badge",
        "status_badge",
        "owner",
        "due",
        "published_at",
    )
    list_display_links = ("reference", "title")
    list_filter = (
        "status",
        OverdueFilter,
        "incident__severity",
        "incident__services",
        ("published_at", admin.DateFieldListFilter),
    )
    search_fields = ("incident__reference", "incident__title", "executive_summary")
    list_select_related = ("incident__severity", "owner")
    list_per_page = 50
    show_full_result_count = False
    autocomplete_fields = ("related_incidents",)
    filter_horizontal = ("reviewers", "participants")
    actions = ("submit", "approve", "request_changes", "publish", "reopen", "resync")
    history_list_display = ("status",)
    fieldsets = (
        (
            None,
            {
                "description": BLAMELESS_NOTE,
                "fields": (
                    ("incident_link", "status_badge", "due", "page_link"),
                    ("workflow", "workflow_comment"),
                ),
            },
        ),
        (
            "People and dates",
            {
                "fields": (
                    "owner",
                    "reviewers",
                    "participants",
                    ("due_at", "review_meeting_at"),
                    "related_incidents",
                )
            },
        ),
        ("Facts from the incident", {"fields": ("facts_summary", "synced_at")}),
        ("The review", {"fields": tuple(SECTIONS)}),
        ("Follow-up", {"fields": ("no_action_needed", "no_action_reason")}),
        ("Publication", {"fields": (("published_at", "published_by"), "reopen_reason")}),
    )
    readonly_fields = (
        "incident_link",
        "status_badge",
        "due",
        "page_link",
        "facts_summary",
        "synced_at",
        "published_at",
        "published_by",
        "reopen_reason",
    )
    inlines = (ContributingFactorInline, TimelineEntryInline, ReviewDecisionInline)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("incident__severity", "owner")
        # Related incidents this user may not see are left out of the page (read-only
        # or not), and kept by the service when the list is saved.
        return with_visible_related(
            request.user, postmortem_list_visible_to(request.user, queryset)
        )

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and obj.is_published:
            # Read-only until reopened: only the workflow (reopen) stays open.
            editable = {"workflow", "workflow_comment"}
            names = [name for name in self.form.base_fields if name not in editable]
            return (*readonly, *names)
        return readonly

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "related_incidents":
            # Name only incidents this writer may see, even among those already linked
            # (the service keeps the hidden links when the list is saved).
            kwargs["queryset"] = incident_list_visible_to(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return False  # started from an incident (its action), the API, or on resolution

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="incident", ordering="incident__reference")
    def reference(self, obj):
        return obj.incident.reference

    @admin.display(description="title", ordering="incident__title")
    def title(self, obj):
        return obj.incident.title

    @admin.display(description="severity", ordering="incident__severity__rank")
    def severity_badge(self, obj):
        return badge(obj.incident.severity.key, obj.incident.severity.color)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.get_status_display(), STATUS_COLORS[obj.status])

    @admin.display(description="due", ordering="due_at")
    def due(self, obj):
        if obj.due_at is None:
            return "—"
        if obj.is_overdue():
            return badge(f"overdue since {obj.due_at:%Y-%m-%d}", "#b91c1c")
        return f"{obj.due_at:%Y-%m-%d}"

    @admin.display(description="incident")
    def incident_link(self, obj):
        url = reverse("admin:incidents_incident_change", args=[obj.incident_id])
        return format_html(
            '<a href="{}">{}</a> {}', url, obj.incident.reference, obj.incident.title
        )

    @admin.display(description="stakeholder page")
    def page_link(self, obj):
        label = "Read the published page" if obj.is_published else "Preview the page"
        return format_html('<a href="{}" target="_blank">{}</a>', obj.get_absolute_url(), label)

    @admin.display(description="facts")
    def facts_summary(self, obj):
        facts = obj.facts
        if not facts:
            return "—"
        parts = [
            f"{facts['severity']} {facts['type']}, {facts['environment']}",
            ", ".join(facts["services"]) or "no services listed",
            *(f"{label}: {short_duration(length)}" for label, length in obj.metrics()),
        ]
        return " · ".join(parts)

    # --- saving through services ------------------------------------------------------

    def save_model(self, request, obj, form, change):
        # A refusal here or in save_related re-shows the page with everything typed
        # (KeepsTypedInput): the root cause written before "Submit" is not lost.
        with refusals():
            self._save_model(request, obj, form, change)

    def _save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {
            name: data[name]
            for name in form.changed_data
            if name in services.EDITABLE_FIELDS and name in data
        }
        m2m = {
            name: data[name]
            for name in ("participants", "reviewers", "related_incidents")
            if name in form.changed_data
        }
        if fields or m2m:
            services.postmortem_update(
                postmortem=obj, actor=request.user, source=Source.ADMIN, **fields, **m2m
            )

    def save_related(self, request, form, formsets, change):
        # The many-to-many fields were written by the service; the inlines remain, then
        # the workflow step, which may make the review read-only.
        with refusals():
            for formset in formsets:
                self.save_formset(request, form, formset, change)
            step = form.cleaned_data.get("workflow")
            if step:
                message = run_step(
                    form.instance,
                    step,
                    request.user,
                    form.cleaned_data.get("workflow_comment", ""),
                )
        if step:
            self.message_user(request, message, messages.SUCCESS)

    def save_formset(self, request, form, formset, change):
        if self.is_contributed(formset):
            super().save_formset(request, form, formset, change)
            return
        marks = {}
        for instance in formset.save(commit=False):
            if isinstance(instance, ContributingFactor):
                services.contributing_factor_save(
                    factor=instance, actor=request.user, source=Source.ADMIN
                )
            else:
                marks[instance.pk] = (instance.is_key, instance.commentary)
        if marks:
            services.postmortem_update(
                postmortem=form.instance,
                actor=request.user,
                timeline_marks=marks,
                source=Source.ADMIN,
            )
        for factor in formset.deleted_objects:
            services.contributing_factor_delete(
                factor=factor, actor=request.user, source=Source.ADMIN
            )

    # --- actions ----------------------------------------------------------------------

    def _step(self, request, queryset, step, verb):
        comment = request.POST.get("comment", "")
        self.run_service(
            request, queryset, verb, lambda pm: run_step(pm, step, request.user, comment)
        )

    @admin.action(description="Submit for review", permissions=["change"])
    def submit(self, request, queryset):
        self._step(request, queryset, "submit", "Submitted")

    @admin.action(description="Approve (as a named reviewer)", permissions=["change"])
    def approve(self, request, queryset):
        self._step(request, queryset, "approve", "Approved")

    @admin.action(description="Request changes (comment beside)", permissions=["change"])
    def request_changes(self, request, queryset):
        self._step(request, queryset, "request_changes", "Sent back")

    @admin.action(description="Publish", permissions=["change"])
    def publish(self, request, queryset):
        self._step(request, queryset, "publish", "Published")

    @admin.action(description="Reopen (reason beside)", permissions=["change"])
    def reopen(self, request, queryset):
        self._step(request, queryset, "reopen", "Reopened")

    @admin.action(description="Re-sync from the incident", permissions=["change"])
    def resync(self, request, queryset):
        self._step(request, queryset, "sync", "Re-synced")


# --- the incident console, with its review ---------------------------------------------


@admin.display(description="post-mortem")
def postmortem_link(incident):
    postmortem = PostMortem.objects.filter(incident=incident).first()
    if postmortem is None:
        required = incident.severity.postmortem_required
        return "Required for this severity; not started yet." if required else "None."
    url = reverse("admin:postmortems_postmortem_change", args=[postmortem.pk])
    return format_html(
        '<a href="{}">{}</a> {}',
        url,
        postmortem.get_status_display(),
        f"· due {postmortem.due_at:%Y-%m-%d}" if postmortem.due_at else "",
    )


@admin.action(description="Start the post-mortem", permissions=["change"])
def start_postmortem(modeladmin, request, queryset):
    if not request.user.has_perm("postmortems.add_postmortem"):
        modeladmin.message_user(request, "You may not start post-mortems.", messages.ERROR)
        return None
    started = []
    modeladmin.run_service(
        request,
        queryset,
        "Started the post-mortem of",
        lambda incident: started.append(
            services.postmortem_create(incident=incident, actor=request.user, source=Source.ADMIN)
        ),
    )
    if len(started) == 1:
        return HttpResponseRedirect(
            reverse("admin:postmortems_postmortem_change", args=[started[0].pk])
        )
    return None


# The core's console shows the review: a link on the page and a "start" action.
contribute(
    Incident,
    actions=[start_postmortem],
    fieldsets=[("Post-incident review", {"fields": (postmortem_link,)})],
)
contribute_dashboard(dashboard.PANEL)  # reviews I own or review that are due
