"""Playbooks in the admin: the templates (commanders edit them like the severity table),
the close requirements per severity, and each incident's checklist page where steps are
ticked, skipped, reopened and added. Thin: every change is a playbooks.services call.

Contributed to the incident admin: a progress column on the list, a panel on the
incident page (and the war room), and the dashboard's overdue steps."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from incidents.admin import GuardedHistoryAdmin, Panel, badge, contribute
from incidents.admin.contributions import DashboardPanel, contribute_dashboard
from incidents.errors import DomainError
from incidents.models import Incident, Source
from incidents.queries import incident_list_visible_to
from incidents.services import NOTE_TEXT

from . import services
from .models import (
    MAX_DUE_MINUTES,
    NOT_WORKED,
    ChecklistStep,
    CloseRequirement,
    Phase,
    Playbook,
    PlaybookStep,
)
from .queries import (
    checklist_for,
    checklist_step_list_visible_to,
    overdue_steps_visible_to,
    with_checklist_counts,
)

STATUS_COLORS = {
    ChecklistStep.Status.PENDING: "#6b7280",
    ChecklistStep.Status.DONE: "#15803d",
    ChecklistStep.Status.SKIPPED: "#a16207",
}
OVERDUE_COLOR = "#b91c1c"
DASHBOARD_ROWS = 8


# --- the templates ----------------------------------------------------------------------


class PlaybookStepInline(admin.TabularInline):
    model = PlaybookStep
    extra = 1
    fields = ("phase", "position", "title", "required", "due_within", "runbook_url", "guidance")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "guidance":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 2, "cols": 40})
        if db_field.name == "runbook_url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Playbook)
class PlaybookAdmin(GuardedHistoryAdmin):
    list_display = ("name", "incident_type", "min_severity", "step_count", "is_active")
    list_filter = ("incident_type", "min_severity", "is_active")
    list_select_related = ("incident_type", "min_severity")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PlaybookStepInline]
    # The step count groups the rows, and Django drops Meta.ordering from a GROUP BY.
    ordering = ("incident_type__name", "name")
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "is_active")}),
        (
            "Starts on",
            {
                "fields": ("incident_type", "min_severity"),
                "description": "Declaring an incident of this type at this severity or a "
                "more severe one (or re-rating one into it) copies the steps below into its "
                "checklist. Edits here never change the checklist of a running incident.",
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(steps_total=Count("steps"))

    @admin.display(description="steps", ordering="steps_total")
    def step_count(self, obj):
        return obj.steps_total


@admin.register(CloseRequirement)
class CloseRequirementAdmin(GuardedHistoryAdmin):
    list_display = ("severity", "steps_before_close")
    list_editable = ("steps_before_close",)
    list_select_related = ("severity",)


# --- an incident's checklist ------------------------------------------------------------


class CompleteForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=NOTE_TEXT, widget=forms.TextInput(attrs={"size": 30})
    )


class SkipForm(forms.Form):
    reason = forms.CharField(max_length=NOTE_TEXT, widget=forms.TextInput(attrs={"size": 30}))


class AddStepForm(forms.Form):
    title = forms.CharField(max_length=200)
    phase = forms.ChoiceField(choices=Phase.choices)
    required = forms.BooleanField(required=False)
    due_within = forms.IntegerField(
        label="Due within (minutes)", required=False, min_value=1, max_value=MAX_DUE_MINUTES
    )
    runbook_url = forms.URLField(
        label="Runbook", required=False, max_length=500, assume_scheme="https"
    )
    guidance = forms.CharField(
        required=False, max_length=5_000, widget=forms.Textarea(attrs={"rows": 2})
    )


class ApplyForm(forms.Form):
    playbook = forms.ModelChoiceField(queryset=Playbook.objects.filter(is_active=True))


@admin.register(ChecklistStep)
class ChecklistStepAdmin(GuardedHistoryAdmin):
    """Every incident's steps in one list (what is overdue where), read-only: steps are
    worked on their incident's checklist page."""

    list_display = (
        "title",
        "incident_link",
        "phase",
        "status_badge",
        "required",
        "due_at",
        "completed_by",
    )
    list_filter = ("status", "phase", "required", ("due_at", admin.EmptyFieldListFilter))
    list_select_related = ("incident", "completed_by")
    search_fields = ("title", "incident__reference")
    show_full_result_count = False

    def get_queryset(self, request):
        return checklist_step_list_visible_to(request.user, super().get_queryset(request))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_change_permission(self, request, obj=None):
        # The row's form is read-only; "change" is the right to work the checklist page.
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description="incident", ordering="incident__reference")
    def incident_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:playbooks_checklist", args=[obj.incident_id]),
            obj.incident.reference,
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        if obj.is_overdue(timezone.now()):
            return badge("Overdue", OVERDUE_COLOR)
        return badge(obj.get_status_display(), STATUS_COLORS[obj.status])

    def get_urls(self):
        view = self.admin_site.admin_view(self.checklist_view)
        return [
            path("incident/<int:incident_id>/", view, name="playbooks_checklist"),
            *super().get_urls(),
        ]

    def checklist_view(self, request, incident_id):
        """The incident's checklist by phase, with a form per step (GET shows, POST works
        it through the services and comes back; a refusal keeps what was typed)."""
        incident = incident_list_visible_to(request.user).filter(pk=incident_id).first()
        if incident is None or not self.has_view_permission(request):
            raise Http404("No such incident, or not visible to you.")
        may_work = (
            super().has_change_permission(request)
            and request.user.has_perm("incidents.change_incident")
            and incident.status not in NOT_WORKED
        )
        bound: dict[str, forms.Form] = {}
        if request.method == "POST":
            if not may_work:
                raise PermissionDenied
            done = self._work(request, incident, bound)
            if done is not None:
                messages.success(request, done)
                return HttpResponseRedirect(request.path)

        now = timezone.now()
        checklist = checklist_for(incident, now)
        for step in checklist.steps:
            prefix = f"s{step.pk}"
            step.complete_form = bound.get(f"complete-{step.pk}") or CompleteForm(prefix=prefix)
            step.skip_form = bound.get(f"skip-{step.pk}") or SkipForm(prefix=prefix)
            step.error = bound.get(f"error-{step.pk}")
            step.overdue = step.is_overdue(now)
            step.late = step.was_late()
        started = set(
            ChecklistStep.objects.filter(incident=incident, playbook__isnull=False).values_list(
                "playbook_id", flat=True
            )
        )
        apply_form = bound.get("apply") or ApplyForm(prefix="apply")
        apply_form.fields["playbook"].queryset = Playbook.objects.filter(is_active=True).exclude(
            pk__in=started
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Checklist of {incident.reference}",
            "opts": Incident._meta,
            "incident": incident,
            "incident_url": reverse("admin:incidents_incident_change", args=[incident.pk]),
            "checklist": checklist,
            "may_work": may_work,
            "add_form": bound.get("add") or AddStepForm(prefix="add"),
            "apply_form": apply_form,
            "page_error": bound.get("error"),
            "now": now,
        }
        return TemplateResponse(request, "admin/playbooks/checklist.html", context)

    def _work(self, request, incident, bound) -> str | None:
        """Do what the POST asks; return the success message, or None with the bound
        forms (and the refusal) in `bound` to show again."""
        action = request.POST.get("action", "")
        kind, _, raw_id = action.partition("-")
        step = None
        if kind in {"complete", "skip", "reopen"}:
            step = (
                ChecklistStep.objects.filter(incident=incident, pk=raw_id).first()
                if raw_id.isdigit()
                else None
            )
            if step is None:
                bound["error"] = "That step is not on this checklist (any more)."
                return None
        actor, source = request.user, Source.ADMIN
        try:
            if kind == "complete":
                form = CompleteForm(request.POST, prefix=f"s{step.pk}")
                bound[f"complete-{step.pk}"] = form
                if form.is_valid():
                    services.checklist_step_complete(
                        step=step, note=form.cleaned_data["note"], actor=actor, source=source
                    )
                    return f"Done: {step.title}."
                return None
            if kind == "skip":
                form = SkipForm(request.POST, prefix=f"s{step.pk}")
                bound[f"skip-{step.pk}"] = form
                if form.is_valid():
                    services.checklist_step_skip(
                        step=step, reason=form.cleaned_data["reason"], actor=actor, source=source
                    )
                    return f"Skipped: {step.title}."
                return None
            if kind == "reopen":
                services.checklist_step_reopen(step=step, actor=actor, source=source)
                return f"Reopened: {step.title}."
            if kind == "add":
                form = AddStepForm(request.POST, prefix="add")
                bound["add"] = form
                if form.is_valid():
                    step = services.checklist_step_add(
                        incident=incident, actor=actor, source=source, **form.cleaned_data
                    )
                    return f"Added: {step.title}."
                return None
            if kind == "apply":
                form = ApplyForm(request.POST, prefix="apply")
                bound["apply"] = form
                if form.is_valid():
                    playbook = form.cleaned_data["playbook"]
                    steps = services.checklist_apply_playbook(
                        incident=incident, playbook=playbook, actor=actor, source=source
                    )
                    return f"Applied {playbook.name}: {len(steps)} steps added."
                return None
        except DomainError as error:
            key = f"error-{step.pk}" if step is not None else "error"
            bound[key] = error.message
            return None
        bound["error"] = "Unknown action."
        return None


