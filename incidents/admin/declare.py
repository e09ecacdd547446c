"""Declaring an incident in one dialog: the few things a responder knows in the first
minute, with each severity's response times beside it, and the commander defaulting to
whoever declares. Every admin page opens it from its header ("Declare incident", or the
`d` key): with JavaScript in a <dialog> (htmx fetches the form alone), without it on a
page of its own. Saving lands on the new incident's war-room page; a refusal shows the
form again with everything typed."""

from datetime import timedelta
from functools import update_wrapper

from django import forms
from django.contrib import messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django_htmx.http import HttpResponseClientRedirect

from .. import services
from ..errors import DomainError
from ..models import Environment, IncidentType, Service, Severity, Source
from ..queries import active_users
from ..services import LONG_TEXT, TITLE_MAX_LENGTH

DECLARE_URL_NAME = "incidents_incident_declare"

# A service refusal names its own argument; on this form the commander is "commander".
FIELD_OF_ERROR = {"user": "commander"}


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'' if number == 1 else 's'}"


def spoken_length(length: timedelta) -> str:
    """Return '15 minutes', '1 hour', '5 days' or '1 week' for a policy duration."""
    seconds = int(length.total_seconds())
    for unit, size in (("week", 604_800), ("day", 86_400), ("hour", 3_600)):
        if seconds >= size and seconds % size == 0:
            return _count(seconds // size, unit)
    return _count(round(seconds / 60), "minute")


def severity_guidance(severity: Severity) -> dict:
    """What the declare form says beside a severity: the policy's promises, in words."""
    acknowledge = f"acknowledge within {spoken_length(severity.acknowledge_within)}"
    if severity.response_in_business_hours:
        days = severity.acknowledge_within >= timedelta(days=1)
        acknowledge += " (business days)" if days else " (business hours)"
    cadence = {timedelta(days=1): "daily", timedelta(weeks=1): "weekly"}.get(
        severity.update_every, f"every {spoken_length(severity.update_every)}"
    )
    if severity.postmortem_required and severity.postmortem_due_days:
        review = f"post-mortem within {_count(severity.postmortem_due_days, 'day')}"
    elif severity.postmortem_required:
        review = "post-mortem required"
    else:
        review = "post-mortem optional"
    return {"acknowledge": acknowledge, "updates": f"updates {cadence}", "review": review}


class BoundedModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """A hostile id too large for the key's column is "not a choice", not a 500: Django
    bounds `pk=` lookups to the column's range but not `pk__in=`, which the database
    then refuses (OverflowError, "integer out of range")."""

    def _check_values(self, value):
        pk = self.queryset.model._meta.pk
        low, high = connection.ops.integer_field_range(pk.get_internal_type())
        for item in value if isinstance(value, (list, tuple)) else ():
            try:
                number = int(item)
            except (TypeError, ValueError):
                continue  # the stock check says "not a valid value"
            if (low is not None and number < low) or (high is not None and number > high):
                raise ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": item},
                )
        return super()._check_values(value)


class DeclareForm(forms.Form):
    """What is known in the first minute; the details page holds the rest."""

    title = forms.CharField(
        max_length=TITLE_MAX_LENGTH,
        help_text="What is broken, for whom. Internal: the status page shows only a "
        "public title, which the communications lead sets.",
        widget=forms.TextInput(attrs={"size": 60, "autofocus": True, "autocomplete": "off"}),
    )
    severity = forms.ModelChoiceField(
        queryset=Severity.objects.all(), widget=forms.RadioSelect, empty_label=None
    )
    incident_type = forms.ModelChoiceField(
        label="Type",
        queryset=IncidentType.objects.all(),
        empty_label="—",
        help_text="Security types start confidential.",
    )
    environment = forms.ChoiceField(choices=Environment.choices, initial=Environment.PRODUCTION)
    services = BoundedModelMultipleChoiceField(
        queryset=Service.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The services affected, if known.",
    )
    summary = forms.CharField(
        required=False,
        max_length=LONG_TEXT,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Optional: what is known so far.",
    )
    commander = forms.ModelChoiceField(
        queryset=active_users(),
        required=False,
        empty_label="Nobody yet (assign later)",
        help_text="Who runs the response; you, unless you choose someone else.",
    )

    def severity_options(self):
        """Each severity's radio button with its guidance, for the template."""
        for radio in self["severity"]:
            severity = radio.data["value"].instance
            yield radio, severity, severity_guidance(severity)


class DeclareViews:
    """Adds the declare page (and its dialog fragment) to the incident admin, and sends
    the stock add page there: one way to declare in the admin."""

    def get_urls(self):
        def wrap(view):
            def wrapper(*args, **kwargs):
                return self.admin_site.admin_view(view)(*args, **kwargs)

            wrapper.model_admin = self
            return update_wrapper(wrapper, view)

        declare = path("declare/", wrap(self.declare_view), name=DECLARE_URL_NAME)
        return [declare, *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        # A related-object popup ("+" beside an incident field) needs the stock page's
        # popup answer; everyone else declares on the declare page, with what the link
        # pre-filled.
        if IS_POPUP_VAR in request.GET or IS_POPUP_VAR in request.POST:
            return super().add_view(request, form_url, extra_context)
        url = reverse(f"admin:{DECLARE_URL_NAME}")
        query = request.GET.urlencode()
        return HttpResponseRedirect(f"{url}?{query}" if query else url)

    def declare_view(self, request):
        """The declare form: on GET blank (or pre-filled from the query string), on POST
        declare through the service and go to the incident, or show the form again."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = DeclareForm(request.POST)
            if form.is_valid():
                try:
                    incident = self._declare(request, form.cleaned_data)
                except DomainError as error:
                    field = FIELD_OF_ERROR.get(error.field, error.field)
                    form.add_error(field if field in form.fields else None, error.message)
                else:
                    self.message_user(
                        request,
                        f"Declared {incident.reference}: {incident.title}",
                        messages.SUCCESS,
                    )
                    url = incident.get_absolute_url()
                    if request.htmx:
                        return HttpResponseClientRedirect(url)
                    return HttpResponseRedirect(url)
        else:
            form = DeclareForm(initial=self._declare_initial(request))
        context = {
            **self.admin_site.each_context(request),
            "title": "Declare an incident",
            "opts": self.opts,
            "form": form,
            "declare_url": reverse(f"admin:{DECLARE_URL_NAME}"),
            "details_note": "Impact, detection and times are on the incident's details page.",
        }
        # The dialog asks for the form alone; the page without JavaScript, for all of it.
        template = (
            "admin/incidents/incident/declare_form.html"
            if request.htmx
            else "admin/incidents/incident/declare.html"
        )
        return TemplateResponse(request, template, context)

    def _declare(self, request, data):
        return services.incident_declare(
            title=data["title"],
            severity=data["severity"],
            incident_type=data["incident_type"],
            environment=data["environment"],
            summary=data.get("summary", ""),
            services=data.get("services") or (),
            commander=data.get("commander"),
            actor=request.user,
            source=Source.ADMIN,
        )

    def _declare_initial(self, request) -> dict:
        # A link may pre-fill the form (?title=…&severity=<id>&services=1,2), as the stock
        # add page allowed; the commander is whoever declares unless the link says.
        initial = {"commander": request.user.pk}
        for name in DeclareForm.base_fields:
            if name == "services":
                values = [part for value in request.GET.getlist(name) for part in value.split(",")]
                if values:
                    initial[name] = [value for value in values if value.strip()]
            elif name in request.GET:
                initial[name] = request.GET[name]
        return initial
