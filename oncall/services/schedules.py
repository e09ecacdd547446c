"""Writes of the schedule: teams, rotations (with their members' order), overrides, and
the secret of a person's calendar feed. Each write validates everything first and
saves in one transaction, with history naming the actor and where it came from."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from incidents.errors import DomainError
from incidents.services import acting_user, clean_text

from ..models import (
    OnCallProfile,
    OnCallRole,
    Override,
    Rotation,
    RotationMember,
    Team,
    new_feed_salt,
)

TEAM_FIELDS = {"name", "slug", "description", "escalation_policy", "is_default"}
ROTATION_FIELDS = {
    "role",
    "name",
    "time_zone",
    "starts_on",
    "handoff_time",
    "period",
    "period_days",
    "ends_on",
    "layer",
    "window_starts",
    "window_ends",
}
OVERRIDE_FIELDS = {"user", "covers", "starts_at", "ends_at", "reason"}
MAX_PERIOD_DAYS = 365
MAX_MEMBERS = 200
MAX_LAYER = 20
# An override is a swap or a holiday's cover; a longer change belongs in the rotation.
MAX_OVERRIDE = timedelta(days=366)


def _save(instance, *, actor, source: str, verb: str) -> None:
    user = acting_user(actor)
    if user is not None:
        instance._history_user = user
    instance._change_reason = f"{verb} via {source}"
    instance.save()


def _delete(instance, *, actor, source: str) -> None:
    user = acting_user(actor)
    if user is not None:
        instance._history_user = user
    instance._change_reason = f"Deleted via {source}"
    instance.delete()


def _unknown(fields: dict, allowed: set, what: str) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise DomainError(f"Cannot set {', '.join(sorted(unknown))} on a {what}.")


# --- teams ------------------------------------------------------------------------------


def _check_team(team: Team) -> None:
    team.name = clean_text(team.name, field="name", limit=100, required="Name the team.")
    team.slug = (team.slug or "").strip() or slugify(team.name)
    if not team.slug or slugify(team.slug) != team.slug:
        raise DomainError(
            "A slug is lowercase letters, digits and dashes (it names the team in URLs).",
            field="slug",
        )
    if len(team.slug) > 100:
        raise DomainError("At most 100 characters.", field="slug")
    team.description = clean_text(team.description, field="description", limit=2000)
    others = Team.objects.exclude(pk=team.pk)
    if others.filter(name__iexact=team.name).exists():
        raise DomainError(f"A team named {team.name} exists already.", field="name")
    if others.filter(slug=team.slug).exists():
        raise DomainError(f"A team with the slug {team.slug} exists already.", field="slug")
    check_default_team(team)


def check_default_team(team: Team) -> None:
    """Refuse a second default team, naming the one there is."""
    if team.is_default:
        current = Team.objects.exclude(pk=team.pk).filter(is_default=True).first()
        if current is not None:
            raise DomainError(
                f"{current.name} is the default team already; make it not the default first.",
                field="is_default",
            )


@transaction.atomic
def team_create(*, name: str, actor, source: str, members=(), services=(), **fields) -> Team:
    """Add a team with its members and the services it owns."""
    _unknown(fields, TEAM_FIELDS - {"name"}, "team")
    team = Team(name=name, **fields)
    _check_team(team)
    _save(team, actor=actor, source=source, verb="Created")
    team.members.set(members)
    team.services.set(services)
    return team


@transaction.atomic
def team_update(*, team: Team, actor, source: str, members=None, services=None, **changes) -> Team:
    """Change a team; `members` and `services`, when given, replace its own."""
    _unknown(changes, TEAM_FIELDS, "team")
    team = Team.objects.select_for_update().get(pk=team.pk)
    for name, value in changes.items():
        setattr(team, name, value)
    _check_team(team)
    _save(team, actor=actor, source=source, verb="Changed")
    if members is not None:
        team.members.set(members)
    if services is not None:
        team.services.set(services)
    return team


@transaction.atomic
def team_delete(*, team: Team, actor, source: str) -> None:
    """Remove a team with its rotations and their overrides."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    _delete(team, actor=actor, source=source)


# --- rotations --------------------------------------------------------------------------


