"""Who is on call, when: the schedule engine. Pure reads; nothing here writes.

A rotation's shift k starts at the local wall-clock time `handoff_time` on
`starts_on + k * days_per_shift` in the rotation's `time_zone`, and falls to its
members in turn (ordered by position, member k mod n). The rotation ends at the
handover time on `ends_on` (the same rule as its start, so `ends_on` must come after
`starts_on`). Handovers keep their local time across daylight-saving changes: a weekly
09:00 Europe/London handover is 09:00 GMT in winter and 09:00 BST in summer, so the
shift that spans the change is an hour shorter or longer.

A local time that does not exist or exists twice is read as zoneinfo reads it with
fold=0, the offset in force before the change: a 01:30 handover on the night London
springs forward (01:30 does not exist) happens at 02:30 BST, and one on the night it
falls back (01:30 happens twice) at the first 01:30, BST. Daily windows follow the
same rule.

Every instant is kept in UTC inside this module: Python compares two datetimes of the
same tzinfo by wall clock, ignoring the fold, which would be wrong across a change.

A daily window (`window_starts`–`window_ends`, local, may wrap midnight) limits the
rotation to those hours; outside them it has nobody. Rotations of one team and role are
layers: at an instant the highest layer that has someone on call wins. Overrides in
force apply in the order they were made (pk): one without `covers` takes over from
whoever is on call, one with `covers` only from that person, so a later override can
cover the cover. Overrides only reach time the rotation staffs (inside its window).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, rrule
from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, prefetch_related_objects
from django.utils import timezone

from .models import Override, Rotation, RotationMember, Team

User = get_user_model()

# Local dates differ from UTC dates by at most 14 hours: a day either side covers it.
ZONE_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class OnCall:
    """Someone on call at an instant, and the stretch of it that instant is in."""

    team: Team
    role: str
    user: User
    rotation: Rotation
    override: Override | None
    starts_at: datetime
    ends_at: datetime | None


@dataclass(frozen=True)
class Shift:
    """A stretch of time one person is on call in a rotation (an override's, if any)."""

    rotation: Rotation
    user: User
    starts_at: datetime
    ends_at: datetime
    override: Override | None = None

    @property
    def team(self) -> Team:
        return self.rotation.team

    @property
    def role(self) -> str:
        return self.rotation.role


def members_prefetch() -> Prefetch:
    """Prefetch a rotation's members in order, with their users (one query)."""
    return Prefetch(
        "members", queryset=RotationMember.objects.select_related("user").order_by("position")
    )


# --- one rotation's clock ---------------------------------------------------------------


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    # fold=0 (the default): a gap or fold resolves to the offset before the change.
    return datetime.combine(day, at).replace(tzinfo=zone).astimezone(UTC)


def _zone(rotation: Rotation) -> ZoneInfo:
    return ZoneInfo(rotation.time_zone)


def shift_start(rotation: Rotation, k: int) -> datetime:
    """Return when shift k of the rotation starts (UTC)."""
    day = rotation.starts_on + timedelta(days=k * rotation.days_per_shift)
    return _instant(day, rotation.handoff_time, _zone(rotation))


def rotation_end(rotation: Rotation) -> datetime | None:
    """Return when the rotation stops (the handover time on `ends_on`), or None."""
    if rotation.ends_on is None:
        return None
    return _instant(rotation.ends_on, rotation.handoff_time, _zone(rotation))


def shift_index(rotation: Rotation, at: datetime) -> int | None:
    """Return the number of the shift running at `at`, ignoring windows and members;
    None before the first handover or once the rotation has ended."""
    at = at.astimezone(UTC)
    end = rotation_end(rotation)
    if end is not None and at >= end:
        return None
    local_day = at.astimezone(_zone(rotation)).date()
    k = (local_day - rotation.starts_on).days // rotation.days_per_shift
    # The local date gives the shift up to the hours before today's handover (or a
    # handover moved by a gap); step at most once or twice to the exact one.
    while at < shift_start(rotation, k):
        k -= 1
    while at >= shift_start(rotation, k + 1):
        k += 1
    return k if k >= 0 else None


def _window_spans(rotation: Rotation, start: datetime, end: datetime) -> list[tuple]:
    """Return the daily window's spans (UTC) that overlap [start, end)."""
    zone = _zone(rotation)
    opens, closes = rotation.window_starts, rotation.window_ends
    wraps = closes <= opens
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    spans = []
    while day <= last:
        span_start = _instant(day, opens, zone)
        span_end = _instant(day + timedelta(days=1) if wraps else day, closes, zone)
        if span_start < end and span_end > start:
            spans.append((max(span_start, start), min(span_end, end)))
        day += timedelta(days=1)
    return spans


def _staffed(rotation: Rotation, start: datetime, end: datetime) -> list[tuple]:
    """Return the parts of [start, end) the rotation staffs (inside its window)."""
    if rotation.window_starts is None or rotation.window_ends is None:
        return [(start, end)]
    return _window_spans(rotation, start, end)


def _base_shifts(rotation: Rotation, start: datetime, end: datetime) -> list[Shift]:
    """Return the rotation's own shifts (no overrides) overlapping [start, end), each
    cut to its window's spans but not to [start, end)."""
    members = [member.user for member in rotation.members.all()]
    if not members or end <= start:
        return []
    first = shift_start(rotation, 0)
    stop = rotation_end(rotation)
    if stop is not None:
        end = min(end, stop)
    k = shift_index(rotation, max(start, first))
    if k is None:
        return []
    zone = _zone(rotation)
    days = rotation.days_per_shift
    dtstart = datetime.combine(rotation.starts_on + timedelta(days=k * days), rotation.handoff_time)
    handovers = (
        naive.replace(tzinfo=zone).astimezone(UTC)
        for naive in rrule(DAILY, interval=days, dtstart=dtstart)
    )
    shifts = []
    begins = next(handovers)
    while begins < end:
        ends = next(handovers)
        if stop is not None:
            ends = min(ends, stop)
        user = members[k % len(members)]
        for span_start, span_end in _staffed(rotation, begins, ends):
            shifts.append(Shift(rotation, user, span_start, span_end))
        begins, k = ends, k + 1
    return shifts


def _apply_overrides(shifts: list[Shift], overrides: Iterable[Override]) -> list[Shift]:
    """Apply overrides in the order given (made): each replaces, where it overlaps,
    whoever it covers (anyone, when `covers` is empty) as the earlier ones left it."""
    for override in overrides:
        result = []
        for shift in shifts:
            overlaps = override.starts_at < shift.ends_at and override.ends_at > shift.starts_at
            covers = override.covers_id is None or override.covers_id == shift.user.pk
            if not (overlaps and covers):
                result.append(shift)
                continue
            inside_start = max(shift.starts_at, override.starts_at)
            inside_end = min(shift.ends_at, override.ends_at)
            if shift.starts_at < inside_start:
                result.append(replace(shift, ends_at=inside_start))
            result.append(
                replace(
                    shift,
                    user=override.user,
                    override=override,
                    starts_at=inside_start,
                    ends_at=inside_end,
                )
            )
            if inside_end < shift.ends_at:
                result.append(replace(shift, starts_at=inside_end))
        shifts = result
    return shifts


def _overrides_by_rotation(rotations, start: datetime, end: datetime) -> dict[int, list]:
    # One query, served by the override_in_force index (ends_at, starts_at).
    found = defaultdict(list)
    if not rotations:
        return found
    for override in (
        Override.objects.filter(
            rotation__in=[rotation.pk for rotation in rotations],
            ends_at__gt=start,
            starts_at__lt=end,
        )
        .select_related("user", "covers")
        .order_by("pk")
    ):
        found[override.rotation_id].append(override)
    return found


# --- the public reads -------------------------------------------------------------------


def shifts_for(
    rotations: Iterable[Rotation], start: datetime, end: datetime, *, overrides: bool = True
) -> dict[int, list[Shift]]:
    """Return each rotation's shifts overlapping [start, end), overrides applied (by
    default), in time order. Two queries whatever the number of rotations: members
    (unless prefetched) and overrides."""
    rotations = list(rotations)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    prefetch_related_objects(rotations, members_prefetch())
    in_force = _overrides_by_rotation(rotations, start, end) if overrides else {}
    result = {}
    for rotation in rotations:
        shifts = _base_shifts(rotation, start, end)
        if overrides:
            shifts = _apply_overrides(shifts, in_force.get(rotation.pk, []))
        result[rotation.pk] = [
            shift for shift in shifts if shift.starts_at < end and shift.ends_at > start
        ]
    return result


def shifts(rotation: Rotation, start: datetime, end: datetime, *, overrides=True) -> list[Shift]:
    """Return the rotation's shifts overlapping [start, end), overrides applied."""
    return shifts_for([rotation], start, end, overrides=overrides)[rotation.pk]


def _stretch_at(rotation: Rotation, at: datetime) -> Shift | None:
    """Return the rotation's own shift (cut to its window) running at `at`, or None."""
    members = [member.user for member in rotation.members.all()]
    k = shift_index(rotation, at) if members else None
    if k is None:
        return None
    begins, ends = shift_start(rotation, k), shift_start(rotation, k + 1)
    stop = rotation_end(rotation)
    if stop is not None:
        ends = min(ends, stop)
    user = members[k % len(members)]
    for span_start, span_end in _staffed(rotation, begins, ends):
        if span_start <= at < span_end:
            return Shift(rotation, user, span_start, span_end)
    return None


def on_call(*, teams=None, role=None, rotations=None, at=None) -> list[OnCall]:
    """Return who is on call at `at` (default now) for each of `teams` (None: every
    team), for `role` (None: every role), or in the given `rotations`.

    For teams, the highest layer with someone on call wins for each team and role; the
    rotations given by name are each answered for themselves. Three queries however
    many teams, rotations, members and overrides: rotations with their team, members
    with their user, and the overrides near `at`."""
    at = (at or timezone.now()).astimezone(UTC)
    queryset = (
        Rotation.objects.select_related("team")
        .prefetch_related(members_prefetch())
        .filter(starts_on__lte=(at + ZONE_MARGIN).date())
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=(at - ZONE_MARGIN).date()))
        .order_by("team__name", "role", "-layer", "name")
    )
    if teams is not None:
        queryset = queryset.filter(team__in=[getattr(team, "pk", team) for team in teams])
    if role is not None:
        queryset = queryset.filter(role=role)
    if rotations is not None:
        queryset = queryset.filter(pk__in=[getattr(item, "pk", item) for item in rotations])
    found = list(queryset)
    if not found:
        return []
    # A stretch lasts one shift at most: the overrides that can shape it lie within.
    reach = timedelta(days=max(rotation.days_per_shift for rotation in found) + 1)
    in_force = _overrides_by_rotation(found, at - reach, at + reach)

    answers = []
    for rotation in found:
        stretch = _stretch_at(rotation, at)
        if stretch is None:
            continue
        for piece in _apply_overrides([stretch], in_force.get(rotation.pk, [])):
            if piece.starts_at <= at < piece.ends_at:
                answers.append(
                    OnCall(
                        team=rotation.team,
                        role=rotation.role,
                        user=piece.user,
                        rotation=rotation,
                        override=piece.override,
                        starts_at=piece.starts_at,
                        ends_at=piece.ends_at,
                    )
                )
    if rotations is not None:
        return answers
    top = {}
    for answer in answers:
        key = (answer.team.pk, answer.role)
        top[key] = max(top.get(key, 0), answer.rotation.layer)
    return [
        answer for answer in answers if answer.rotation.layer == top[(answer.team.pk, answer.role)]
    ]
