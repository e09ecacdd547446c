"""What every admin of Sitrep shares: history pages that respect visibility, saves and
actions that go through services, and the status badge."""

import contextlib
from datetime import date, datetime, timedelta

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, PermissionDenied
from django.db.models import Model, prefetch_related_objects
from django.http import Http404, HttpResponseRedirect
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from ..errors import DomainError
from ..models import (
    Incident,
    Status,
)
from ..queries import (
    user_may_see_incident,
    visible_incidents_prefetch,
)

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


# History pages show times to the second, in the zone people read, with its name.
HISTORY_DATETIME_FORMAT = "j M Y, H:i:s T"
NO_VALUE = "—"


def readable_value(field, value):
    """Return `value` of model field `field` as a person reads it: a choice's label, a
    time without microseconds in the local zone, yes/no, "—" for nothing, str() else."""
    if value is None or value == "" or value == []:
        return NO_VALUE
    if isinstance(value, list):
        return [readable_value(None, item) for item in value]
    if field is not None and getattr(field, "choices", None) and not isinstance(value, Model):
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return formats.date_format(value, HISTORY_DATETIME_FORMAT)
    if isinstance(value, date):
        return formats.date_format(value, "j M Y")
    if isinstance(value, timedelta):
        from .declare import spoken_length  # the severity policy's words, one place

        return spoken_length(value)
    return value


class VisibleHistoryContext(HistoricalRecordContextHelper):
    """Names in a history diff only the incidents the reader may see, and shows each
    value readably (readable_value) under the field's label."""

    def __init__(self, model, historical_record, *, user):
        super().__init__(model, historical_record)
        self.user = user

    def prepare_delta_change_value(self, change, value):
        value = super().prepare_delta_change_value(change, value)
        if isinstance(value, list):
            value = [self._shown(item) for item in value]
        else:
            value = self._shown(value)
        return readable_value(self.model._meta.get_field(change.field), value)

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
        labels = [
            self._history_column_label(name) for name in self.get_history_list_display(request)
        ]
        extra_context = {**(extra_context or {}), "history_column_labels": labels}
        return super().history_view(request, object_id, extra_context)

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        # The page's rows, once: besides their changes, give each its columns and time
        # as people read them (templates/simple_history/object_history_list.html).
        super().set_history_delta_changes(request, historical_records, foreign_keys_are_objs)
        columns = self.get_history_list_display(request)
        for record in historical_records:
            record.readable_columns = [
                self._history_column_value(request, record, name) for name in columns
            ]
            record.readable_date = readable_value(None, record.history_date)

    def _history_column_label(self, name):
        try:
            return capfirst(self.model._meta.get_field(name).verbose_name)
        except FieldDoesNotExist:
            method = getattr(self, name, None)
            return capfirst(getattr(method, "short_description", name.replace("_", " ")))

    def _history_column_value(self, request, record, name):
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            field = None
        try:
            value = getattr(record, field.name if field else name, None)
        except ObjectDoesNotExist:
            return "(deleted)"
        helper = self.get_historical_record_context_helper(request, record)
        return readable_value(field, helper._shown(value))

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
        except DomainError as error:
            self.message_user(request, f"Nothing was saved: {error.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def run_service(self, request, queryset, verb, call):
        """Apply `call` to each row; report how many worked and why others did not;
        return how many worked."""
        done, failed = 0, []
        for obj in queryset:
            try:
                call(obj)
                done += 1
            except DomainError as error:
                failed.append(error.message)
        if done:
            noun = self.model._meta.verbose_name
            self.message_user(request, f"{verb} {done} {noun}(s).", messages.SUCCESS)
        for message in failed:
            self.message_user(request, message, messages.ERROR)
        return done


# --- refusals keep what was typed ------------------------------------------------------


class Refused(Exception):
    """A service refused the save; carries its DomainError past the admin's transaction
    (which it unwinds) and past ServiceBackedAdmin's catch-all (which redirects, dropping
    what was typed) to KeepsTypedInput."""

    def __init__(self, error: DomainError):
        super().__init__(error.message)
        self.error = error


@contextlib.contextmanager
def refusals():
    """Turn a service's DomainError into Refused (for KeepsTypedInput)."""
    try:
        yield
    except DomainError as error:
        raise Refused(error) from error


class KeepsTypedInput:
    """Nothing typed is lost: when a service refuses a save (inside `refusals()`), the
    admin's transaction unwinds and the page is built again from the same POST, with the
    refusal as an error on the field it names (or above the form), and saves nothing."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except Refused as refused:
            request.admin_refusal = refused.error
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        error = getattr(request, "admin_refusal", None)
        if error is None:
            return form_class

        class RefusedForm(form_class):
            def clean(self):
                cleaned = super().clean()
                self.add_error(error.field if error.field in self.fields else None, error.message)
                return cleaned

        return RefusedForm
