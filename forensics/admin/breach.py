"""Breach assessments in the admin: the countdown to the regulator deadline on the
incident page and in the list, and a form whose save records the assessment and the
notifications through the services (a refusal keeps what was typed)."""

from dataclasses import dataclass
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from incidents.admin import KeepsTypedInput, Panel, ServiceBackedAdmin, badge, contribute, refusals
from incidents.errors import DomainError
from incidents.formatting import short_duration
from incidents.models import Incident, Source
from incidents.queries import incident_list_visible_to

from .. import services
from ..models import BreachAssessment
from ..queries import breach_list_visible_to

DUE_COLOR, SOON_COLOR, LATE_COLOR, DONE_COLOR, IDLE_COLOR = (
    "#2563eb",
    "#b45309",
    "#b91c1c",
    "#15803d",
    "#6b7280",
)
ASSESSMENT = ("personal_data_affected", "regulator_notification_required", "assessment_notes")
# The form's fields of each notification, and the service that records it.
NOTIFICATIONS = {
    "regulator": (
        ("regulator_notified_at", "regulator_reference", "regulator_notes"),
        services.breach_record_regulator_notified,
        "the regulator",
    ),
    "data_subjects": (
        ("data_subjects_notified_at", "data_subjects_reference", "data_subjects_notes"),
        services.breach_record_subjects_notified,
        "the data subjects",
    ),
}


@dataclass(frozen=True)
class Shown:
    """A regulator countdown as the admin shows it: said in full (the incident page, the
    assessment's page), in short (the list), and its colour."""

    text: str
    short: str
    color: str


def countdown(assessment: BreachAssessment, now=None) -> Shown:
    """Say where the regulator deadline stands."""
    now = now or timezone.now()
    clock = assessment.countdown(now)
    if clock.state == "notified":
        at = assessment.regulator_notified_at
        timing = services.notification_timing(assessment, at)
        if at > assessment.deadline_at:
            late = short_duration(at - assessment.deadline_at)
            return Shown(
                f"Regulator notified {services.utc(at)}, {timing}",
                f"notified {late} late",
                SOON_COLOR,
            )
        return Shown(
            f"Regulator notified {services.utc(at)}, {timing}", "notified in time", DONE_COLOR
        )
    if clock.state == "not_required":
        return Shown("Regulator notification not required (assessed)", "not required", IDLE_COLOR)
    unassessed = assessment.regulator_notification_required is None
    tail = " — not assessed yet" if unassessed else ""
    deadline = services.utc(clock.deadline_at)
    if clock.state == "overdue":
        overdue = short_duration(-clock.left)
        return Shown(
            f"Regulator notification overdue by {overdue} (was due {deadline}){tail}",
            f"overdue {overdue}",
            LATE_COLOR,
        )
    color = (
        LATE_COLOR
        if clock.left <= timedelta(hours=6)
        else SOON_COLOR
        if clock.left <= timedelta(hours=24)
        else DUE_COLOR
    )
    left = short_duration(clock.left)
    return Shown(
        f"Regulator notification due in {left} (by {deadline}){tail}", f"due in {left}", color
    )


def said(shown: Shown):
    """The countdown in full, in its colour, wrapping as a sentence does."""
    return format_html('<strong style="color:{}">{}</strong>', shown.color, shown.text)


def _yes_no(value) -> str:
    return {True: "yes", False: "no", None: "not assessed yet"}[value]


class ClockFilter(admin.SimpleListFilter):
    title = "regulator deadline"
    parameter_name = "clock"

    def lookups(self, request, model_admin):
        return (
            ("running", "Running"),
            ("overdue", "Overdue"),
            ("notified", "Regulator notified"),
            ("not_required", "Not required"),
        )

    def queryset(self, request, queryset):
        now = timezone.now()
        running = queryset.filter(regulator_notified_at__isnull=True).exclude(
            regulator_notification_required=False
        )
        if self.value() == "running":
            return running
        if self.value() == "overdue":
            return running.filter(deadline_at__lte=now)
        if self.value() == "notified":
            return queryset.filter(regulator_notified_at__isnull=False)
        if self.value() == "not_required":
            return queryset.filter(
                regulator_notified_at__isnull=True, regulator_notification_required=False
            )
        return queryset


