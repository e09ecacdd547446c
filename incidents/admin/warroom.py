"""The war-room page of an incident: what it is and where it stands at a glance, the
moves the lifecycle and the guards allow, small forms that each call one service, and
the timeline as a feed that refreshes itself.

Every form posts to its own URL. A success redirects back to the page (PRG); a refusal,
of the form or of the service, renders the same page again with what was typed in that
form and the error beside it: nothing typed is lost (DESIGN.md).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import update_wrapper
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.text import slugify

from .. import extensions, notifications, services
from ..errors import DomainError
from ..models import (
    Audience,
    Incident,
    MessageTemplate,
    Role,
    RoleAssignment,
    Severity,
    Source,
    Status,
    TimelineEvent,
)
from ..queries import active_users
from .base import STATUS_COLORS
from .timers import acknowledgement_timer, next_update_timer

# The timeline shows this many events a page: some incidents have thousands.
TIMELINE_PAGE = 200
# A back-dated entry says when it was recorded once the gap is longer than this.
RECORDED_LATER = timedelta(minutes=1)

# Each core kind's symbol (text symbols every font has, not emoji) and colour class
# (warroom.css); kinds other apps register get the neutral one and their own label.
KIND_SYMBOLS = {
    TimelineEvent.Kind.DECLARED: "⚑",
    TimelineEvent.Kind.STATUS_CHANGE: "➜",
    TimelineEvent.Kind.SEVERITY_CHANGE: "⚠",
    TimelineEvent.Kind.ROLE_CHANGE: "✦",
    TimelineEvent.Kind.DETAILS_CHANGE: "✎",
    TimelineEvent.Kind.NOTE: "✍",
    TimelineEvent.Kind.ACTION: "⚙",
    TimelineEvent.Kind.DECISION: "⚖",
    TimelineEvent.Kind.COMMUNICATION: "✉",
    TimelineEvent.Kind.ALERT: "⚡",
    TimelineEvent.Kind.ESCALATION: "⇑",
    TimelineEvent.Kind.CHECKLIST: "☑",
}
OTHER_SYMBOL = "•"

DATETIME_INPUT = forms.DateTimeInput(format="%Y-%m-%dT%H:%M", attrs={"type": "datetime-local"})


def _zone_help(text: str) -> str:
    return f"{text} Time zone: {timezone.get_current_timezone_name()}."


# --- the forms, each for one service ---------------------------------------------------


class NoteForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[(kind.value, kind.label) for kind in TimelineEvent.MANUAL_KINDS],
        initial=TimelineEvent.Kind.NOTE,
    )
    summary = forms.CharField(
        label="Text", widget=forms.Textarea(attrs={"rows": 3}), max_length=services.NOTE_TEXT
    )
    occurred_at = forms.DateTimeField(
        label="When", required=False, widget=DATETIME_INPUT, help_text="Empty: now."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["occurred_at"].help_text = _zone_help("Empty: now.")


class UpdateForm(forms.Form):
    audience = forms.ChoiceField(choices=Audience.choices, initial=Audience.INTERNAL)
    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.none(),
        required=False,
        empty_label="— write it yourself —",
        help_text="Use template fills the text from it; edit before posting.",
    )
    summary = forms.CharField(
        label="Text", widget=forms.Textarea(attrs={"rows": 4}), max_length=services.NOTE_TEXT
    )
    next_update_at = forms.DateTimeField(
        label="Next update by", required=False, widget=DATETIME_INPUT
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = MessageTemplate.objects.order_by("name")
        self.fields["next_update_at"].help_text = _zone_help(
            "Empty: the severity's update cadence."
        )


class PublicTitleForm(forms.Form):
    public_title = forms.CharField(
        label="Public title",
        required=False,
        max_length=Incident._meta.get_field("public_title").max_length,
        help_text="What the status page calls it; empty keeps it off the page until a "
        "public update is posted. Never the internal title.",
    )


class SeverityForm(forms.Form):
    severity = forms.ModelChoiceField(queryset=Severity.objects.none(), empty_label=None)
    reason = forms.CharField(max_length=services.NOTE_TEXT, help_text="Goes on the timeline.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["severity"].queryset = Severity.objects.order_by("rank")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    user = forms.ModelChoiceField(queryset=active_users().none(), label="Person")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = active_users()


class MoveForm(forms.Form):
    to_status = forms.ChoiceField(choices=Status.choices, widget=forms.HiddenInput)
    note = forms.CharField(
        required=False,
        max_length=services.NOTE_TEXT,
        help_text="Optional; goes on the timeline with the move.",
    )


class AcknowledgeForm(forms.Form):
    pass


class AcceptForm(forms.Form):
    severity = forms.ModelChoiceField(
        queryset=Severity.objects.none(), required=False, empty_label="keep its severity"
    )
    reason = forms.CharField(required=False, max_length=services.NOTE_TEXT, label="Note")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["severity"].queryset = Severity.objects.order_by("rank")


class DeclineForm(forms.Form):
    reason = forms.CharField(
        label="Why is it a false positive?",
        max_length=services.NOTE_TEXT,
        error_messages={"required": services.DECLINE_REASON_REQUIRED},
    )


def _note(request, incident, data) -> str:
    event = services.timeline_add_entry(
        incident=incident,
        kind=data["kind"],
        summary=data["summary"],
        occurred_at=data.get("occurred_at"),
        actor=request.user,
        source=Source.ADMIN,
    )
    return f"Added the {event.get_kind_display().lower()} to the timeline."


def _update(request, incident, data) -> str:
    update = services.status_update_post(
        incident=incident,
        audience=data["audience"],
        summary=data["summary"],
        next_update_at=data.get("next_update_at"),
        actor=request.user,
        source=Source.ADMIN,
    )
    return f"Posted {update.get_audience_display().lower()} update #{update.number}."


def _public_title(request, incident, data) -> str:
    services.incident_update_details(
        incident=incident,
        public_title=data["public_title"],
        actor=request.user,
        source=Source.ADMIN,
    )
    return "Saved the public title." if data["public_title"] else "Cleared the public title."


def _severity(request, incident, data) -> str:
    services.incident_change_severity(
        incident=incident,
        severity=data["severity"],
        reason=data["reason"],
        actor=request.user,
        source=Source.ADMIN,
    )
    return f"Severity is now {data['severity'].key}."


def _role(request, incident, data) -> str:
    assignment = services.role_assign(
        incident=incident,
        role=data["role"],
        user=data["user"],
        actor=request.user,
        source=Source.ADMIN,
    )
    return f"Gave {assignment.user.get_username()} the role of {assignment.get_role_display()}."


def _move(request, incident, data) -> str:
    moved = services.incident_transition(
        incident=incident,
        to_status=data["to_status"],
        note=data.get("note", ""),
        actor=request.user,
        source=Source.ADMIN,
    )
    return f"Moved to {moved.get_status_display().lower()}."


def _acknowledge(request, incident, data) -> str:
    services.incident_acknowledge(incident=incident, actor=request.user, source=Source.ADMIN)
    return f"Acknowledged {incident.reference}."


def _accept(request, incident, data) -> str:
    services.incident_accept(
        incident=incident,
        severity=data.get("severity"),
        reason=data.get("reason", ""),
        actor=request.user,
        source=Source.ADMIN,
    )
    return f"Accepted {incident.reference} from triage: it is declared."


def _decline(request, incident, data) -> str:
    services.incident_decline(
        incident=incident, reason=data["reason"], actor=request.user, source=Source.ADMIN
    )
    return f"Declined {incident.reference} as a false positive."


@dataclass(frozen=True)
class Action:
    """One form of the page: its class and the service call it makes."""

    form: type[forms.Form]
    run: object  # run(request, incident, cleaned_data) -> the success message


ACTIONS: dict[str, Action] = {
    "note": Action(NoteForm, _note),
    "update": Action(UpdateForm, _update),
    "public-title": Action(PublicTitleForm, _public_title),
    "severity": Action(SeverityForm, _severity),
    "role": Action(RoleForm, _role),
    "move": Action(MoveForm, _move),
    "acknowledge": Action(AcknowledgeForm, _acknowledge),
    "accept": Action(AcceptForm, _accept),
    "decline": Action(DeclineForm, _decline),
}


def _prefix(name: str) -> str:
    return name.replace("-", "_")


# --- the timeline feed -------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEntry:
    event: TimelineEvent
    symbol: str
    css: str
    label: str
    who: str
    recorded_later: datetime | None


def feed_entries(events) -> list[FeedEntry]:
    """Return the events as the feed shows them: symbol, colour, label, who, and when it
    was recorded if that was well after it happened (a scribe catching up)."""
    labels = dict(extensions.timeline_kind_choices())
    sources = dict(Source.choices)
    entries = []
    for event in events:
        known = event.kind in KIND_SYMBOLS
        if event.author is not None:
            who = event.author.get_username()
        else:
            who = f"system ({sources.get(event.source, event.source)})"
        late = event.created_at - event.occurred_at > RECORDED_LATER
        entries.append(
            FeedEntry(
                event=event,
                symbol=KIND_SYMBOLS.get(event.kind, OTHER_SYMBOL),
                css=f"wr-kind-{slugify(event.kind)}" if known else "wr-kind-other",
                label=labels.get(event.kind, event.kind),
                who=who,
                recorded_later=event.created_at if late else None,
            )
        )
    return entries


# Past any real timeline; bounds the OFFSET a hostile ?page= asks the database for.
MAX_PAGE = 100_000


def _positive_int(value, default: int = 1, most: int = MAX_PAGE) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return min(number, most) if number >= 1 else default


class WarRoomViews:
    """Adds the war-room page (and its forms and timeline partial) to the incident admin."""

    def get_urls(self):
        def wrap(view):
            def wrapper(*args, **kwargs):
                return self.admin_site.admin_view(view)(*args, **kwargs)

            # What Django's own admin URLs carry: the admin that serves the view.
            wrapper.model_admin = self
            return update_wrapper(wrapper, view)

        def action_view(name):
            def view(request, object_id):
                return self.warroom_action_view(request, object_id, name)

            view.__name__ = f"warroom_{_prefix(name)}_view"
            return view

        urls = [
            path(
                "<path:object_id>/war-room/",
                wrap(self.warroom_view),
                name="incidents_incident_warroom",
            ),
            path(
                "<path:object_id>/war-room/timeline/",
                wrap(self.warroom_timeline_view),
                name="incidents_incident_warroom_timeline",
            ),
            *(
                path(
                    f"<path:object_id>/war-room/{name}/",
                    wrap(action_view(name)),
                    name=f"incidents_incident_warroom_{_prefix(name)}",
                )
                for name in ACTIONS
            ),
        ]
        return [*urls, *super().get_urls()]

    # --- views ----------------------------------------------------------------------

    def warroom_view(self, request, object_id):
        """The page: header, moves, forms, timeline."""
        incident = self._warroom_incident(request, object_id)
        return self._render_warroom(request, incident)

    def warroom_timeline_view(self, request, object_id):
        """The timeline alone, for the page to refresh itself (htmx) or to link to."""
        incident = self._warroom_incident(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            **self._timeline_context(request, incident),
            "opts": self.opts,
            "incident": incident,
            "title": f"{incident.reference} timeline",
        }
        template = (
            "admin/incidents/incident/warroom_timeline.html"
            if request.htmx
            else "admin/incidents/incident/warroom_timeline_page.html"
        )
        return TemplateResponse(request, template, context)

    def warroom_action_view(self, request, object_id, name):
        """Run one form's service; on success back to the page, else the page again
        with what was typed."""
        incident = self._warroom_incident(request, object_id)
        page = self._warroom_url(request, incident)
        if request.method != "POST":
            return HttpResponseRedirect(page)
        if not self.has_change_permission(request, incident):
            raise PermissionDenied
        action = ACTIONS[name]
        if name == "update" and "use_template" in request.POST:
            return self._use_template(request, incident)
        form = action.form(request.POST, prefix=_prefix(name))
        if form.is_valid():
            try:
                message = action.run(request, incident, form.cleaned_data)
            except DomainError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(page)
        # The incident again: a refused service rolled back, but the row read above may
        # be stale beside what the form says.
        incident = self._warroom_incident(request, object_id)
        return self._render_warroom(request, incident, bound={name: form})

    def _use_template(self, request, incident):
        """The update form again, its text filled from the chosen template and the rest
        as typed (works without JavaScript)."""
        prefix = _prefix("update")
        data = request.POST.copy()
        form = UpdateForm(data, prefix=prefix)
        # Through the field: a hostile value ("abc", a NUL) is no template, not a 500.
        try:
            template = form.fields["template"].clean(data.get(f"{prefix}-template"))
        except ValidationError:
            template = None
        if template is None:
            form.add_error("template", "Choose a template to fill the text from.")
        else:
            next_update_at = form.fields["next_update_at"].widget.value_from_datadict(
                data, None, f"{prefix}-next_update_at"
            )
            try:
                next_update_at = form.fields["next_update_at"].clean(next_update_at)
            except ValidationError:
                next_update_at = None
            rendered = notifications.render_template(
                template.slug, incident, next_update_at=next_update_at
            )
            data[f"{prefix}-summary"] = rendered[1] if rendered else ""
            if template.audience in Audience.values:
                data[f"{prefix}-audience"] = template.audience
            form = UpdateForm(data, prefix=prefix)
        return self._render_warroom(request, incident, bound={"update": form})

    # --- building the page ------------------------------------------------------------

    def _warroom_incident(self, request, object_id) -> Incident:
        # Through the admin's queryset: confidential incidents the user may not see are
        # not there (a 404, as on the change page).
        queryset = self.get_queryset(request).select_related(
            "severity", "incident_type", "declared_by"
        )
        try:
            incident = queryset.get(pk=Incident._meta.pk.to_python(unquote(object_id)))
        except (Incident.DoesNotExist, ValidationError, ValueError):
            incident = None
        if incident is None:
            raise Http404("No such incident, or not visible to you.")
        if not self.has_view_or_change_permission(request, incident):
            raise PermissionDenied
        return incident

    def _warroom_url(self, request, incident, **params) -> str:
        url = reverse("admin:incidents_incident_warroom", args=[incident.pk])
        order = params.pop("order", request.GET.get("order"))
        query = {"order": "oldest"} if order == "oldest" else {}
        query.update({key: value for key, value in params.items() if value})
        return f"{url}?{urlencode(query)}" if query else url

    def _timeline_context(self, request, incident) -> dict:
        oldest_first = request.GET.get("order") == "oldest"
        page = _positive_int(request.GET.get("page"))
        ordering = ("occurred_at", "id") if oldest_first else ("-occurred_at", "-id")
        start = (page - 1) * TIMELINE_PAGE
        # One query a page, one row more than shown to know whether more follow; the
        # (incident, occurred_at) index serves the order.
        events = list(
            incident.timeline.select_related("author").order_by(*ordering)[
                start : start + TIMELINE_PAGE + 1
            ]
        )
        more = len(events) > TIMELINE_PAGE
        order = "oldest" if oldest_first else None
        timeline_url = reverse("admin:incidents_incident_warroom_timeline", args=[incident.pk])

        def page_url(number, order=order):
            return self._warroom_url(request, incident, order=order, page=number)

        return {
            "entries": feed_entries(events[:TIMELINE_PAGE]),
            "oldest_first": oldest_first,
            "timeline_page": page,
            "next_page_url": page_url(page + 1) if more else "",
            "previous_page_url": page_url(page - 1 if page > 2 else None) if page > 1 else "",
            "newest_first_url": page_url(None, order=None),
            "oldest_first_url": page_url(None, order="oldest"),
            "refresh_url": page_url(page if page > 1 else None),
            "partial_url": (
                f"{timeline_url}?{urlencode({'order': 'oldest'})}" if oldest_first else timeline_url
            ),
            # Refreshing itself only where new events appear: the newest page first.
            "live": page == 1 and not oldest_first,
            "zone": timezone.get_current_timezone_name(),
        }

    def _render_warroom(self, request, incident, bound=None):
        bound = bound or {}
        may_change = self.has_change_permission(request, incident)
        forms_ = {}
        if may_change:
            initial = {
                "public-title": {"public_title": incident.public_title},
                "severity": {"severity": incident.severity_id},
            }
            for name, action in ACTIONS.items():
                forms_[_prefix(name)] = bound.get(name) or action.form(
                    prefix=_prefix(name), initial=initial.get(name)
                )
        options = (
            services.transition_options(incident=incident, actor=request.user)
            if may_change and incident.status != Status.TRIAGE
            else []
        )
        holders = list(
            RoleAssignment.objects.filter(incident=incident, relieved_at__isnull=True)
            .select_related("user")
            .order_by("role", "assigned_at")
        )
        roles = [
            {
                "assignment": assignment,
                "stand_down_url": reverse(
                    "admin:incidents_incident_stand_down", args=[incident.pk, assignment.pk]
                ),
            }
            for assignment in holders
        ]
        now = timezone.now()
        panels = (
            (panel.title, panel.render(request, incident)) for panel in self.contributions.panels
        )
        order = request.GET.get("order")
        action_urls = {
            _prefix(name): reverse(
                f"admin:incidents_incident_warroom_{_prefix(name)}", args=[incident.pk]
            )
            + ("?order=oldest" if order == "oldest" else "")
            for name in ACTIONS
        }
        context = {
            **self.admin_site.each_context(request),
            **self._timeline_context(request, incident),
            "title": f"{incident.reference} · {incident.title}",
            "subtitle": None,
            "opts": self.opts,
            "incident": incident,
            "status_color": STATUS_COLORS.get(incident.status, "#6b7280"),
            "services_list": list(incident.services.all()),
            "timers": [acknowledgement_timer(incident, now), next_update_timer(incident, now)],
            "roles": roles,
            "options": options,
            "forms": forms_,
            "action_urls": action_urls,
            "may_change": may_change,
            "in_triage": incident.status == Status.TRIAGE,
            "may_acknowledge": incident.acknowledged_at is None
            and incident.status == Status.DECLARED,
            "refused": next(iter(bound), None),
            "change_url": reverse("admin:incidents_incident_change", args=[incident.pk]),
            "history_url": reverse("admin:incidents_incident_history", args=[incident.pk]),
            "contributed_panels": [(title, html) for title, html in panels if html],
            "recent_updates": list(
                incident.updates.select_related("author").order_by("-number")[:3]
            ),
        }
        return TemplateResponse(request, "admin/incidents/incident/warroom.html", context)