# --- contributions to the incident admin -----------------------------------------------


def with_counts(request, queryset):
    return with_checklist_counts(queryset, timezone.now())


# Not sortable: sorting by it would count the steps of every incident, not of one page.
@admin.display(description="checklist")
def checklist_column(incident):
    total = getattr(incident, "checklist_total", 0)
    if not total:
        return "—"
    text = f"{incident.checklist_resolved}/{total}"
    overdue = getattr(incident, "checklist_overdue", 0)
    if overdue and incident.status not in NOT_WORKED:
        return format_html(
            '{} <span style="color:{};font-weight:600">{} overdue</span>',
            text,
            OVERDUE_COLOR,
            overdue,
        )
    return text


def checklist_panel(request, incident):
    """Progress per phase, the overdue time-boxed steps, and the way to the checklist."""
    if not request.user.has_perm("playbooks.view_checkliststep"):
        return None
    now = timezone.now()
    checklist = checklist_for(incident, now)
    url = reverse("admin:playbooks_checklist", args=[incident.pk])
    return render_to_string(
        "admin/playbooks/checklist_panel.html",
        {
            "checklist": checklist,
            "url": url,
            "worked": incident.status not in NOT_WORKED,
            "now": now,
        },
    )


def overdue_panel(request):
    """Steps past their time-box on the open incidents the user may see."""
    if not request.user.has_perm("playbooks.view_checkliststep"):
        return None
    steps = overdue_steps_visible_to(request.user, timezone.now(), DASHBOARD_ROWS)
    if not steps:
        return None
    return render_to_string(
        "admin/playbooks/dashboard_overdue.html", {"steps": steps, "now": timezone.now()}
    )


contribute(
    Incident,
    columns=[checklist_column],
    querysets=[with_counts],
    panels=[Panel("Checklist", checklist_panel)],
)
contribute_dashboard(
    DashboardPanel("Overdue checklist steps", overdue_panel, section="attention", order=40)
)
