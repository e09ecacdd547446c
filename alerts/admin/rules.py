"""Detection rules (with their conditions and the "try a rule" page) and silences: what
commanders and responders tune. Each save is one service call with the inline's rows."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from incidents.admin import KeepsTypedInput, ServiceBackedAdmin, badge, refusals
from incidents.errors import DomainError
from incidents.queries import false_positive_list

from .. import services
from ..models import (
    LABEL_OPERATORS,
    Alert,
    AlertGroup,
    DetectionRule,
    RuleCondition,
    Silence,
    SilenceMatcher,
)
from .common import condition_rows, note_formset_changes, run_each
from .trial import TryForm, example_payload, try_payload

RULE_FIELDS = (
    "name",
    "description",
    "priority",
    "enabled",
    "source",
    "firing_for",
    "action",
    "severity",
    "incident_type",
    "service_label",
    "environment",
    "title_template",
    "group_by",
    "open_as",
    "monitor_when_resolved",
)


class ConditionFormSet(BaseInlineFormSet):
    """Checks each row as the service will, so a refusal shows beside its row."""

    labels_only = False
    noun = "Condition"

    def clean(self):
        super().clean()
        number = 0
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or form.errors:
                continue
            number += 1
            row = {name: data.get(name, "") for name in ("subject", "key", "operator", "value")}
            if self.labels_only:
                row["subject"] = "label"
            try:
                services.check_condition(row, f"{self.noun} {number}", labels_only=self.labels_only)
            except DomainError as error:
                form.add_error(None, error.message)


def _count_subquery(queryset, on: str):
    return Coalesce(
        Subquery(
            queryset.filter(**{on: OuterRef("pk")})
            .order_by()
            .values(on)
            .annotate(n=Count("pk"))
            .values("n"),
            output_field=IntegerField(),
        ),
        Value(0),
    )


# --- rules -------------------------------------------------------------------------------


class RuleConditionInline(admin.TabularInline):
    model = RuleCondition
    formset = ConditionFormSet
    fields = ("subject", "key", "operator", "value")
    extra = 1
    verbose_name_plural = "Conditions (all must hold; none: every alert matches)"


class DetectionRuleForm(forms.ModelForm):
    class Meta:
        model = DetectionRule
        fields = (*RULE_FIELDS, "services")
        help_texts = {
            "firing_for": "As HH:MM:SS, e.g. 00:05:00 for five minutes. Empty: match at once.",
        }


@admin.register(DetectionRule)
class DetectionRuleAdmin(KeepsTypedInput, ServiceBackedAdmin):
    form = DetectionRuleForm
    inlines = (RuleConditionInline,)
    list_display = (
        "priority",
        "name",
        "conditions_summary",
        "action",
        "severity",
        "incident_type",
        "open_as",
        "enabled",
        "alerts_matched",
        "false_positives",
    )
    list_display_links = ("name",)
    list_filter = ("enabled", "action", "incident_type", "source")
    search_fields = ("name", "description")
    list_select_related = ("severity", "incident_type")
    show_full_result_count = False
    autocomplete_fields = ("services",)
    actions = ("enable", "disable")
    fieldsets = (
        (None, {"fields": ("name", "description", ("priority", "enabled"))}),
        ("Which alerts", {"fields": ("source", "firing_for")}),
        (
            "What a match means",
            {
                "fields": (
                    "action",
                    ("severity", "incident_type"),
                    ("services", "service_label"),
                    ("environment", "open_as"),
                    "monitor_when_resolved",
                )
            },
        ),
        ("Incident title and grouping", {"fields": ("title_template", "group_by")}),
    )

    def get_queryset(self, request):
        declined = false_positive_list().values("pk")
        return (
            super()
            .get_queryset(request)
            .prefetch_related("conditions")
            .annotate(
                matched_count=_count_subquery(Alert.objects.all(), "rule"),
                false_positive_count=_count_subquery(
                    AlertGroup.objects.filter(incident__in=declined), "rule"
                ),
            )
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # A new source's secret is shown on a page of its own, not inside a popup.
        for name in ("source", "severity", "incident_type"):
            if name in form.base_fields:
                widget = form.base_fields[name].widget
                widget.can_add_related = widget.can_change_related = False
                widget.can_delete_related = False
        return form

    # --- columns ----------------------------------------------------------------------

    @admin.display(description="conditions")
    def conditions_summary(self, obj):
        parts = [str(condition) for condition in obj.conditions.all()]
        if obj.firing_for:
            parts.append(f"for {int(obj.firing_for.total_seconds() // 60)} min")
        return " and ".join(parts) or "every alert"

    @admin.display(description="alerts matched", ordering="matched_count")
    def alerts_matched(self, obj):
        if not obj.matched_count:
            return 0
        url = reverse("admin:alerts_alert_changelist") + f"?rule__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.matched_count)

    @admin.display(description="false positives", ordering="false_positive_count")
    def false_positives(self, obj):
        return obj.false_positive_count

    # --- saving through the service -------------------------------------------------------

    def save_model(self, request, obj, form, change):
        pass  # with its conditions, in save_related (the formset is known there)

    def save_related(self, request, form, formsets, change):
        data = form.cleaned_data
        conditions = next(
            (
                condition_rows(formset, "Condition")
                for formset in formsets
                if formset.model is RuleCondition
            ),
            None,
        )
        with refusals():
            rule = services.rule_save(
                rule=form.instance if change else None,
                actor=request.user,
                conditions=conditions,
                services=list(data["services"]) if "services" in data else None,
                **{name: data[name] for name in RULE_FIELDS if name in data},
            )
        form.instance.pk = rule.pk
        for formset in formsets:
            note_formset_changes(formset)

    # --- actions ----------------------------------------------------------------------

    @admin.action(description="Enable", permissions=["change"])
    def enable(self, request, queryset):
        run_each(
            self,
            request,
            queryset.filter(enabled=False),
            "Enabled",
            lambda rule: services.rule_save(rule=rule, enabled=True, actor=request.user),
        )

    @admin.action(description="Disable", permissions=["change"])
    def disable(self, request, queryset):
        run_each(
            self,
            request,
            queryset.filter(enabled=True),
            "Disabled",
            lambda rule: services.rule_save(rule=rule, enabled=False, actor=request.user),
        )

    # --- the "try a rule" page ------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view(self.try_view)
        return [path("try/", view, name="alerts_detectionrule_try"), *super().get_urls()]

    def try_view(self, request):
        """Judge a pasted payload against today's rules and silences; change nothing."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = TryForm(request.POST)
        else:
            kind = request.GET.get("kind", "alertmanager")
            form = TryForm(initial={"kind": kind, "payload": example_payload(kind)})
        trial = None
        if form.is_bound and form.is_valid():
            trial = try_payload(
                request.user,
                kind=form.cleaned_data["kind"],
                text=form.cleaned_data["payload"],
                source=form.cleaned_data["source"],
            )
            if trial.error:
                form.add_error("payload", trial.error)
        context = {
            **self.admin_site.each_context(request),
            "title": "Try the rules on a payload",
            "opts": self.opts,
            "form": form,
            "trial": trial,
            "changelist_url": reverse("admin:alerts_detectionrule_changelist"),
        }
        return TemplateResponse(request, "admin/alerts/detectionrule/try.html", context)


