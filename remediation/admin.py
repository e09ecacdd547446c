"""Action items in the admin, and the remediation report page. Thin: changes go through
remediation.services; figures come from remediation.queries."""

import csv
from datetime import date

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from incidents.admin import Inline, ServiceBackedAdmin, badge, contribute
from incidents.admin.contributions import contribute_dashboard
from incidents.admin.widgets import QuickSelect
from incidents.errors import DomainError
from incidents.models import Incident, Service, Severity, Source
from incidents.queries import active_users, incident_list_visible_to
from postmortems.models import PostMortem
from postmortems.queries import postmortem_list_visible_to

from . import dashboard, services
from .models import ActionItem, ActionItemUpdate, RemediationReport
from .queries import (
    ReportFilters,
    action_item_list_visible_to,
    remediation_report,
    report_filters_from,
)

Status = ActionItem.Status

STATUS_COLORS = {
    Status.OPEN: "#2563eb",
    Status.IN_PROGRESS: "#7c3aed",
    Status.BLOCKED: "#b91c1c",
    Status.DONE: "#15803d",
    Status.WONT_DO: "#6b7280",
}
PRIORITY_COLORS = {"P1": "#b91c1c", "P2": "#c2410c", "P3": "#a16207", "P4": "#2563eb"}


class MineFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "mine"

    def lookups(self, request, model_admin):
        return (("yes", "Mine"), ("unowned", "Nobody's"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(owner=request.user)
        if self.value() == "unowned":
            return queryset.filter(owner__isnull=True)
        return queryset


class AttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return (("overdue", "Overdue"), ("blocked", "Blocked"), ("stale", "Blocked too long"))

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            return queryset.overdue()
        if self.value() == "blocked":
            return queryset.filter(status=Status.BLOCKED)
        if self.value() == "stale":
            return queryset.stale_blocked()
        return queryset


class ActionItemActionForm(ActionForm):
    new_owner = forms.ModelChoiceField(
        required=False, queryset=active_users(), label="Owner", empty_label="owner…"
    )
    new_due_on = forms.DateField(
        required=False, label="Due", widget=forms.DateInput(attrs={"type": "date"})
    )
    note = forms.CharField(required=False, label="Note / reason")


class ActionItemForm(forms.ModelForm):
    tracker_url = forms.URLField(required=False, assume_scheme="https", label="Tracker link")
    move_to = forms.ChoiceField(required=False, label="Move to status")
    move_note = forms.CharField(
        required=False,
        label="Note on the status change",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required to block (what blocks it) or for won't do (why); "
        "marking done with a note records it as the verification note.",
    )

    class Meta:
        model = ActionItem
        fields = (
            "incident",
            "postmortem",
            "title",
            "description",
            "category",
            "priority",
            "effort",
            "owner",
            "team",
            "due_on",
            "tracker_key",
            "tracker_url",
            "verification_note",
        )
        widgets = {"owner": QuickSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "owner" in self.fields:
            self.fields["owner"].queryset = active_users()
        if "due_on" in self.fields and self.instance.pk is None:
            self.fields["due_on"].required = False
            self.fields["due_on"].help_text = "Leave empty for the priority's default."
        if "move_to" in self.fields:
            allowed = services.TRANSITIONS.get(self.instance.status, frozenset())
            self.fields["move_to"].choices = [("", "—")] + [
                (value, label) for value, label in Status.choices if value in allowed
            ]


def status_label(value: str) -> str:
    """An item status as people read it ("In progress"); "—" for none."""
    return dict(Status.choices).get(value, value) or "—"


class ActionItemUpdateInline(admin.TabularInline):
    model = ActionItemUpdate
    fields = ("created_at", "author", "kind", "moved_from", "moved_to", "note")
    readonly_fields = ("created_at", "author", "kind", "moved_from", "moved_to")
    extra = 1
    verbose_name_plural = "Progress (add a note below)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")

    # The update row stores status codes (no choices on the field): show their labels.
    @admin.display(description="from status")
    def moved_from(self, obj):
        return status_label(obj.from_status)

    @admin.display(description="to status")
    def moved_to(self, obj):
        return status_label(obj.to_status)

    def has_change_permission(self, request, obj=None):
        return False  # progress is a record

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ActionItem)
class ActionItemAdmin(ServiceBackedAdmin):
    form = ActionItemForm
    action_form = ActionItemActionForm
    list_display = (
        "id",
        "title",
        "incident_reference",
        "priority_badge",
        "status_badge",
        "owner",
        "team",
        "due",
        "tracker",
    )
    list_display_links = ("id", "title")
    list_filter = (MineFilter, AttentionFilter, "status", "priority", "category", "team")
    search_fields = ("title", "incident__reference", "tracker_key", "team")
    list_select_related = ("incident", "owner")
    list_per_page = 50
    show_full_result_count = False
    autocomplete_fields = ("incident",)
    actions = ("reassign", "change_due_date", "mark_done", "start_work")
    inlines = (ActionItemUpdateInline,)
    history_list_display = ("status", "owner", "due_on")
    add_fieldsets = (
        (None, {"fields": ("incident", "postmortem", "title", "description")}),
        ("Plan", {"fields": (("category", "priority", "effort"), ("owner", "team"), "due_on")}),
        ("Tracker", {"fields": (("tracker_key", "tracker_url"),)}),
    )
    change_fieldsets = (
        (
            None,
            {
                "fields": (
                    ("incident_link", "postmortem_link", "status_badge", "due"),
                    ("move_to", "move_note"),
                    "title",
                    "description",
                )
            },
        ),
        ("Plan", {"fields": (("category", "priority", "effort"), ("owner", "team"), "due_on")}),
        ("Tracker", {"fields": (("tracker_key", "tracker_url"),)}),
        (
            "Outcome",
            {
                "fields": (
                    "blocked_reason",
                    "wont_do_reason",
                    ("completed_at", "completed_by"),
                    "verification_note",
                )
            },
        ),
    )
    change_readonly_fields = (
        "incident_link",
        "postmortem_link",
        "status_badge",
        "due",
        "blocked_reason",
        "wont_do_reason",
        "completed_at",
        "completed_by",
    )

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("incident", "owner")
        return action_item_list_visible_to(request.user, queryset)

    def get_fieldsets(self, request, obj=None):
        return self.change_fieldsets if obj else self.add_fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.change_readonly_fields if obj else ()

    def get_inlines(self, request, obj):
        return self.inlines if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "incident":
            kwargs["queryset"] = incident_list_visible_to(request.user)
        if db_field.name == "postmortem":
            # Reviews still being written, of incidents this user may see.
            kwargs["queryset"] = postmortem_list_visible_to(request.user).exclude(
                status=PostMortem.Status.PUBLISHED
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser  # records: close as won't do instead

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="incident", ordering="incident__reference")
    def incident_reference(self, obj):
        return obj.incident.reference

    @admin.display(description="incident")
    def incident_link(self, obj):
        return format_html(
            '<a href="{}">{}</a> {}',
            obj.incident.get_absolute_url(),
            obj.incident.reference,
            obj.incident.title,
        )

    @admin.display(description="post-mortem")
    def postmortem_link(self, obj):
        if obj.postmortem_id is None:
            return "— (noted on the incident)"
        return format_html('<a href="{}">Read it</a>', obj.postmortem.get_absolute_url())

    @admin.display(description="priority", ordering="priority")
    def priority_badge(self, obj):
        return badge(obj.priority, PRIORITY_COLORS[obj.priority])

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.get_status_display(), STATUS_COLORS[obj.status])

    @admin.display(description="due", ordering="due_on")
    def due(self, obj):
        if obj.is_overdue():
            days = (timezone.localdate() - obj.due_on).days
            return badge(f"{days}d overdue", "#b91c1c")
        return f"{obj.due_on:%Y-%m-%d}"

    @admin.display(description="tracker", ordering="tracker_key")
    def tracker(self, obj):
        if not obj.tracker_url:
            return obj.tracker_key or "—"
        return format_html(
            '<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>',
            obj.tracker_url,
            obj.tracker_key or "link",
        )

    # --- saving through services ------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        editable = {name: data[name] for name in services.EDITABLE_FIELDS if name in data}
        if not change:
            created = services.action_item_create(
                incident=data.get("incident"),
                postmortem=data.get("postmortem"),
                actor=request.user,
                source=Source.ADMIN,
                **editable,
            )
            obj.pk = created.pk
            return
        changed = {name: editable[name] for name in form.changed_data if name in editable}
        if changed:
            services.action_item_update(
                item=obj, actor=request.user, source=Source.ADMIN, **changed
            )
        if data.get("move_to"):
            services.action_item_transition(
                item=obj,
                to_status=data["move_to"],
                note=data.get("move_note", ""),
                actor=request.user,
                source=Source.ADMIN,
            )

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            for update in formset.save(commit=False):
                if update.pk is None and update.note.strip():
                    services.action_item_note(
                        item=form.instance,
                        note=update.note,
                        actor=request.user,
                        source=Source.ADMIN,
                    )

    # --- bulk actions -----------------------------------------------------------------

    @admin.action(description="Reassign to the owner chosen", permissions=["change"])
    def reassign(self, request, queryset):
        owner = active_users().filter(pk=request.POST.get("new_owner") or None).first()
        if owner is None:
            self.message_user(request, "Choose the new owner.", messages.ERROR)
            return
        note = request.POST.get("note", "")
        self.run_service(
            request,
            queryset,
            f"Reassigned to {owner.get_username()}:",
            lambda item: services.action_item_update(
                item=item, owner=owner, note=note, actor=request.user, source=Source.ADMIN
            ),
        )

    @admin.action(description="Change the due date to the one chosen", permissions=["change"])
    def change_due_date(self, request, queryset):
        try:
            due_on = date.fromisoformat(request.POST.get("new_due_on", ""))
        except ValueError:
            self.message_user(request, "Choose the new due date.", messages.ERROR)
            return
        note = request.POST.get("note", "")
        self.run_service(
            request,
            queryset,
            f"Moved to {due_on}:",
            lambda item: services.action_item_update(
                item=item, due_on=due_on, note=note, actor=request.user, source=Source.ADMIN
            ),
        )

    @admin.action(description="Mark done (note = how we verified it)", permissions=["change"])
    def mark_done(self, request, queryset):
        note = request.POST.get("note", "")
        self.run_service(
            request,
            queryset,
            "Marked done",
            lambda item: services.action_item_transition(
                item=item, to_status=Status.DONE, note=note, actor=request.user, source=Source.ADMIN
            ),
        )

    @admin.action(description="Start work (in progress)", permissions=["change"])
    def start_work(self, request, queryset):
        self.run_service(
            request,
            queryset,
            "Started",
            lambda item: services.action_item_transition(
                item=item, to_status=Status.IN_PROGRESS, actor=request.user, source=Source.ADMIN
            ),
        )


