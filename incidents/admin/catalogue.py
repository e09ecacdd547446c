"""The catalogue and policy tables commanders may edit: services, severities, incident
types and business calendars."""

from django.contrib import admin

from ..models import (
    BusinessCalendar,
    Holiday,
    IncidentType,
    Service,
    Severity,
)
from .base import GuardedHistoryAdmin, badge


@admin.register(Service)
class ServiceAdmin(GuardedHistoryAdmin):
    list_display = ("name", "slug", "owning_team", "tier")
    list_filter = ("tier", "owning_team")
    search_fields = ("name", "slug", "owning_team", "description")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Severity)
class SeverityAdmin(GuardedHistoryAdmin):
    list_display = (
        "key",
        "colored_label",
        "rank",
        "acknowledge_within",
        "update_every",
        "escalate_after",
        "response_in_business_hours",
        "postmortem_required",
        "postmortem_due_days",
    )
    search_fields = ("key", "label")
    fieldsets = (
        (None, {"fields": ("key", "label", "rank", "aliases", "color", "description")}),
        (
            "Response policy",
            {
                "fields": (
                    "acknowledge_within",
                    "update_every",
                    "escalate_after",
                    "response_in_business_hours",
                )
            },
        ),
        ("Post-mortem", {"fields": ("postmortem_required", "postmortem_due_days")}),
    )

    @admin.display(description="label", ordering="label")
    def colored_label(self, obj):
        return badge(obj.label, obj.color)


@admin.register(IncidentType)
class IncidentTypeAdmin(GuardedHistoryAdmin):
    list_display = ("name", "slug", "confidential_by_default")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 1


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(GuardedHistoryAdmin):
    list_display = ("name", "time_zone", "day_starts", "day_ends", "working_days")
    inlines = (HolidayInline,)
