"""Evidence in the admin: the register, an upload (or an item held elsewhere) saved through
the services, a read-only record page whose every view is in the custody log, the export
action, the custody log itself, and the Evidence panel on the incident page.

List pages (the register, the incident's panel) show what was collected — kind,
description, size, hash — not the evidence itself, and are not custody events: the
record page, a download and an export are. Recording every list would turn each read of
the register into a write per row it shows, and bury the accesses that matter."""

from django import forms
from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from incidents.admin import KeepsTypedInput, Panel, ServiceBackedAdmin, badge, contribute, refusals
from incidents.admin.base import GuardedHistoryAdmin
from incidents.models import Incident, Source
from incidents.queries import active_users, incident_list_visible_to

from .. import services
from ..export import csv_response, with_custody
from ..models import BreachAssessment, CustodyRecord, EvidenceItem
from ..queries import custody_list_visible_to, evidence_list_visible_to

Integrity = EvidenceItem.Integrity
INTEGRITY_COLORS = {
    Integrity.OK: "#15803d",
    Integrity.MISMATCH: "#b91c1c",
    Integrity.MISSING: "#b91c1c",
    Integrity.EXTERNAL: "#6b7280",
}
PANEL_ROWS = 20
CUSTODY_ROWS = 50


def integrity_badge(item: EvidenceItem):
    return badge(item.get_integrity_display(), INTEGRITY_COLORS[item.integrity])


def download_link(item: EvidenceItem, text: str = "download"):
    if not item.is_stored:
        return format_html("at {}", Truncator(item.external_location).chars(60))
    url = reverse("forensics:evidence-download", args=[item.pk])
    return format_html('<a href="{}">{}</a>', url, text)


def size_text(size: int | None) -> str:
    return "—" if size is None else f"{size:,} bytes"


class EvidenceForm(forms.ModelForm):
    stated_sha256 = forms.CharField(
        label="SHA-256 (as stated)",
        required=False,
        max_length=64,
        help_text="The hash its collector computed. Of an upload Sitrep computes its own and "
        "refuses the file if the two differ; of an item held elsewhere it is recorded as stated.",
    )
    stated_size = forms.IntegerField(
        label="Size in bytes (as stated)",
        required=False,
        min_value=0,
        help_text="Of an item held elsewhere.",
    )

    class Meta:
        model = EvidenceItem
        fields = (
            "incident",
            "kind",
            "description",
            "file",
            "external_location",
            "collected_by",
            "collected_at",
        )
        help_texts = {
            "file": "Kept in the evidence locker, never served by URL; its size and SHA-256 are "
            "computed as it is stored.",
            "collected_by": "Default: you.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "collected_by" in self.fields:
            self.fields["collected_by"].queryset = active_users()
        if "collected_at" in self.fields:
            self.fields["collected_at"].required = False
            self.fields["collected_at"].help_text = "Default: now."


class CustodyLogMixin:
    @admin.display(description="custody log")
    def custody_log(self, item):
        records = list(item.custody.order_by("-at", "-id")[: CUSTODY_ROWS + 1])
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{timezone.localtime(record.at):%Y-%m-%d %H:%M:%S %Z}",
                    record.get_action_display(),
                    record.actor_name or "Sitrep",
                    record.address or "—",
                    record.get_source_display(),
                    record.detail,
                )
                for record in records[:CUSTODY_ROWS]
            ),
        )
        everything = reverse("admin:forensics_custodyrecord_changelist") + f"?evidence={item.pk}"
        more = (
            format_html('<p><a href="{}">The whole log</a></p>', everything)
            if len(records) > CUSTODY_ROWS
            else ""
        )
        return format_html(
            "<table><thead><tr><th>When</th><th>What</th><th>Who</th><th>From</th><th>Via</th>"
            "<th>Detail</th></tr></thead><tbody>{}</tbody></table>{}",
            rows,
            more,
        )