class BreachAssessmentForm(forms.ModelForm):
    class Meta:
        model = BreachAssessment
        fields = (
            "incident",
            "personal_data_affected",
            "regulator_notification_required",
            "assessment_notes",
            "clock_started_at",
            "regulator_notified_at",
            "regulator_reference",
            "regulator_notes",
            "data_subjects_notified_at",
            "data_subjects_reference",
            "data_subjects_notes",
        )
        labels = {
            "regulator_notified_at": "Regulator notified at",
            "data_subjects_notified_at": "Data subjects notified at",
        }
        help_texts = {
            "regulator_notification_required": "Unknown keeps the clock running: the "
            "commander and the legal team are warned at 24 h and 6 h left and when it passes.",
            "clock_started_at": "When we became aware of the breach; empty: at detection. "
            "The deadline is counted from it.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "clock_started_at" in self.fields:
            self.fields["clock_started_at"].required = False


@admin.register(BreachAssessment)
class BreachAssessmentAdmin(KeepsTypedInput, ServiceBackedAdmin):
    form = BreachAssessmentForm
    list_display = (
        "incident_reference",
        "countdown_column",
        "deadline_at",
        "personal_data",
        "notification_required",
        "regulator_notified_at",
        "data_subjects_notified_at",
    )
    list_filter = (ClockFilter,)
    search_fields = ("incident__reference", "regulator_reference", "data_subjects_reference")
    list_select_related = ("incident",)
    show_full_result_count = False
    autocomplete_fields = ("incident",)
    history_list_display = ("regulator_notification_required", "regulator_notified_at")
    assessment_fieldsets = (
        (
            "Assessment",
            {
                "fields": (
                    ("personal_data_affected", "regulator_notification_required"),
                    "assessment_notes",
                    "clock_started_at",
                )
            },
        ),
        (
            "Regulator",
            {"fields": ("regulator_notified_at", "regulator_reference", "regulator_notes")},
        ),
        (
            "Data subjects",
            {
                "fields": (
                    "data_subjects_notified_at",
                    "data_subjects_reference",
                    "data_subjects_notes",
                )
            },
        ),
    )
    readonly = (
        "incident_link",
        "countdown_text",
        "deadline_at",
        "assessed",
        "warnings_sent",
    )

    def get_queryset(self, request):
        return breach_list_visible_to(request.user, super().get_queryset(request))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "incident" in form.base_fields:
            widget = form.base_fields["incident"].widget
            widget.can_add_related = widget.can_change_related = False
            widget.can_delete_related = widget.can_view_related = False
        return form

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("incident",)}), *self.assessment_fieldsets)
        head = (None, {"fields": ("incident_link", "countdown_text", "deadline_at", "assessed")})
        watchdog = ("Warnings sent", {"fields": ("warnings_sent",)})
        return (head, *self.assessment_fieldsets, watchdog)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "incident":
            kwargs["queryset"] = incident_list_visible_to(request.user).filter(
                breach_assessment__isnull=True
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # a record of what was owed to a regulator stays

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="incident", ordering="incident__reference")
    def incident_reference(self, assessment):
        return assessment.incident.reference

    @admin.display(description="incident")
    def incident_link(self, assessment):
        incident = assessment.incident
        return format_html(
            '<a href="{}">{}</a> {}',
            incident.get_absolute_url(),
            incident.reference,
            incident.title,
        )

    @admin.display(description="regulator deadline", ordering="deadline_at")
    def countdown_column(self, assessment):
        shown = countdown(assessment)
        return badge(shown.short, shown.color)

    @admin.display(description="where it stands")
    def countdown_text(self, assessment):
        return said(countdown(assessment))

    @admin.display(description="personal data", ordering="personal_data_affected")
    def personal_data(self, assessment):
        return _yes_no(assessment.personal_data_affected)

    @admin.display(description="notify regulator", ordering="regulator_notification_required")
    def notification_required(self, assessment):
        return _yes_no(assessment.regulator_notification_required)

    @admin.display(description="assessed")
    def assessed(self, assessment):
        if assessment.assessed_at is None:
            return "not yet"
        who = assessment.assessed_by.get_username() if assessment.assessed_by else "Sitrep"
        return f"by {who}, {services.utc(assessment.assessed_at)}"

    @admin.display(description="warnings sent")
    def warnings_sent(self, assessment):
        sent = [
            f"{label}: {services.utc(moment)}"
            for label, moment in (
                ("24 h left", assessment.warned_24h_at),
                ("6 h left", assessment.warned_6h_at),
                ("missed", assessment.missed_at),
            )
            if moment
        ]
        return "; ".join(sent) or "none"

    # --- saving through the services ----------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        incident = obj.incident if change else data["incident"]
        write = {"incident": incident, "actor": request.user, "source": Source.ADMIN}
        assessed = {
            name: data[name]
            for name in ASSESSMENT
            if name in data and (not change or name in form.changed_data)
        }
        if data.get("clock_started_at") and (not change or "clock_started_at" in form.changed_data):
            assessed["clock_started_at"] = data["clock_started_at"]
        with refusals():
            assessment = services.breach_assess(**write, **assessed)
            for fields, record, whom in NOTIFICATIONS.values():
                if not any(name in form.changed_data for name in fields):
                    continue
                at_field, reference_field, notes_field = fields
                if data.get(at_field) is None:
                    if getattr(assessment, at_field) is not None:
                        raise DomainError(
                            f"The notification of {whom} stays recorded: correct its time "
                            "rather than clearing it.",
                            field=at_field,
                        )
                    raise DomainError(f"Give when {whom} were notified.", field=at_field)
                try:
                    assessment = record(
                        **write,
                        notified_at=data[at_field],
                        reference=data.get(reference_field, ""),
                        notes=data.get(notes_field, ""),
                    )
                except DomainError as error:
                    # The service names its argument; the form has a field for each party.
                    field = at_field if error.field == "notified_at" else error.field
                    raise DomainError(error.message, field=field) from error
        obj.pk = assessment.pk

    def save_related(self, request, form, formsets, change):
        pass  # nothing related is edited here


