"""Response policy beyond severities: the business calendar and the escalation ladder."""

import time as clock
import zoneinfo
from datetime import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import models, transaction
from simple_history.models import HistoricalRecords

from .comms import ChannelTarget
from .core import Incident

CALENDAR_CACHE_KEY = "sitrep:business-calendar"
# The calendar is read for every deadline shown (a list of 50 incidents: 50 times), so
# each process keeps it a few seconds on top of the shared cache: an edit is seen at once
# in the process that made it, and within that many seconds everywhere else.
CALENDAR_MEMO_SECONDS = 5
_calendar_memo: tuple[float, object] = (0.0, None)


def validate_time_zone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use a name like Europe/Paris.")


def validate_working_days(value):
    if not isinstance(value, list) or not all(day in range(7) for day in value) or not value:
        raise ValidationError("Give a list of weekday numbers, Monday = 0 … Sunday = 6.")


def _drop_calendar() -> None:
    global _calendar_memo
    _calendar_memo = (0.0, None)
    cache.delete(CALENDAR_CACHE_KEY)


class BusinessCalendar(models.Model):
    """When "business hours" are, for severities that count their response time in them."""

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    working_days = models.JSONField(
        default=list, validators=[validate_working_days], help_text="Monday = 0 … Sunday = 6."
    )
    day_starts = models.TimeField(default=time(9, 0))
    day_ends = models.TimeField(default=time(17, 0))

    history = HistoricalRecords()

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        self.forget()  # every deadline shown reads the cached calendar

    def clean(self):
        if self.day_ends <= self.day_starts:
            raise ValidationError("The working day must end after it starts.")

    @classmethod
    def current(cls) -> "BusinessCalendar | None":
        """Return the calendar in force (the first one), with its holidays, cached."""

        def load():
            calendar = cls.objects.prefetch_related("holidays").first()
            if calendar is not None:
                calendar.holiday_dates = {holiday.date for holiday in calendar.holidays.all()}
            return calendar

        global _calendar_memo
        kept_until, calendar = _calendar_memo
        if clock.monotonic() < kept_until:
            return calendar
        calendar = cache.get_or_set(CALENDAR_CACHE_KEY, load, 300)
        _calendar_memo = (clock.monotonic() + CALENDAR_MEMO_SECONDS, calendar)
        return calendar

    @staticmethod
    def forget() -> None:
        """Drop the cached calendar, here and in the shared cache: now, for this
        transaction's own reads, and again once it commits, since a reader in between
        may have cached the calendar as it was."""
        _drop_calendar()
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(_drop_calendar)


class Holiday(models.Model):
    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="holidays"
    )
    date = models.DateField()
    name = models.CharField(max_length=100)

    history = HistoricalRecords()

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="one_holiday_per_date"),
        ]

    def __str__(self):
        return f"{self.date}: {self.name}"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        BusinessCalendar.forget()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        BusinessCalendar.forget()
        return result


class EscalationLevel(models.Model):
    """A rung of the escalation ladder, paged when an incident stays unacknowledged."""

    level = models.PositiveSmallIntegerField(unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="escalation_levels"
    )
    targets = models.ManyToManyField(ChannelTarget, blank=True, related_name="+")

    history = HistoricalRecords(m2m_fields=[members, targets])

    class Meta:
        ordering = ["level"]

    def __str__(self):
        return f"L{self.level} {self.name}"


class EscalationStep(models.Model):
    """That an incident reached a level: written once, so nobody is paged twice for it."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="escalations")
    level = models.PositiveSmallIntegerField()
    fired_at = models.DateTimeField()

    class Meta:
        ordering = ["incident", "level"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "level"], name="one_step_per_level"),
        ]

    def __str__(self):
        return f"{self.incident.reference} L{self.level}"