# --- silences ------------------------------------------------------------------------------


class MatcherFormSet(ConditionFormSet):
    labels_only = True
    noun = "Matcher"


class SilenceMatcherForm(forms.ModelForm):
    # With an initial value, an extra row left empty is unchanged (not "key required").
    operator = forms.ChoiceField(
        choices=[(op.value, op.label) for op in LABEL_OPERATORS], initial=LABEL_OPERATORS[0]
    )

    class Meta:
        model = SilenceMatcher
        fields = ("key", "operator", "value")


class SilenceMatcherInline(admin.TabularInline):
    model = SilenceMatcher
    form = SilenceMatcherForm
    formset = MatcherFormSet
    fields = ("key", "operator", "value")
    extra = 1
    verbose_name_plural = "Label matchers (all must hold)"


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("active", "Active now"), ("upcoming", "Upcoming"), ("ended", "Ended"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(starts_at__lte=now, ends_at__gt=now)
        if self.value() == "upcoming":
            return queryset.filter(starts_at__gt=now)
        if self.value() == "ended":
            return queryset.filter(ends_at__lte=now)
        return queryset


class SilenceForm(forms.ModelForm):
    class Meta:
        model = Silence
        fields = ("comment", "starts_at", "ends_at", "services")
        help_texts = {
            "services": "Alerts for these services are held back (with the matchers: alerts "
            "for these services that match them).",
        }


@admin.register(Silence)
class SilenceAdmin(KeepsTypedInput, ServiceBackedAdmin):
    form = SilenceForm
    inlines = (SilenceMatcherInline,)
    list_display = (
        "comment",
        "state",
        "starts_at",
        "ends_at",
        "what",
        "alerts_held",
        "created_by",
    )
    list_filter = (StateFilter,)
    search_fields = ("comment",)
    list_select_related = ("created_by",)
    show_full_result_count = False
    autocomplete_fields = ("services",)
    actions = ("expire_now",)
    fieldsets = (
        (None, {"fields": ("comment", ("starts_at", "ends_at"), "services")}),
        (None, {"fields": ("state", "created_by", "created_at")}),
    )
    readonly_fields = ("state", "created_by", "created_at")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related("services", "matchers")
            .annotate(held_count=_count_subquery(Alert.objects.all(), "silenced_by"))
        )

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj else self.fieldsets[:1]

    @admin.display(description="state")
    def state(self, obj):
        now = timezone.now()
        if obj.pk is None:
            return "—"
        if obj.starts_at > now:
            return badge("upcoming", "#2563eb")
        if obj.ends_at > now:
            return badge("active", "#7c3aed")
        return badge("ended", "#6b7280")

    @admin.display(description="silences")
    def what(self, obj):
        parts = [service.slug for service in obj.services.all()]
        parts += [str(matcher) for matcher in obj.matchers.all()]
        return ", ".join(parts) or "—"

    @admin.display(description="alerts held", ordering="held_count")
    def alerts_held(self, obj):
        if not obj.held_count:
            return 0
        url = reverse("admin:alerts_alert_changelist") + f"?silenced_by__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.held_count)

    def save_model(self, request, obj, form, change):
        pass  # with its matchers, in save_related

    def save_related(self, request, form, formsets, change):
        data = form.cleaned_data
        matchers = next(
            (
                condition_rows(formset, "Matcher", labels_only=True)
                for formset in formsets
                if formset.model is SilenceMatcher
            ),
            [],
        )
        with refusals():
            silence = services.silence_save(
                silence=form.instance if change else None,
                starts_at=data.get("starts_at"),
                ends_at=data.get("ends_at"),
                comment=data.get("comment", ""),
                services=list(data.get("services") or ()),
                matchers=matchers,
                actor=request.user,
            )
        form.instance.pk = silence.pk
        for formset in formsets:
            note_formset_changes(formset)

    @admin.action(description="Expire now", permissions=["change"])
    def expire_now(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            "Expired",
            lambda silence: services.silence_expire(silence=silence, actor=request.user),
        )