@admin.register(EvidenceItem)
class EvidenceItemAdmin(CustodyLogMixin, KeepsTypedInput, ServiceBackedAdmin):
    form = EvidenceForm
    list_display = (
        "id",
        "kind",
        "incident_reference",
        "short_description",
        "size_column",
        "sha256_short",
        "integrity_column",
        "collected_by",
        "collected_at",
        "download_column",
    )
    list_display_links = ("id", "kind")
    list_filter = ("kind", "integrity")
    search_fields = ("incident__reference", "description", "original_filename", "sha256")
    list_select_related = ("incident", "collected_by")
    list_per_page = 50
    show_full_result_count = False
    autocomplete_fields = ("incident",)
    actions = ("export_register",)
    history_list_display = ("integrity", "last_verified_at")
    add_fieldsets = (
        (None, {"fields": ("incident", "kind", "description")}),
        (
            "The evidence: upload a file, or say where it is held",
            {"fields": ("file", "external_location", ("stated_sha256", "stated_size"))},
        ),
        ("Collected", {"fields": (("collected_by", "collected_at"),)}),
    )
    change_fieldsets = (
        (None, {"fields": ("incident_link", "kind", "description")}),
        (
            "The evidence",
            {
                "fields": (
                    "stored_file",
                    "external_location",
                    ("size_column", "sha256"),
                    ("integrity_column", "last_verified_at"),
                )
            },
        ),
        ("Collected", {"fields": (("collected_by", "collected_at"), ("created_by", "created_at"))}),
        ("Chain of custody", {"fields": ("custody_log",)}),
    )
    change_readonly_fields = (
        "incident_link",
        "kind",
        "description",
        "stored_file",
        "external_location",
        "size_column",
        "sha256",
        "integrity_column",
        "last_verified_at",
        "collected_by",
        "collected_at",
        "created_by",
        "created_at",
        "custody_log",
    )

    def get_queryset(self, request):
        return evidence_list_visible_to(request.user, super().get_queryset(request))

    def get_fieldsets(self, request, obj=None):
        # Never the file field itself on a record's page: its widget would ask the
        # storage for a URL, which the locker has none of.
        return self.change_fieldsets if obj else self.add_fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.change_readonly_fields if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "incident":
            kwargs["queryset"] = incident_list_visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        for name in ("incident", "collected_by"):
            if name in form.base_fields:
                widget = form.base_fields[name].widget
                widget.can_add_related = widget.can_change_related = False
                widget.can_delete_related = widget.can_view_related = False
        return form

    def get_changeform_initial_data(self, request):
        return {"collected_by": request.user.pk, **super().get_changeform_initial_data(request)}

    # Evidence is as it was collected: added, never edited or removed.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            item = response.context_data["original"]
            services.evidence_record_view(
                item=item,
                actor=request.user,
                source=Source.ADMIN,
                address=services.address_of(request),
                detail="record page",
            )
        return response

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="incident", ordering="incident__reference")
    def incident_reference(self, item):
        return item.incident.reference

    @admin.display(description="incident")
    def incident_link(self, item):
        return format_html(
            '<a href="{}">{}</a> {}',
            item.incident.get_absolute_url(),
            item.incident.reference,
            item.incident.title,
        )

    @admin.display(description="description")
    def short_description(self, item):
        return Truncator(item.description).chars(80)

    @admin.display(description="size", ordering="size")
    def size_column(self, item):
        return size_text(item.size)

    @admin.display(description="SHA-256")
    def sha256_short(self, item):
        return (
            format_html('<code title="{}">{}…</code>', item.sha256, item.sha256[:12])
            if item.sha256
            else "—"
        )

    @admin.display(description="integrity", ordering="integrity")
    def integrity_column(self, item):
        return integrity_badge(item)

    @admin.display(description="")
    def download_column(self, item):
        return download_link(item)

    @admin.display(description="file")
    def stored_file(self, item):
        if not item.is_stored:
            return "— (held elsewhere)"
        return format_html(
            "{} — {} <small>(stored as {})</small>",
            item.download_name,
            download_link(item),
            item.file.name,
        )

    # --- saving through the services ----------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        common = {
            "incident": data["incident"],
            "kind": data["kind"],
            "description": data["description"],
            "collected_by": data.get("collected_by"),
            "collected_at": data.get("collected_at"),
            "actor": request.user,
            "source": Source.ADMIN,
            "address": services.address_of(request),
        }
        with refusals():
            if data.get("file"):
                item = services.evidence_upload(
                    file=data["file"], expected_sha256=data.get("stated_sha256", ""), **common
                )
            else:
                item = services.evidence_register(
                    external_location=data.get("external_location", ""),
                    sha256=data.get("stated_sha256", ""),
                    size=data.get("stated_size"),
                    **common,
                )
        obj.pk = item.pk

    def save_related(self, request, form, formsets, change):
        pass  # nothing related is edited here

    # --- export -----------------------------------------------------------------------

    @admin.action(
        description="Export the register and custody log of the selected items (CSV)",
        permissions=["view"],
    )
    def export_register(self, request, queryset):
        items = list(queryset.select_related("incident"))
        services.evidence_export(
            items=items,
            actor=request.user,
            source=Source.ADMIN,
            address=services.address_of(request),
            what="register export (admin)",
        )
        stamp = f"{timezone.now():%Y%m%d-%H%M%S}"
        return csv_response(
            with_custody(EvidenceItem.objects.filter(pk__in=[item.pk for item in items])),
            f"evidence-register-{stamp}.csv",
        )