# --- on the incident page ---------------------------------------------------------------


def breach_panel(request, incident):
    """The regulator countdown, the assessment and the notifications made, and the way to
    record them; nothing for an incident that is not a breach candidate."""
    user = request.user
    if not user.has_perm("forensics.view_breachassessment"):
        return None
    has = getattr(incident, "has_breach_assessment", None)
    assessment = (
        None if has is False else BreachAssessment.objects.filter(incident=incident).first()
    )
    may_change = user.has_perm("forensics.change_breachassessment")
    if assessment is None:
        if not services.is_breach_type(incident) or not user.has_perm(
            "forensics.add_breachassessment"
        ):
            return None
        url = reverse("admin:forensics_breachassessment_add") + f"?incident={incident.pk}"
        return format_html(
            '<p>Not assessed yet.</p><p><a class="button" href="{}">Assess</a></p>', url
        )
    assessment.incident = incident
    facts = [
        ("Personal data affected", _yes_no(assessment.personal_data_affected)),
        ("Regulator notification required", _yes_no(assessment.regulator_notification_required)),
    ]
    for label, at, reference in (
        ("Regulator notified", assessment.regulator_notified_at, assessment.regulator_reference),
        (
            "Data subjects notified",
            assessment.data_subjects_notified_at,
            assessment.data_subjects_reference,
        ),
    ):
        when = services.utc(at) if at else "not yet"
        facts.append((label, f"{when} (reference {reference})" if reference else when))
    url = reverse("admin:forensics_breachassessment_change", args=[assessment.pk])
    link = (
        format_html(
            '<p><a class="button" href="{}">Record the assessment or a notification</a></p>', url
        )
        if may_change
        else format_html('<p><a href="{}">The assessment</a></p>', url)
    )
    return format_html(
        "<p>{}</p><ul>{}</ul>{}",
        said(countdown(assessment)),
        format_html_join("", "<li>{}: {}</li>", facts),
        link,
    )


contribute(Incident, panels=[Panel("Breach notification", breach_panel)])
