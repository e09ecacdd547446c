"""Teams, rotations (with their members' order) and overrides; this week's roster; and
each person's calendar feed. Saves go through oncall.services.schedules."""

from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from incidents.admin import GuardedHistoryAdmin, KeepsTypedInput, refusals
from incidents.errors import DomainError
from incidents.models import Source

from ..feeds import feed_url, rotation_feed_url
from ..models import OnCallRole, Override, Rotation, RotationMember, Team
from ..schedule import members_prefetch, on_call, shifts_for
from ..services import schedules as services

ROSTER_DAYS = 7


class ScheduleAdmin(KeepsTypedInput, GuardedHistoryAdmin):
    """Saves and deletes through a service (save_related has the form and formsets)."""

    def save_model(self, request, obj, form, change):
        pass  # in save_related, where the many-to-many fields and inlines are known

    def delete_queryset(self, request, queryset):
        # One by one through delete_model, so each goes through the service with history.
        for obj in queryset:
            self.delete_model(request, obj)


def note_formset_changes(formset) -> None:
    """Let the change message read what a formset changed, though a service saved its
    rows (commit=False: this writes nothing)."""
    formset.save(commit=False)


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


def _local(when: datetime) -> str:
    return timezone.localtime(when).strftime("%a %d %b %H:%M")


def _on_call_list(answers):
    if not answers:
        return "Nobody."
    return format_html(
        "<ul>{}</ul>",
        format_html_join(
            "",
            "<li><b>{}</b> — {} ({}){} · since {}{}</li>",
            (
                (
                    _person(answer.user),
                    OnCallRole(answer.role).label,
                    answer.rotation.name,
                    " — override" if answer.override else "",
                    _local(answer.starts_at),
                    f", until {_local(answer.ends_at)}" if answer.ends_at else "",
                )
                for answer in answers
            ),
        ),
    )


# --- teams ----------------------------------------------------------------------------------


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = (
            "name",
            "slug",
            "description",
            "members",
            "services",
            "escalation_policy",
            "is_default",
        )

    def clean_is_default(self):
        # The service's own check, here so the refusal reads better than the constraint's.
        is_default = self.cleaned_data.get("is_default")
        probe = Team(pk=self.instance.pk, is_default=is_default)
        try:
            services.check_default_team(probe)
        except DomainError as error:
            raise forms.ValidationError(error.message) from error
        return is_default


