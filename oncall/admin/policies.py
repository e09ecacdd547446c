"""Escalation policies, activation and stuck rules in the admin; and what the incident
admin gains: a warning over its list when activation would page nobody, a "Paging" panel
on each incident, and a page to page a level or a person by hand."""

from django import forms
from django.contrib import admin, messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from incidents.admin import GuardedHistoryAdmin, Panel, contribute
from incidents.admin.contributions import contribute_dashboard
from incidents.errors import DomainError
from incidents.models import Incident, Source
from incidents.queries import active_users, incident_list_visible_to
from incidents.services import NOTE_TEXT

from ..models import ActivationRule, EscalationPolicy, Page, PolicyLevel, StuckRule
from ..queries import activation_gaps
from ..services.activation import teams_of
from ..services.escalation import page_manually, policy_for
from ..vocabulary import Kind
from . import dashboard

# --- the policy tables ----------------------------------------------------------------


class PolicyLevelInline(admin.StackedInline):
    model = PolicyLevel
    extra = 0
    fields = (
        ("number", "name", "delay"),
        "incident_team",
        "users",
        "rotations",
        "teams",
        "targets",
    )
    filter_horizontal = ("users", "rotations", "teams", "targets")


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(GuardedHistoryAdmin):
    list_display = ("name", "is_default", "level_count")
    # Said here: the Count annotation's GROUP BY drops the model's default ordering.
    ordering = ("name",)
    search_fields = ("name",)
    inlines = [PolicyLevelInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(levels_count=Count("levels"))

    @admin.display(description="levels", ordering="levels_count")
    def level_count(self, policy):
        return policy.levels_count

    def get_urls(self):
        return [
            path(
                "page-incident/<int:incident_id>/",
                self.admin_site.admin_view(page_incident_view),
                name="oncall_page_incident",
            ),
            *super().get_urls(),
        ]


@admin.register(ActivationRule)
class ActivationRuleAdmin(GuardedHistoryAdmin):
    list_display = ("severity", "role", "types")
    list_filter = ("severity", "role")
    list_select_related = ("severity",)
    filter_horizontal = ("incident_types",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("incident_types")

    @admin.display(description="incident types")
    def types(self, rule):
        return ", ".join(kind.name for kind in rule.incident_types.all()) or "every type"


@admin.register(StuckRule)
class StuckRuleAdmin(GuardedHistoryAdmin):
    list_display = ("severity", "no_update_for", "not_mitigated_in", "level")
    list_select_related = ("severity",)


# --- over the incident list: what would page nobody -----------------------------------


GAPS_CACHE_KEY = "sitrep:oncall:activation-gaps"


def gaps_banner(request):
    """Warn those who run incidents that declaring one now would page nobody."""
    # Read for every view of the incident list: worked out once a minute, so the list
    # costs the same few queries as without it (rotas change by the hour, not the second).
    gaps = cache.get_or_set(GAPS_CACHE_KEY, lambda: [str(gap) for gap in activation_gaps()], 60)
    if not gaps:
        return None
    return format_html(
        "Paging gaps: declaring an incident now may page nobody.<ul>{}</ul>",
        format_html_join("", "<li>{}</li>", ((gap,) for gap in gaps)),
    )


# --- on the incident page -------------------------------------------------------------


def _state(page: Page) -> str:
    if page.acknowledged_at:
        return f"acknowledged {page.acknowledged_at:%Y-%m-%d %H:%M} ({page.acknowledged_via})"
    if page.stopped_at:
        return f"stopped {page.stopped_at:%Y-%m-%d %H:%M}: {page.stopped_because}"
    return f"paging: step {page.steps_sent} of {len(page.plan)} sent"


def paging_panel(request, incident):
    """The incident's pages (who, why, on which channels, answered or not), its "paged
    nobody" warnings, and the way to page someone now."""
    pages = list(Page.objects.filter(incident=incident).select_related("user").order_by("pk"))
    warnings = list(
        incident.timeline.filter(kind=Kind.PAGING, details__paged_nobody=True)
        .order_by("occurred_at")
        .values_list("occurred_at", "summary")
    )
    link = ""
    if request.user.has_perm("incidents.change_incident") and incident.is_open:
        url = reverse("admin:oncall_page_incident", args=[incident.pk])
        link = format_html('<p><a class="button" href="{}">Page someone</a></p>', url)
    if not pages and not warnings and not link:
        return None
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                page.user.get_username(),
                page.get_reason_display() + (f" L{page.level}" if page.level else ""),
                page.message,
                ", ".join(sorted({step["channel"] for step in page.plan})),
                _state(page),
            )
            for page in pages
        ),
    )
    table = (
        format_html(
            "<table><thead><tr><th>Paged</th><th>Reason</th><th>Why</th><th>Channels</th>"
            "<th>State</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
        if pages
        else mark_safe("<p>Nobody has been paged for this incident.</p>")
    )
    problems = format_html_join(
        "",
        '<li class="warning">{} — {}</li>',
        ((f"{when:%Y-%m-%d %H:%M}", summary) for when, summary in warnings),
    )
    if warnings:
        problems = format_html('<ul class="paging-problems">{}</ul>', problems)
    return format_html("{}{}{}", link, problems, table)


class PageSomeoneForm(forms.Form):
    level = forms.TypedChoiceField(
        coerce=int, empty_value=None, required=False, help_text="Page this level now…"
    )
    user = forms.ModelChoiceField(
        queryset=active_users(), required=False, label="Person", help_text="…or this person."
    )
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=NOTE_TEXT
    )

    def __init__(self, *args, levels=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["level"].choices = [("", "—")] + [(lvl.number, str(lvl)) for lvl in levels]
        self.fields["user"].queryset = active_users()

    def clean(self):
        data = super().clean()
        if not self.errors and (data.get("level") is None) == (data.get("user") is None):
            raise forms.ValidationError("Choose a level or a person to page (one of the two).")
        return data


def page_incident_view(request, incident_id):
    """Page a level of the incident's policy, or a person, now (page_manually)."""
    incident = incident_list_visible_to(request.user).filter(pk=incident_id).first()
    if incident is None:
        raise Http404("No such incident, or not visible to you.")
    if not request.user.has_perm("incidents.change_incident"):
        raise PermissionDenied
    policy = policy_for(incident, teams=teams_of(incident))
    levels = list(policy.levels.all()) if policy else []
    form = PageSomeoneForm(request.POST or None, levels=levels)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            outcome = page_manually(
                incident=incident,
                level=data["level"],
                user=data["user"],
                message=data["message"],
                actor=request.user,
                source=Source.ADMIN,
            )
        except DomainError as error:
            # Shown beside what was typed, which stays in the form.
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            paged = ", ".join(page.user.get_username() for page in outcome.pages) or "nobody"
            text = f"Paged {paged} for {incident.reference}."
            if outcome.unreachable:
                names = ", ".join(user.get_username() for user in outcome.unreachable)
                text += f" Cannot reach {names}: no verified contact method or email."
            if outcome.already_paged:
                names = ", ".join(user.get_username() for user in outcome.already_paged)
                text += f" Already being paged: {names}."
            level = messages.SUCCESS if outcome.pages or outcome.targets else messages.WARNING
            messages.add_message(request, level, text)
            return HttpResponseRedirect(incident.get_absolute_url())
    context = {
        **admin.site.each_context(request),
        "title": f"Page someone for {incident.reference}",
        "opts": Incident._meta,
        "incident": incident,
        "incident_url": incident.get_absolute_url(),
        "policy": policy,
        "form": form,
    }
    return TemplateResponse(request, "admin/oncall/page_incident.html", context)


contribute(Incident, panels=[Panel("Paging", paging_panel)], banners=[gaps_banner])
contribute_dashboard(dashboard.PAGES_PANEL, dashboard.ON_CALL_PANEL)
