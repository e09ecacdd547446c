"""The secret calendar feeds: a person's shifts and a rotation's, as iCalendar."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.test import override_settings
from icalendar import Calendar

from incidents.models import Source
from oncall.feeds import feed_token, feed_url, rotation_feed_url
from oncall.services.schedules import feed_rotate


def utc(*args):
    return datetime(*args, tzinfo=UTC)


NOW = utc(2026, 2, 4, 12)


@pytest.fixture
def people(make_person):
    return {name: make_person(name) for name in ("ann", "ben", "dan")}


@pytest.fixture
def rotation(make_team, make_rotation, people):
    team = make_team("Payments")
    return make_rotation(team, members=[people["ann"], people["ben"]], starts_on=date(2026, 1, 5))


def events(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    return [
        (
            str(event["summary"]),
            event.decoded("dtstart"),
            event.decoded("dtend"),
            str(event["uid"]),
        )
        for event in calendar.walk("VEVENT")
    ]


@pytest.mark.django_db
def test_person_feed_lists_their_shifts_from_last_week_to_two_months_ahead(
    client, rotation, people
):
    with time_machine.travel(NOW, tick=False):
        found = events(client.get(feed_url(people["ann"])))
    starts = [start for _, start, _, _ in found]
    # ann has every other week from 5 Jan; the feed runs from 28 Jan 12:00 to 5 Apr 12:00.
    assert starts == [
        utc(2026, 2, 2, 9),
        utc(2026, 2, 16, 9),
        utc(2026, 3, 2, 9),
        utc(2026, 3, 16, 9),
        utc(2026, 3, 30, 9),
    ]
    assert all(start.utcoffset().total_seconds() == 0 for start in starts)
    assert {summary for summary, *_ in found} == {"On call: Payments Responder (on-call engineer)"}


@pytest.mark.django_db
def test_person_feed_includes_overrides_they_take_and_drops_what_they_gave_away(
    client, rotation, people, make_override
):
    make_override(rotation, people["dan"], utc(2026, 2, 3), utc(2026, 2, 4), reason="Swap")
    with time_machine.travel(NOW, tick=False):
        dan = events(client.get(feed_url(people["dan"])))
        ann = events(client.get(feed_url(people["ann"])))
    assert [(start, end) for _, start, end, _ in dan] == [(utc(2026, 2, 3), utc(2026, 2, 4))]
    ann_stretches = [(start, end) for _, start, end, _ in ann]
    assert (utc(2026, 2, 2, 9), utc(2026, 2, 3)) in ann_stretches
    assert (utc(2026, 2, 4), utc(2026, 2, 9, 9)) in ann_stretches


@pytest.mark.django_db
def test_event_uids_are_stable_between_fetches(client, rotation, people):
    with time_machine.travel(NOW, tick=False):
        first = events(client.get(feed_url(people["ann"])))
    with time_machine.travel(utc(2026, 2, 4, 18), tick=False):
        again = events(client.get(feed_url(people["ann"])))
    assert [uid for *_, uid in first] == [uid for *_, uid in again]
    assert len({uid for *_, uid in first}) == len(first)


@pytest.mark.django_db
def test_rotation_feed_lists_everyones_shifts(client, rotation, people, responder):
    with time_machine.travel(NOW, tick=False):
        found = events(client.get(rotation_feed_url(responder, rotation)))
    starts = [start for _, start, _, _ in found]
    assert utc(2026, 2, 2, 9) in starts and utc(2026, 2, 9, 9) in starts


@pytest.mark.django_db
def test_rotation_feed_needs_the_right_to_read_rotations(client, rotation, make_person):
    stranger = make_person("eve")
    assert client.get(rotation_feed_url(stranger, rotation)).status_code == 404


@pytest.mark.django_db
def test_a_wrong_token_is_a_404(client, rotation, people):
    token = feed_token(people["ann"])
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    assert client.get(f"/oncall/calendar/{forged}/me.ics").status_code == 404
    other = f"{people['ben'].pk}-{token.partition('-')[2]}"
    assert client.get(f"/oncall/calendar/{other}/me.ics").status_code == 404
    assert client.get("/oncall/calendar/nonsense/me.ics").status_code == 404
    url = f"/oncall/calendar/{forged}/rotations/{rotation.pk}.ics"
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_a_new_feed_url_kills_the_old_one(client, rotation, people):
    old = feed_url(people["ann"])
    feed_rotate(user=people["ann"], actor=people["ann"], source=Source.ADMIN)
    new = feed_url(people["ann"])
    assert new != old
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


@pytest.mark.django_db
def test_feeds_survive_a_secret_key_rotation_while_the_old_key_is_a_fallback(
    client, rotation, people, settings
):
    url = feed_url(people["ann"])
    with override_settings(
        SECRET_KEY="a-new-key-" + "x" * 50, SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]
    ):
        assert client.get(url).status_code == 200
    with override_settings(SECRET_KEY="a-new-key-" + "x" * 50, SECRET_KEY_FALLBACKS=[]):
        assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_an_inactive_persons_feed_is_gone(client, rotation, people):
    url = feed_url(people["ann"])
    people["ann"].is_active = False
    people["ann"].save()
    assert client.get(url).status_code == 404
