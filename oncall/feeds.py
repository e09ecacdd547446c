"""Calendar feeds (iCalendar) of on-call shifts, behind a secret URL per person.

The token reads `<user id>-<hex>`: an HMAC of the user id and their profile's feed salt
under SECRET_KEY, never stored. A new salt (services.schedules.feed_rotate) kills the
old URL; rotating SECRET_KEY keeps feeds working while the old key is in
SECRET_KEY_FALLBACKS, as Django's own signatures do. A wrong token is a 404, the same
as a URL that never existed."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.urls import path, re_path, reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.decorators.http import require_GET
from icalendar import Calendar, Event

from .models import OnCallProfile, OnCallRole, Rotation
from .schedule import Shift, shifts_for

FEED_SALT = "sitrep.oncall.calendar-feed"
# What a person's calendar shows: the last week (what just happened) and two months ahead.
PAST = timedelta(days=7)
AHEAD = timedelta(days=60)


def _derive(user_id: int, salt: str, secret_key: str) -> str:
    digest = salted_hmac(FEED_SALT, f"{user_id}:{salt}", secret=secret_key, algorithm="sha256")
    return f"{user_id}-{digest.hexdigest()}"


def _profile(user) -> OnCallProfile:
    profile, _ = OnCallProfile.objects.get_or_create(user=user)
    return profile


def feed_token(user) -> str:
    """Return the secret token of the person's feeds (making their profile if needed)."""
    return _derive(user.pk, _profile(user).feed_salt, settings.SECRET_KEY)


def feed_url(user, request=None) -> str:
    """Return the URL of the person's own feed; absolute when `request` is given."""
    url = reverse("oncall:person-feed", kwargs={"token": feed_token(user)})
    return request.build_absolute_uri(url) if request is not None else url


def rotation_feed_url(user, rotation, request=None) -> str:
    url = reverse(
        "oncall:rotation-feed", kwargs={"token": feed_token(user), "rotation_id": rotation.pk}
    )
    return request.build_absolute_uri(url) if request is not None else url


def user_from_token(token: str):
    """Return the active user the token belongs to, or raise Http404."""
    head, _, _ = token.partition("-")
    if not head.isdigit() or len(head) > 18:
        raise Http404("No such calendar.")
    profile = (
        OnCallProfile.objects.select_related("user")
        .filter(user_id=int(head), user__is_active=True)
        .first()
    )
    if profile is None:
        raise Http404("No such calendar.")
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(
        constant_time_compare(token, _derive(profile.user_id, profile.feed_salt, key))
        for key in keys
    ):
        raise Http404("No such calendar.")
    return profile.user


def _window(now: datetime) -> tuple[datetime, datetime]:
    return now - PAST, now + AHEAD


def _event(shift: Shift) -> Event:
    rotation = shift.rotation
    event = Event()
    # Stable across fetches: the same stretch keeps its UID, so calendars update in place.
    override = f"-o{shift.override.pk}" if shift.override else ""
    stamp = int(shift.starts_at.timestamp())
    event.add("uid", f"oncall-{rotation.pk}-{shift.user.pk}-{stamp}{override}@sitrep")
    event.add("summary", f"On call: {rotation.team.name} {OnCallRole(rotation.role).label}")
    event.add("dtstart", shift.starts_at.astimezone(UTC))
    event.add("dtend", shift.ends_at.astimezone(UTC))
    event.add("dtstamp", shift.starts_at.astimezone(UTC))
    lines = [f"Rotation: {rotation.name}", f"On call: {shift.user.get_username()}"]
    if shift.override is not None:
        covered = shift.override.covers
        lines.append(
            f"Override{f' covering {covered.get_username()}' if covered else ''}"
            f"{f': {shift.override.reason}' if shift.override.reason else ''}"
        )
    event.add("description", "\n".join(lines))
    return event


def _calendar(name: str, shifts: list[Shift]) -> HttpResponse:
    calendar = Calendar()
    calendar.add("prodid", "-//Sitrep//On call//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    for shift in sorted(shifts, key=lambda shift: (shift.starts_at, shift.rotation.pk)):
        calendar.add_component(_event(shift))
    response = HttpResponse(calendar.to_ical(), content_type="text/calendar; charset=utf-8")
    # The URL is the key: no shared cache may keep what it shows.
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def person_feed(request, token: str):
    """Serve the person's shifts across every rotation (their overrides included)."""
    user = user_from_token(token)
    start, end = _window(timezone.now())
    rotations = (
        Rotation.objects.select_related("team")
        .filter(
            Q(members__user=user)
            | Q(overrides__user=user, overrides__ends_at__gt=start, overrides__starts_at__lt=end)
        )
        .distinct()
    )
    mine = [
        shift
        for found in shifts_for(rotations, start, end).values()
        for shift in found
        if shift.user.pk == user.pk
    ]
    return _calendar(f"On call: {user.get_username()}", mine)


@require_GET
def rotation_feed(request, token: str, rotation_id: str):
    """Serve every shift of one rotation, for whoever may read the rotations."""
    user = user_from_token(token)
    rotation = Rotation.objects.select_related("team").filter(pk=int(rotation_id)).first()
    if rotation is None:
        raise Http404("No such calendar.")
    may_read = user.has_perm("oncall.view_rotation") or rotation.members.filter(user=user).exists()
    if not may_read:
        raise Http404("No such calendar.")
    start, end = _window(timezone.now())
    return _calendar(f"On call: {rotation}", shifts_for([rotation], start, end)[rotation.pk])


urlpatterns = [
    path("<str:token>/me.ics", person_feed, name="person-feed"),
    # At most 18 digits: a larger number is no row, and would overflow the database's integer.
    re_path(
        r"^(?P<token>[^/]+)/rotations/(?P<rotation_id>\d{1,18})\.ics$",
        rotation_feed,
        name="rotation-feed",
    ),
]
