"""What the incident page holds below its fields: roles, timeline, status updates."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .. import notifications
from ..models import (
    RoleAssignment,
    StatusUpdate,
    TimelineEvent,
)
from ..queries import (
    active_users,
)
from .widgets import QuickSelect


class RoleAssignmentInline(admin.TabularInline):
    model = RoleAssignment
    fk_name = "incident"
    fields = ("role", "user", "assigned_at", "relieved_at", "assigned_by")
    readonly_fields = ("assigned_at", "relieved_at", "assigned_by", "stand_down")
    extra = 1
    verbose_name = "role"
    verbose_name_plural = "Roles (assigning a role hands it over; the previous holder is kept)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "assigned_by")

    def get_fields(self, request, obj=None):
        # The stand-down link only for those who may change the incident (obj, the page's).
        opts = self.parent_model._meta
        may_change = request.user.has_perm(
            f"{opts.app_label}.{get_permission_codename('change', opts)}"
        )
        return (*self.fields, "stand_down") if obj is not None and may_change else self.fields

    @admin.display(description="")
    def stand_down(self, assignment):
        if assignment.pk is None or assignment.relieved_at is not None:
            return ""
        url = reverse(
            "admin:incidents_incident_stand_down", args=[assignment.incident_id, assignment.pk]
        )
        return format_html('<a href="{}" class="stand-down-link">Stand down…</a>', url)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A plain list of active people: the user autocomplete would need every
        # commander to have view access to the whole user admin.
        if db_field.name == "user":
            kwargs["queryset"] = active_users()
            kwargs["widget"] = QuickSelect
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
        # Only the first update starts from the template: after it, the blank row would
        # repeat the opening text, which the next update should not say again.
        first = obj is not None and not obj.updates.exists()
        rendered = first and notifications.render_template("customer-update", obj)
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
