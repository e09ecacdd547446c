"""Deadlines counted on the business calendar.

The reference gives "4 hours (business hours)" for SEV3 and "5 business days" for SEV4,
so a duration of whole days counts working days (same time of day, weekends and
holidays skipped) and anything shorter counts working hours. Times are computed in the
calendar's time zone and returned in UTC.
"""

import zoneinfo
from datetime import UTC, datetime, timedelta


def _is_working_day(moment: datetime, calendar) -> bool:
    return moment.weekday() in calendar.working_days and moment.date() not in getattr(
        calendar, "holiday_dates", set()
    )


def _day_bounds(moment: datetime, calendar) -> tuple[datetime, datetime]:
    start = moment.replace(
        hour=calendar.day_starts.hour, minute=calendar.day_starts.minute, second=0, microsecond=0
    )
    end = moment.replace(
        hour=calendar.day_ends.hour, minute=calendar.day_ends.minute, second=0, microsecond=0
    )
    return start, end


def _next_working_start(moment: datetime, calendar) -> datetime:
    """Return `moment` if it is inside working hours, else the next opening time."""
    for _ in range(366 * 2):  # a calendar with no working day at all is refused on save
        start, end = _day_bounds(moment, calendar)
        if _is_working_day(moment, calendar):
            if moment < start:
                return start
            if moment < end:
                return moment
        moment = _day_bounds(moment + timedelta(days=1), calendar)[0]
    raise ValueError("The business calendar has no working time.")


def add_business_time(start: datetime, duration: timedelta, calendar) -> datetime:
    """Return when `duration` of business time after `start` runs out."""
    zone = zoneinfo.ZoneInfo(calendar.time_zone)
    cursor = _next_working_start(start.astimezone(zone), calendar)
    days, rest = duration.days, duration - timedelta(days=duration.days)
    for _ in range(days):
        cursor = cursor + timedelta(days=1)
        while not _is_working_day(cursor, calendar):
            cursor = cursor + timedelta(days=1)
        cursor = _next_working_start(cursor, calendar)
    while rest > timedelta(0):
        cursor = _next_working_start(cursor, calendar)
        _, end = _day_bounds(cursor, calendar)
        available = end - cursor
        if rest <= available:
            cursor = cursor + rest
            break
        rest -= available
        cursor = end
    # Re-attach the zone after wall-clock arithmetic so DST changes are honoured.
    return cursor.replace(tzinfo=zone).astimezone(UTC)


def deadline(start: datetime, duration: timedelta, *, business_hours: bool) -> datetime:
    """Return start + duration, on the business calendar when the policy says so."""
    from .models import BusinessCalendar

    calendar = BusinessCalendar.current() if business_hours else None
    if calendar is None:
        return start + duration
    return add_business_time(start, duration, calendar)