def _check_rotation(rotation: Rotation) -> None:
    if rotation.role not in OnCallRole.values:
        raise DomainError(
            f"Unknown role {rotation.role!r}; use one of {', '.join(OnCallRole.values)}.",
            field="role",
        )
    rotation.name = clean_text(rotation.name, field="name", limit=100, required="Name it.")
    if (
        Rotation.objects.filter(team_id=rotation.team_id, name__iexact=rotation.name)
        .exclude(pk=rotation.pk)
        .exists()
    ):
        raise DomainError(
            f"{rotation.team} has a rotation named {rotation.name} already.", field="name"
        )
    if not isinstance(rotation.time_zone, str) or (
        rotation.time_zone not in zoneinfo.available_timezones()
    ):
        raise DomainError(
            f"Unknown time zone {rotation.time_zone!r}; use a name like Europe/London.",
            field="time_zone",
        )
    for name in ("starts_on", "ends_on"):
        value = getattr(rotation, name)
        if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
            raise DomainError("Give a date (YYYY-MM-DD).", field=name)
    if rotation.starts_on is None:
        raise DomainError("Say on which day the first shift starts.", field="starts_on")
    for name in ("handoff_time", "window_starts", "window_ends"):
        value = getattr(rotation, name)
        if value is not None and not isinstance(value, time):
            raise DomainError("Give a time of day (HH:MM).", field=name)
    if rotation.handoff_time is None:
        raise DomainError("Say at what local time shifts change hands.", field="handoff_time")
    if rotation.period not in Rotation.Period.values:
        raise DomainError(
            f"Unknown period {rotation.period!r}; use one of {', '.join(Rotation.Period.values)}.",
            field="period",
        )
    if rotation.period == Rotation.Period.CUSTOM:
        days = rotation.period_days
        if (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not (1 <= days <= MAX_PERIOD_DAYS)
        ):
            raise DomainError(
                f"Say every how many days the shift changes (1 to {MAX_PERIOD_DAYS}).",
                field="period_days",
            )
    else:
        # Only "every N days" has an N; a leftover one would mislead whoever reads it.
        rotation.period_days = None
    if rotation.ends_on is not None and rotation.ends_on <= rotation.starts_on:
        raise DomainError("The rotation must end after the day it starts.", field="ends_on")
    layer = rotation.layer
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= MAX_LAYER:
        raise DomainError(f"A layer is a number from 1 to {MAX_LAYER}.", field="layer")
    if (rotation.window_starts is None) != (rotation.window_ends is None):
        raise DomainError(
            "Give the daily window both ends, or neither.",
            field="window_ends" if rotation.window_ends is None else "window_starts",
        )
    if rotation.window_starts is not None and rotation.window_starts == rotation.window_ends:
        raise DomainError(
            "The daily window must not start and end at the same time (leave both empty "
            "for all day).",
            field="window_ends",
        )


def _check_members(members) -> list:
    members = list(members)
    if len(members) > MAX_MEMBERS:
        raise DomainError(f"At most {MAX_MEMBERS} members.", field="members")
    seen = set()
    for user in members:
        if user.pk in seen:
            raise DomainError(
                f"{user} is in the order twice; each member takes one place.", field="members"
            )
        seen.add(user.pk)
    return members


def _set_members(rotation: Rotation, members: list, *, actor, source: str) -> None:
    # Positions are rewritten in place: a row keeps its place and changes its person,
    # so history shows who moved and the (rotation, position) constraint never clashes.
    current = {row.position: row for row in rotation.members.all()}
    for position, user in enumerate(members):
        row = current.pop(position, None)
        if row is None:
            row = RotationMember(rotation=rotation, position=position, user=user)
        elif row.user_id == user.pk:
            continue
        row.user = user
        _save(row, actor=actor, source=source, verb="Placed")
    for row in current.values():
        _delete(row, actor=actor, source=source)


@transaction.atomic
def rotation_create(
    *,
    team: Team,
    role: str,
    name: str,
    starts_on: date,
    handoff_time: time,
    actor,
    source: str,
    members=(),
    **fields,
) -> Rotation:
    """Add a rotation: who takes `role` for `team` in turn (`members` in order)."""
    _unknown(fields, ROTATION_FIELDS, "rotation")
    rotation = Rotation(
        team=team,
        role=role,
        name=name,
        starts_on=starts_on,
        handoff_time=handoff_time,
        **fields,
    )
    _check_rotation(rotation)
    members = _check_members(members)
    _save(rotation, actor=actor, source=source, verb="Created")
    _set_members(rotation, members, actor=actor, source=source)
    return rotation