@admin.register(CustodyRecord)
class CustodyRecordAdmin(GuardedHistoryAdmin):
    """The chain of custody: read-only for everyone, superusers too."""

    list_display = (
        "at",
        "action",
        "evidence_link",
        "incident_reference",
        "who",
        "address",
        "source",
        "detail",
    )
    list_filter = ("action", "source")
    search_fields = ("evidence__incident__reference", "actor_name", "detail", "address")
    list_select_related = ("evidence__incident",)
    list_per_page = 100
    show_full_result_count = False
    ordering = ("-at", "-id")
    fields = ("evidence_link", "action", "who", "at", "address", "source", "detail")
    readonly_fields = fields

    def get_queryset(self, request):
        return custody_list_visible_to(request.user, super().get_queryset(request))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="evidence")
    def evidence_link(self, record):
        url = reverse("admin:forensics_evidenceitem_change", args=[record.evidence_id])
        return format_html('<a href="{}">#{}</a>', url, record.evidence_id)

    @admin.display(description="incident", ordering="evidence__incident__reference")
    def incident_reference(self, record):
        return record.evidence.incident.reference

    @admin.display(description="who", ordering="actor_name")
    def who(self, record):
        return record.actor_name or "Sitrep"


# --- on the incident page ---------------------------------------------------------------


def with_forensics(request, queryset):
    """Whether each incident has evidence or a breach assessment: the panels say nothing
    (and ask nothing more of the database) for the incidents that have neither."""
    return queryset.annotate(
        has_evidence=Exists(EvidenceItem.objects.filter(incident=OuterRef("pk"))),
        has_breach_assessment=Exists(BreachAssessment.objects.filter(incident=OuterRef("pk"))),
    )


def evidence_panel(request, incident):
    """The incident's evidence (newest first) with download links, and the way to add."""
    user = request.user
    may_add = user.has_perm("forensics.add_evidenceitem")
    add = ""
    if may_add:
        url = reverse("admin:forensics_evidenceitem_add") + f"?incident={incident.pk}"
        add = format_html('<p><a class="button" href="{}">Add evidence</a></p>', url)
    if not user.has_perm("forensics.view_evidenceitem"):
        return None
    if getattr(incident, "has_evidence", True) is False:
        return format_html("<p>No evidence collected.</p>{}", add) if may_add else None
    items = list(
        EvidenceItem.objects.filter(incident=incident)
        .select_related("collected_by")
        .order_by("-collected_at", "-id")[: PANEL_ROWS + 1]
    )
    if not items:
        return format_html("<p>No evidence collected.</p>{}", add) if may_add else None
    # A list, not a table: the panel also sits in the war room's narrow column.
    rows = format_html_join(
        "",
        '<li><a href="{}">#{}</a> <strong>{}</strong> — {}<br><small>{} · SHA-256 '
        "<code>{}</code> · {} · collected by {}, {} · {}</small></li>",
        (
            (
                reverse("admin:forensics_evidenceitem_change", args=[item.pk]),
                item.pk,
                item.get_kind_display(),
                Truncator(item.description).chars(120),
                size_text(item.size),
                f"{item.sha256[:12]}…" if item.sha256 else "—",
                integrity_badge(item),
                item.collected_by or "—",
                f"{timezone.localtime(item.collected_at):%Y-%m-%d %H:%M}",
                download_link(item),
            )
            for item in items[:PANEL_ROWS]
        ),
    )
    register = reverse("admin:forensics_evidenceitem_changelist") + f"?incident={incident.pk}"
    return format_html(
        '<ul style="margin-left:0;padding-left:1em">{}</ul><p><a href="{}">{}</a> (select '
        "items there to export them with their custody log)</p>{}",
        rows,
        register,
        "All the incident's evidence" if len(items) > PANEL_ROWS else "The register",
        add,
    )


contribute(Incident, querysets=[with_forensics], panels=[Panel("Evidence", evidence_panel)])