# --- the report ---------------------------------------------------------------------------


def _choices(model, field):
    # Read when the page renders, as a ModelChoiceField would.
    def choices():
        rows = model.objects.all()
        return [("", "---------"), *((getattr(row, field), str(row)) for row in rows)]

    return choices


class ReportFilterForm(forms.Form):
    """The report's filter inputs. What they mean is read by `report_filters_from`, the
    reading the API shares, so the fields check nothing themselves."""

    created_from = forms.Field(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.Field(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    service = forms.Field(required=False, widget=forms.Select(choices=_choices(Service, "slug")))
    team = forms.Field(required=False)
    severity = forms.Field(required=False, widget=forms.Select(choices=_choices(Severity, "key")))

    def clean(self):
        try:
            self.cleaned_data["filters"] = report_filters_from(self.data)
        except DomainError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return self.cleaned_data

    def filters(self) -> ReportFilters | None:
        """Return the filters asked for (none when nothing was asked), or None if one is
        refused (the form then carries the error, beside what was typed)."""
        if not self.is_bound:
            return ReportFilters()
        return self.cleaned_data["filters"] if self.is_valid() else None


class _SafeWriter:
    """csv.writer that defuses cells a spreadsheet would run as a formula (a team named
    "=HYPERLINK(…)"): they are written with a leading apostrophe."""

    def __init__(self, stream):
        self._writer = csv.writer(stream)

    def writerow(self, row):
        self._writer.writerow(
            [f"'{cell}" if isinstance(cell, str) and cell[:1] in "=+-@" else cell for cell in row]
        )


CSV_COUNTS = ("total", "open", "blocked", "done", "wont_do", "overdue", "completion_rate")


def report_csv(report: dict) -> HttpResponse:
    """The report's figures as CSV: one row per breakdown group, the summary first."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="remediation-report-{report["today"]}.csv"'
    )
    writer = _SafeWriter(response)
    writer.writerow(["section", "group", *CSV_COUNTS])
    writer.writerow(["summary", "all", *(report["summary"][name] for name in CSV_COUNTS)])
    for section in ("by_priority", "by_category", "by_team", "by_service"):
        for row in report[section]:
            writer.writerow(
                [section.removeprefix("by_"), row["group"], *(row[n] for n in CSV_COUNTS)]
            )
    writer.writerow([])
    writer.writerow(["median_days_to_complete", report["median_days_to_complete"]])
    return response


@admin.register(RemediationReport)
class RemediationReportAdmin(admin.ModelAdmin):
    """The remediation report, as a page linked from the admin index."""

    def get_urls(self):
        # The report page only: no change or history pages for the rows behind it.
        view = self.admin_site.admin_view(self.changelist_view)
        return [path("", view, name="remediation_remediationreport_changelist")]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = ReportFilterForm(request.GET or None)
        filters = form.filters()
        # A refused filter shows its error over the unfiltered figures (as the page has
        # always done), but downloads nothing: a CSV cannot say it was not filtered.
        report = remediation_report(
            request.user, filters if filters is not None else ReportFilters()
        )
        if request.GET.get("format") == "csv" and filters is not None:
            return report_csv(report)
        query = request.GET.copy()
        query["format"] = "csv"
        context = {
            **self.admin_site.each_context(request),
            "title": "Remediation report",
            "opts": self.model._meta,
            "form": form,
            "report": report,
            "csv_query": query.urlencode(),
        }
        return TemplateResponse(request, "admin/remediation/report.html", context)


# --- action items on the incident and review pages ------------------------------------------


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    fields = ("title", "category", "priority", "owner", "team", "due_on", "status", "open_link")
    readonly_fields = ("status", "open_link")
    extra = 1
    verbose_name_plural = "Action items (add one below; open an item to work on it)"

    @admin.display(description="")
    def open_link(self, obj):
        if obj.pk is None:
            return ""
        url = reverse("admin:remediation_actionitem_change", args=[obj.pk])
        return format_html('<a href="{}">open #{}</a>', url, obj.pk)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            kwargs["queryset"] = active_users()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # A new row takes the priority's default due date when left empty.
        formset.form.base_fields["due_on"].required = False
        return formset

    def has_change_permission(self, request, obj=None):
        return False  # rows are edited on the item's own page, through its services

    def has_delete_permission(self, request, obj=None):
        return False


def create_inline_items(formset, request, **where) -> None:
    """Create, through the service, the action items added in an inline."""
    for item in formset.save(commit=False):
        if item.pk is None:
            services.action_item_create(
                title=item.title,
                category=item.category,
                priority=item.priority,
                owner=item.owner,
                team=item.team,
                due_on=item.due_on,
                actor=request.user,
                source=Source.ADMIN,
                **where,
            )


class PostMortemActionItemInline(ActionItemInline):
    fk_name = "postmortem"

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not (obj and obj.is_published)


# Follow-up work is added where it is found: on the incident's page and the review's.
def create_items_on_incident(request, form, formset, change):
    create_inline_items(formset, request, incident=form.instance)


def create_items_on_postmortem(request, form, formset, change):
    create_inline_items(formset, request, postmortem=form.instance)


contribute(Incident, inlines=[Inline(ActionItemInline, save=create_items_on_incident)])
contribute_dashboard(dashboard.PANEL)  # my overdue action items
contribute(
    PostMortem, inlines=[Inline(PostMortemActionItemInline, save=create_items_on_postmortem)]
)
