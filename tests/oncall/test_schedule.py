"""The schedule engine: who is on call at any instant, and the shifts of a period."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents.errors import DomainError
from oncall.models import OnCallRole, Rotation, RotationMember, Team
from oncall.schedule import on_call, shift_start, shifts

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def who(at, **kwargs):
    return sorted(answer.user.username for answer in on_call(at=at, **kwargs))


@pytest.fixture
def people(make_person):
    return {name: make_person(name) for name in ("ann", "ben", "cat", "dan")}


@pytest.fixture
def team(make_team):
    return make_team("Platform")


@pytest.fixture
def weekly(team, make_rotation, people):
    """ann, ben, cat in turn, weekly from Monday 5 January 2026 at 09:00 UTC."""
    return make_rotation(team, members=[people["ann"], people["ben"], people["cat"]])


# --- turns and boundaries -----------------------------------------------------------------


@pytest.mark.django_db
def test_members_take_weekly_turns_in_order(weekly):
    assert who(utc(2026, 1, 5, 9)) == ["ann"]
    assert who(utc(2026, 1, 14, 3)) == ["ben"]
    assert who(utc(2026, 1, 21, 12)) == ["cat"]
    assert who(utc(2026, 1, 28, 12)) == ["ann"]


@pytest.mark.django_db
def test_at_the_handoff_instant_the_new_person_is_on_call(weekly):
    assert who(utc(2026, 1, 12, 8, 59, 59)) == ["ann"]
    assert who(utc(2026, 1, 12, 9)) == ["ben"]


@pytest.mark.django_db
def test_answer_gives_the_current_shift_and_its_handover(weekly):
    [answer] = on_call(at=utc(2026, 1, 14, 3))
    assert answer.rotation == weekly
    assert answer.team == weekly.team
    assert answer.role == OnCallRole.RESPONDER
    assert answer.override is None
    assert (answer.starts_at, answer.ends_at) == (utc(2026, 1, 12, 9), utc(2026, 1, 19, 9))


@pytest.mark.django_db
def test_years_later_the_turn_is_still_right(weekly):
    # 5 Jan 2026 + 156 weeks: 156 mod 3 = 0, ann's turn again.
    at = utc(2026, 1, 5, 9) + timedelta(weeks=156, hours=1)
    assert who(at) == ["ann"]


@pytest.mark.django_db
def test_custom_period_hands_over_every_n_days(team, make_rotation, people):
    make_rotation(
        team,
        members=[people["ann"], people["ben"]],
        period=Rotation.Period.CUSTOM,
        period_days=3,
    )
    assert who(utc(2026, 1, 8, 8, 59)) == ["ann"]
    assert who(utc(2026, 1, 8, 9)) == ["ben"]
    assert who(utc(2026, 1, 11, 9)) == ["ann"]


@pytest.mark.django_db
def test_daily_period_hands_over_every_day(team, make_rotation, people):
    make_rotation(team, members=[people["ann"], people["ben"]], period=Rotation.Period.DAILY)
    assert who(utc(2026, 1, 6, 8)) == ["ann"]
    assert who(utc(2026, 1, 6, 9)) == ["ben"]
    assert who(utc(2026, 1, 7, 9)) == ["ann"]


@pytest.mark.django_db
def test_nobody_before_the_first_handoff(weekly):
    assert who(utc(2026, 1, 5, 8, 59)) == []
    assert who(utc(2025, 6, 1)) == []


@pytest.mark.django_db
def test_nobody_from_the_handover_time_on_the_last_day(team, make_rotation, people):
    make_rotation(team, members=[people["ann"], people["ben"]], ends_on=date(2026, 1, 19))
    assert who(utc(2026, 1, 19, 8, 59)) == ["ben"]
    assert who(utc(2026, 1, 19, 9)) == []
    assert who(utc(2026, 3, 1)) == []


@pytest.mark.django_db
def test_a_rotation_without_members_has_nobody(team, make_rotation):
    make_rotation(team, members=[])
    assert who(utc(2026, 2, 1)) == []


@pytest.mark.django_db
def test_now_is_the_default_instant(weekly):
    with time_machine.travel(utc(2026, 1, 13, 10), tick=False):
        assert who(None) == ["ben"]


# --- daylight saving ------------------------------------------------------------------------


@pytest.mark.django_db
def test_weekly_london_handoff_stays_at_nine_local_across_spring_forward(
    team, make_rotation, people
):
    # Clocks go forward on Sunday 29 March 2026: Monday's 09:00 BST is 08:00 UTC.
    make_rotation(
        team,
        members=[people["ann"], people["ben"]],
        time_zone="Europe/London",
        starts_on=date(2026, 3, 23),
    )
    assert who(utc(2026, 3, 30, 7, 59)) == ["ann"]
    assert who(utc(2026, 3, 30, 8)) == ["ben"]
    [answer] = on_call(at=utc(2026, 3, 30, 8))
    assert answer.starts_at.astimezone(LONDON).time() == time(9, 0)


@pytest.mark.django_db
def test_weekly_london_handoff_stays_at_nine_local_across_fall_back(team, make_rotation, people):
    # Clocks go back on Sunday 25 October 2026: Monday's 09:00 GMT is 09:00 UTC.
    rotation = make_rotation(
        team,
        members=[people["ann"], people["ben"]],
        time_zone="Europe/London",
        starts_on=date(2026, 10, 19),
    )
    assert shift_start(rotation, 0) == utc(2026, 10, 19, 8)
    assert who(utc(2026, 10, 26, 8, 30)) == ["ann"]
    assert who(utc(2026, 10, 26, 9)) == ["ben"]
    # The shift that spans the change is an hour longer.
    [first, second] = shifts(rotation, utc(2026, 10, 19, 8), utc(2026, 10, 26, 10))
    assert first.ends_at - first.starts_at == timedelta(days=7, hours=1)
    assert second.starts_at == utc(2026, 10, 26, 9)


@pytest.mark.django_db
def test_daily_new_york_shifts_are_23_and_25_hours_on_change_days(team, make_rotation, people):
    rotation = make_rotation(
        team,
        members=[people["ann"], people["ben"]],
        time_zone="America/New_York",
        period=Rotation.Period.DAILY,
        starts_on=date(2026, 3, 1),
    )
    spring = shifts(rotation, utc(2026, 3, 7, 15), utc(2026, 3, 7, 16))
    assert [(s.starts_at, s.ends_at) for s in spring] == [
        (utc(2026, 3, 7, 14), utc(2026, 3, 8, 13))  # 09:00 EST to 09:00 EDT: 23 hours
    ]
    autumn = shifts(rotation, utc(2026, 10, 31, 15), utc(2026, 10, 31, 16))
    assert [(s.starts_at, s.ends_at) for s in autumn] == [
        (utc(2026, 10, 31, 13), utc(2026, 11, 1, 14))  # 09:00 EDT to 09:00 EST: 25 hours
    ]
    for shift in shifts(rotation, utc(2026, 3, 5), utc(2026, 3, 12)):
        assert shift.starts_at.astimezone(NEW_YORK).time() == time(9, 0)
    # 8 March is shift 7 (odd): ben; the next day ann.
    assert who(utc(2026, 3, 8, 12, 59)) == ["ann"]
    assert who(utc(2026, 3, 8, 13)) == ["ben"]


@pytest.mark.django_db
def test_handoff_in_a_dst_gap_or_fold_uses_the_offset_before_the_change(
    team, make_rotation, people
):
    rotation = make_rotation(
        team,
        members=[people["ann"], people["ben"]],
        time_zone="Europe/London",
        period=Rotation.Period.DAILY,
        handoff_time=time(1, 30),
        starts_on=date(2026, 3, 1),
    )
    # 01:30 does not exist on 29 March: read as GMT, the handover is at 02:30 BST.
    gap = (date(2026, 3, 29) - rotation.starts_on).days
    assert shift_start(rotation, gap) == utc(2026, 3, 29, 1, 30)
    # 01:30 happens twice on 25 October: the first one, BST.
    fold = (date(2026, 10, 25) - rotation.starts_on).days
    assert shift_start(rotation, fold) == utc(2026, 10, 25, 0, 30)
    before = "ann" if (gap - 1) % 2 == 0 else "ben"
    after = "ann" if gap % 2 == 0 else "ben"
    assert who(utc(2026, 3, 29, 1, 29)) == [before]
    assert who(utc(2026, 3, 29, 1, 30)) == [after]


# --- daily windows and layers ----------------------------------------------------------------


@pytest.mark.django_db
def test_outside_the_daily_window_nobody_is_on_call(team, make_rotation, people):
    make_rotation(team, members=[people["ann"]], window_starts=time(9), window_ends=time(17))
    assert who(utc(2026, 1, 6, 8, 59)) == []
    assert who(utc(2026, 1, 6, 9)) == ["ann"]
    [answer] = on_call(at=utc(2026, 1, 6, 12))
    assert (answer.starts_at, answer.ends_at) == (utc(2026, 1, 6, 9), utc(2026, 1, 6, 17))
    assert who(utc(2026, 1, 6, 17)) == []


@pytest.mark.django_db
def test_a_window_may_wrap_midnight(team, make_rotation, people):
    make_rotation(team, members=[people["ann"]], window_starts=time(22), window_ends=time(6))
    assert who(utc(2026, 1, 6, 23)) == ["ann"]
    assert who(utc(2026, 1, 7, 3)) == ["ann"]
    assert who(utc(2026, 1, 7, 6)) == []
    assert who(utc(2026, 1, 7, 12)) == []
    [answer] = on_call(at=utc(2026, 1, 7, 3))
    assert (answer.starts_at, answer.ends_at) == (utc(2026, 1, 6, 22), utc(2026, 1, 7, 6))


@pytest.mark.django_db
def test_window_is_in_the_rotations_local_time(team, make_rotation, people):
    make_rotation(
        team,
        members=[people["ann"]],
        time_zone="America/New_York",
        window_starts=time(9),
        window_ends=time(17),
    )
    assert who(utc(2026, 1, 6, 13)) == []  # 08:00 EST
    assert who(utc(2026, 1, 6, 14)) == ["ann"]  # 09:00 EST


@pytest.mark.django_db
def test_a_higher_layer_wins_inside_its_window(team, make_rotation, people):
    make_rotation(team, members=[people["ann"]], name="Round the clock", layer=1)
    make_rotation(
        team,
        members=[people["ben"]],
        name="London hours",
        layer=2,
        window_starts=time(9),
        window_ends=time(17),
    )
    assert who(utc(2026, 1, 6, 12)) == ["ben"]
    assert who(utc(2026, 1, 6, 20)) == ["ann"]


@pytest.mark.django_db
def test_several_rotations_at_the_top_layer_all_count(team, make_rotation, people):
    make_rotation(team, members=[people["ann"]], name="Base", layer=1)
    make_rotation(team, members=[people["ben"]], name="Primary", layer=2)
    make_rotation(team, members=[people["cat"]], name="Shadow", layer=2)
    assert who(utc(2026, 1, 6, 12)) == ["ben", "cat"]


@pytest.mark.django_db
def test_an_empty_higher_layer_leaves_the_lower_one_on_call(team, make_rotation, people):
    make_rotation(team, members=[people["ann"]], name="Base", layer=1)
    make_rotation(team, members=[], name="Empty", layer=3)
    assert who(utc(2026, 1, 6, 12)) == ["ann"]


@pytest.mark.django_db
def test_layers_are_per_role_and_team(make_team, make_rotation, people):
    platform, payments = make_team("Platform"), make_team("Payments")
    make_rotation(platform, OnCallRole.RESPONDER, [people["ann"]], layer=1)
    make_rotation(platform, OnCallRole.COMMANDER, [people["ben"]], layer=5)
    make_rotation(payments, OnCallRole.RESPONDER, [people["cat"]], layer=9)
    at = utc(2026, 1, 6, 12)
    assert who(at) == ["ann", "ben", "cat"]
    assert who(at, teams=[platform]) == ["ann", "ben"]
    assert who(at, teams=[platform], role=OnCallRole.COMMANDER) == ["ben"]


@pytest.mark.django_db
def test_rotations_named_are_answered_each_for_itself(team, make_rotation, people):
    base = make_rotation(team, members=[people["ann"]], name="Base", layer=1)
    make_rotation(team, members=[people["ben"]], name="Top", layer=2)
    assert who(utc(2026, 1, 6, 12), rotations=[base]) == ["ann"]


# --- overrides --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_override_takes_part_of_a_shift(weekly, make_override, people):
    override = make_override(
        weekly, people["dan"], utc(2026, 1, 7, 12), utc(2026, 1, 8, 12), reason="Dentist"
    )
    [answer] = on_call(at=utc(2026, 1, 7, 13))
    assert (answer.user, answer.override) == (people["dan"], override)
    assert (answer.starts_at, answer.ends_at) == (utc(2026, 1, 7, 12), utc(2026, 1, 8, 12))
    [after] = on_call(at=utc(2026, 1, 8, 12))
    assert (after.user, after.override) == (people["ann"], None)
    assert (after.starts_at, after.ends_at) == (utc(2026, 1, 8, 12), utc(2026, 1, 12, 9))
    week = shifts(weekly, utc(2026, 1, 5, 9), utc(2026, 1, 12, 9))
    assert [(s.user.username, s.starts_at, s.ends_at) for s in week] == [
        ("ann", utc(2026, 1, 5, 9), utc(2026, 1, 7, 12)),
        ("dan", utc(2026, 1, 7, 12), utc(2026, 1, 8, 12)),
        ("ann", utc(2026, 1, 8, 12), utc(2026, 1, 12, 9)),
    ]


@pytest.mark.django_db
def test_an_override_covering_one_person_leaves_the_next_shift_alone(weekly, make_override, people):
    make_override(weekly, people["dan"], utc(2026, 1, 11), utc(2026, 1, 13), covers=people["ann"])
    assert who(utc(2026, 1, 11, 12)) == ["dan"]
    assert who(utc(2026, 1, 12, 10)) == ["ben"]


@pytest.mark.django_db
def test_an_override_covering_someone_not_on_call_changes_nothing(weekly, make_override, people):
    make_override(weekly, people["dan"], utc(2026, 1, 6), utc(2026, 1, 7), covers=people["ben"])
    assert who(utc(2026, 1, 6, 12)) == ["ann"]


@pytest.mark.django_db
def test_a_later_override_can_cover_the_cover(weekly, make_override, people):
    make_override(weekly, people["cat"], utc(2026, 1, 7), utc(2026, 1, 9), covers=people["ann"])
    make_override(weekly, people["dan"], utc(2026, 1, 8), utc(2026, 1, 8, 12), covers=people["cat"])
    assert who(utc(2026, 1, 7, 6)) == ["cat"]
    assert who(utc(2026, 1, 8, 6)) == ["dan"]
    assert who(utc(2026, 1, 8, 13)) == ["cat"]
    assert who(utc(2026, 1, 9, 1)) == ["ann"]


@pytest.mark.django_db
def test_a_cover_from_outside_the_rotation_can_be_covered_in_turn(weekly, make_override, people):
    # dan is no member: he covers ann, and ben takes an afternoon of dan's cover.
    make_override(weekly, people["dan"], utc(2026, 1, 7), utc(2026, 1, 9), covers=people["ann"])
    make_override(
        weekly, people["ben"], utc(2026, 1, 8, 12), utc(2026, 1, 8, 18), covers=people["dan"]
    )
    assert who(utc(2026, 1, 8, 10)) == ["dan"]
    assert who(utc(2026, 1, 8, 13)) == ["ben"]
    # Covering someone who is neither a member nor covering then is refused.
    with pytest.raises(DomainError, match="neither a member"):
        make_override(
            weekly, people["ben"], utc(2026, 1, 20), utc(2026, 1, 21), covers=people["dan"]
        )


@pytest.mark.django_db
def test_overrides_apply_only_inside_the_window(team, make_rotation, make_override, people):
    rotation = make_rotation(
        team, members=[people["ann"]], window_starts=time(9), window_ends=time(17)
    )
    make_override(rotation, people["dan"], utc(2026, 1, 6), utc(2026, 1, 7))
    assert who(utc(2026, 1, 6, 12)) == ["dan"]
    assert who(utc(2026, 1, 6, 20)) == []


@pytest.mark.django_db
def test_an_override_before_the_rotation_starts_puts_nobody_on_call(weekly, make_override, people):
    make_override(weekly, people["dan"], utc(2026, 1, 1), utc(2026, 1, 5, 10))
    assert who(utc(2026, 1, 3)) == []
    assert who(utc(2026, 1, 5, 9, 30)) == ["dan"]


@pytest.mark.django_db
def test_shifts_without_overrides_show_the_rotation_itself(weekly, make_override, people):
    make_override(weekly, people["dan"], utc(2026, 1, 7), utc(2026, 1, 8))
    week = shifts(weekly, utc(2026, 1, 6), utc(2026, 1, 13), overrides=False)
    assert [s.user.username for s in week] == ["ann", "ben"]


# --- cost ---------------------------------------------------------------------------------------


def _bulk_schedule(django_user_model, *, users=500, teams=50, rotations=100):
    people = django_user_model.objects.bulk_create(
        [django_user_model(username=f"user{number}") for number in range(users)]
    )
    made_teams = Team.objects.bulk_create(
        [Team(name=f"Team {number}", slug=f"team-{number}") for number in range(teams)]
    )
    made = Rotation.objects.bulk_create(
        [
            Rotation(
                team=made_teams[number % teams],
                role=OnCallRole.RESPONDER if number % 2 else OnCallRole.COMMANDER,
                name=f"Rotation {number}",
                starts_on=date(2026, 1, 5),
                handoff_time=time(9),
                layer=1 + number % 3,
                window_starts=time(8) if number % 4 == 0 else None,
                window_ends=time(20) if number % 4 == 0 else None,
            )
            for number in range(rotations)
        ]
    )
    RotationMember.objects.bulk_create(
        [
            RotationMember(
                rotation=rotation, user=people[(index * 5 + place) % users], position=place
            )
            for index, rotation in enumerate(made)
            for place in range(5)
        ]
    )
    return made_teams


@pytest.mark.django_db
def test_on_call_for_every_team_costs_the_same_few_queries_as_for_five(
    django_user_model, make_override, django_assert_max_num_queries
):
    teams = _bulk_schedule(django_user_model)
    some = Rotation.objects.all()[:10]
    for rotation in some:
        user = rotation.members.first().user
        make_override(rotation, user, utc(2026, 2, 2), utc(2026, 2, 4))
    at = utc(2026, 2, 3, 12)
    with django_assert_max_num_queries(3):
        everyone = on_call(at=at)
    assert {answer.team.pk for answer in everyone} == {team.pk for team in teams}
    with CaptureQueriesContext(connection) as all_teams:
        on_call(at=at, teams=teams)
    with CaptureQueriesContext(connection) as five_teams:
        on_call(at=at, teams=teams[:5])
    assert len(all_teams) == len(five_teams) <= 3