@admin.register(Team)
class TeamAdmin(ScheduleAdmin):
    form = TeamForm
    list_display = ("name", "slug", "is_default", "escalation_policy", "people", "rotation_count")
    list_select_related = ("escalation_policy",)
    # Said here: the Count annotation's GROUP BY drops the model's default ordering.
    ordering = ("name",)
    list_filter = ("is_default",)
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members", "services")
    readonly_fields = ("on_call_now",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "description")}),
        ("People and services", {"fields": ("members", "services")}),
        ("Paging", {"fields": ("escalation_policy", "is_default", "on_call_now")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Count("members", distinct=True),
                rotations_count=Count("rotations", distinct=True),
            )
        )

    @admin.display(description="Members", ordering="member_count")
    def people(self, obj):
        return obj.member_count

    @admin.display(description="Rotations", ordering="rotations_count")
    def rotation_count(self, obj):
        return obj.rotations_count

    @admin.display(description="On call now")
    def on_call_now(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return _on_call_list(on_call(teams=[obj]))

    def save_related(self, request, form, formsets, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in services.TEAM_FIELDS if name in data}
        with refusals():
            if change:
                team = services.team_update(
                    team=form.instance,
                    members=data.get("members"),
                    services=data.get("services"),
                    actor=request.user,
                    source=Source.ADMIN,
                    **fields,
                )
            else:
                team = services.team_create(
                    members=data.get("members", ()),
                    services=data.get("services", ()),
                    actor=request.user,
                    source=Source.ADMIN,
                    **fields,
                )
        form.instance.pk = team.pk

    def delete_model(self, request, obj):
        services.team_delete(team=obj, actor=request.user, source=Source.ADMIN)

    def changelist_view(self, request, extra_context=None):
        extra = {
            "roster_url": reverse("admin:oncall_team_roster"),
            "calendar_url": reverse("admin:oncall_my_calendar"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    # --- the roster and the calendar feed -------------------------------------------------

    def get_urls(self):
        roster = self.admin_site.admin_view(self.roster_view)
        calendar = self.admin_site.admin_view(self.calendar_view)
        return [
            path("roster/", roster, name="oncall_team_roster"),
            path("my-calendar/", calendar, name="oncall_my_calendar"),
            *super().get_urls(),
        ]

    def roster_view(self, request):
        """Show per team who is on call each day of a week (from ?start=, or today)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        first, error = today, None
        if request.GET.get("start"):
            try:
                first = date.fromisoformat(request.GET["start"])
            except ValueError:
                error = "Give the start as a date, YYYY-MM-DD; showing this week instead."
            else:
                if not date(1900, 1, 1) <= first <= date(9000, 1, 1):
                    first, error = today, "That date is out of range; showing this week."
        teams = list(Team.objects.order_by("name"))
        chosen = request.GET.get("team")
        if chosen:
            teams = [team for team in teams if team.slug == chosen]
        context = {
            **self.admin_site.each_context(request),
            "title": "This week's roster",
            "opts": self.opts,
            "error": error,
            "days": [first + timedelta(days=offset) for offset in range(ROSTER_DAYS)],
            "previous": (first - timedelta(days=ROSTER_DAYS)).isoformat(),
            "next": (first + timedelta(days=ROSTER_DAYS)).isoformat(),
            "chosen": chosen or "",
            "all_teams": Team.objects.order_by("name").values_list("slug", "name"),
            "teams": roster(teams, first),
            "calendar_url": reverse("admin:oncall_my_calendar"),
            "changelist_url": reverse("admin:oncall_team_changelist"),
            "zone": timezone.get_current_timezone_name(),
        }
        return TemplateResponse(request, "admin/oncall/team/roster.html", context)

    def calendar_view(self, request):
        """Show the person their secret feed URLs; on POST give them a new one."""
        if request.method == "POST":
            services.feed_rotate(user=request.user, actor=request.user, source=Source.ADMIN)
            self.message_user(
                request,
                "Your calendar has a new URL; the old one no longer works.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(request.path)
        rotations = (
            Rotation.objects.filter(members__user=request.user)
            .select_related("team")
            .distinct()
            .order_by("team__name", "name")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "My on-call calendar",
            "opts": self.opts,
            "feed_url": feed_url(request.user, request),
            "rotations": [
                (rotation, rotation_feed_url(request.user, rotation, request))
                for rotation in rotations
            ],
            "roster_url": reverse("admin:oncall_team_roster"),
        }
        response = TemplateResponse(request, "admin/oncall/team/my_calendar.html", context)
        # The page shows a secret URL: no cache may keep it.
        response["Cache-Control"] = "private, no-store"
        return response


def roster(teams: list[Team], first: date) -> list[dict]:
    """Return for each team its rotations' rows, one cell a day from `first` (local
    days of the current time zone): the stretches of who is on call, cut to the day.
    Three queries for any number of teams: rotations, members, overrides."""
    zone = timezone.get_current_timezone()
    bounds = [
        datetime.combine(first + timedelta(days=offset), time()).replace(tzinfo=zone)
        for offset in range(ROSTER_DAYS + 1)
    ]
    rotations = list(
        Rotation.objects.filter(team__in=teams)
        .select_related("team")
        .prefetch_related(members_prefetch())
        .order_by("team__name", "role", "-layer", "name")
    )
    found = shifts_for(rotations, bounds[0], bounds[-1])
    by_team = {team.pk: {"team": team, "rows": []} for team in teams}
    for rotation in rotations:
        cells = []
        for day_start, day_end in zip(bounds, bounds[1:], strict=False):
            cell = []
            for shift in found[rotation.pk]:
                if shift.starts_at >= day_end or shift.ends_at <= day_start:
                    continue
                cell.append(
                    {
                        "user": _person(shift.user),
                        "from": shift.starts_at if shift.starts_at > day_start else None,
                        "to": shift.ends_at if shift.ends_at < day_end else None,
                        "override": shift.override,
                    }
                )
            cells.append(cell)
        by_team[rotation.team_id]["rows"].append(
            {
                "rotation": rotation,
                "role": OnCallRole(rotation.role).label,
                "cells": cells,
                "members": ", ".join(_person(member.user) for member in rotation.members.all()),
            }
        )
    return list(by_team.values())


# --- rotations ------------------------------------------------------------------------------


class RotationMemberForm(forms.ModelForm):
    # Left empty, a new member goes last; the service numbers the order 0, 1, 2…
    position = forms.IntegerField(required=False, min_value=0, max_value=32767)

    class Meta:
        model = RotationMember
        fields = ("position", "user")


class RotationMemberInline(admin.TabularInline):
    model = RotationMember
    form = RotationMemberForm
    fields = ("position", "user")
    ordering = ("position",)
    extra = 1
    verbose_name = "member"
    verbose_name_plural = "Members, in the order they take shifts"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


def member_order(formset) -> list:
    """Return the users of the inline in the order the page gives them."""
    rows = []
    for index, form in enumerate(formset.forms):
        data = getattr(form, "cleaned_data", None)
        if not data or data.get("DELETE") or data.get("user") is None:
            continue
        position = data.get("position")
        rows.append((position is None, position or 0, index, data["user"]))
    return [user for *_, user in sorted(rows, key=lambda row: row[:3])]


@admin.register(Rotation)
class RotationAdmin(ScheduleAdmin):
    list_display = ("name", "team", "role", "schedule", "layer", "window", "member_names")
    list_select_related = ("team",)
    list_filter = ("team", "role", "period")
    search_fields = ("name", "team__name")
    inlines = (RotationMemberInline,)
    fieldsets = (
        (None, {"fields": ("team", "role", "name")}),
        (
            "Shifts",
            {
                "fields": (
                    "time_zone",
                    "starts_on",
                    "handoff_time",
                    "period",
                    "period_days",
                    "ends_on",
                )
            },
        ),
        (
            "Layers",
            {
                "fields": ("layer", "window_starts", "window_ends"),
                "description": "Where rotations of one team and role overlap, the highest "
                "layer with someone on call wins (a daytime layer over a round-the-clock one).",
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(members_prefetch())

    @admin.display(description="Shifts")
    def schedule(self, obj):
        return (
            f"{obj.get_period_display()}"
            f"{f' ({obj.period_days})' if obj.period == Rotation.Period.CUSTOM else ''}, "
            f"{obj.handoff_time:%H:%M} {obj.time_zone}, from {obj.starts_on}"
            f"{f' to {obj.ends_on}' if obj.ends_on else ''}"
        )

    @admin.display(description="Window")
    def window(self, obj):
        if obj.window_starts is None:
            return "All day"
        return f"{obj.window_starts:%H:%M}–{obj.window_ends:%H:%M}"

    @admin.display(description="Members")
    def member_names(self, obj):
        return ", ".join(_person(member.user) for member in obj.members.all()) or "—"

    def save_related(self, request, form, formsets, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in services.ROTATION_FIELDS if name in data}
        members = next(
            (member_order(formset) for formset in formsets if formset.model is RotationMember),
            None,
        )
        with refusals():
            if change:
                rotation = services.rotation_update(
                    rotation=form.instance,
                    team=data["team"],
                    members=members,
                    actor=request.user,
                    source=Source.ADMIN,
                    **fields,
                )
            else:
                rotation = services.rotation_create(
                    team=data["team"],
                    members=members or (),
                    actor=request.user,
                    source=Source.ADMIN,
                    **fields,
                )
        form.instance.pk = rotation.pk
        for formset in formsets:
            note_formset_changes(formset)

    def delete_model(self, request, obj):
        services.rotation_delete(rotation=obj, actor=request.user, source=Source.ADMIN)


# --- overrides ------------------------------------------------------------------------------


@admin.register(Override)
class OverrideAdmin(ScheduleAdmin):
    list_display = ("rotation", "user", "covers", "starts_at", "ends_at", "reason", "created_by")
    list_select_related = ("rotation__team", "user", "covers", "created_by")
    list_filter = ("rotation__team", "rotation")
    search_fields = ("reason", "user__username", "covers__username", "rotation__name")
    date_hierarchy = "starts_at"
    fields = ("rotation", "user", "covers", "starts_at", "ends_at", "reason", "created_by")
    readonly_fields = ("created_by",)

    def get_readonly_fields(self, request, obj=None):
        # An override belongs to its rotation: to move it, delete it and make another.
        return ("rotation", "created_by") if obj is not None else ("created_by",)

    def save_related(self, request, form, formsets, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in services.OVERRIDE_FIELDS if name in data}
        with refusals():
            if change:
                override = services.override_update(
                    override=form.instance, actor=request.user, source=Source.ADMIN, **fields
                )
            else:
                override = services.override_create(
                    rotation=data["rotation"], actor=request.user, source=Source.ADMIN, **fields
                )
        form.instance.pk = override.pk

    def delete_model(self, request, obj):
        services.override_delete(override=obj, actor=request.user, source=Source.ADMIN)