@transaction.atomic
def rotation_update(
    *, rotation: Rotation, actor, source: str, team: Team | None = None, members=None, **changes
) -> Rotation:
    """Change a rotation (or move it to another team); `members`, when given, is the
    new order."""
    _unknown(changes, ROTATION_FIELDS, "rotation")
    rotation = Rotation.objects.select_for_update().select_related("team").get(pk=rotation.pk)
    if team is not None:
        rotation.team = team
    for name, value in changes.items():
        setattr(rotation, name, value)
    _check_rotation(rotation)
    if members is not None:
        members = _check_members(members)
    _save(rotation, actor=actor, source=source, verb="Changed")
    if members is not None:
        _set_members(rotation, members, actor=actor, source=source)
    return rotation


@transaction.atomic
def rotation_delete(*, rotation: Rotation, actor, source: str) -> None:
    """Remove a rotation with its members' places and its overrides."""
    rotation = Rotation.objects.select_for_update().get(pk=rotation.pk)
    _delete(rotation, actor=actor, source=source)


# --- overrides --------------------------------------------------------------------------


def _check_override(override: Override) -> None:
    for name in ("starts_at", "ends_at"):
        value = getattr(override, name)
        if not isinstance(value, datetime):
            raise DomainError("Give a date and time.", field=name)
        if timezone.is_naive(value):
            raise DomainError("Give a time with its time zone.", field=name)
    if override.ends_at <= override.starts_at:
        raise DomainError("The override must end after it starts.", field="ends_at")
    if override.ends_at - override.starts_at > MAX_OVERRIDE:
        raise DomainError("At most a year; change the rotation's members instead.", field="ends_at")
    if override.user_id is None:
        raise DomainError("Say who is on call instead.", field="user")
    if override.covers_id is not None:
        if override.covers_id == override.user_id:
            raise DomainError("Someone cannot cover their own shifts.", field="covers")
        # A member's shifts, or those of someone covering in an override of the
        # rotation at the time (covering the cover); anyone else is never on call here.
        member = RotationMember.objects.filter(
            rotation_id=override.rotation_id, user_id=override.covers_id
        ).exists()
        covering = (
            Override.objects.filter(
                rotation_id=override.rotation_id,
                user_id=override.covers_id,
                starts_at__lt=override.ends_at,
                ends_at__gt=override.starts_at,
            )
            .exclude(pk=override.pk)
            .exists()
        )
        if not member and not covering:
            raise DomainError(
                f"{override.covers} is neither a member of {override.rotation.name} nor "
                "covering in it then; leave it empty to cover whoever is on call.",
                field="covers",
            )
    override.reason = clean_text(override.reason, field="reason", limit=200)


@transaction.atomic
def override_create(
    *,
    rotation: Rotation,
    user,
    starts_at: datetime,
    ends_at: datetime,
    actor,
    source: str,
    covers=None,
    reason: str = "",
) -> Override:
    """Put `user` on call in the rotation from `starts_at` to `ends_at`: instead of
    `covers` only (a swap), or of whoever is on call when `covers` is empty."""
    override = Override(
        rotation=rotation,
        user=user,
        covers=covers,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=acting_user(actor),
    )
    _check_override(override)
    _save(override, actor=actor, source=source, verb="Created")
    return override


@transaction.atomic
def override_update(*, override: Override, actor, source: str, **changes) -> Override:
    """Change an override's person, whom it covers, its times or its reason."""
    _unknown(changes, OVERRIDE_FIELDS, "override")
    override = Override.objects.select_for_update().select_related("rotation").get(pk=override.pk)
    for name, value in changes.items():
        setattr(override, name, value)
    _check_override(override)
    _save(override, actor=actor, source=source, verb="Changed")
    return override


@transaction.atomic
def override_delete(*, override: Override, actor, source: str) -> None:
    """Remove an override: the rotation's own order applies again."""
    override = Override.objects.select_for_update().get(pk=override.pk)
    _delete(override, actor=actor, source=source)


# --- calendar feeds ---------------------------------------------------------------------


@transaction.atomic
def feed_rotate(*, user, actor, source: str) -> OnCallProfile:
    """Give the person's calendar feed a new secret URL; the old one stops working."""
    profile, _ = OnCallProfile.objects.select_for_update().get_or_create(user=user)
    profile.feed_salt = new_feed_salt()
    _save(profile, actor=actor, source=source, verb="New feed URL")
    return profile
