"""The schedule's admin: teams, rotations with their order, overrides, the roster and
the calendar page, as a signed-in commander or responder."""

from datetime import UTC, date, datetime, time

import pytest
import time_machine
from django.urls import reverse

from oncall.feeds import feed_url
from oncall.models import OnCallProfile, OnCallRole, Override, Rotation, Team

NOW = datetime(2026, 2, 4, 12, tzinfo=UTC)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def people(make_person):
    return {name: make_person(name) for name in ("ann", "ben", "cat", "dan")}


@pytest.fixture
def platform(make_team, make_rotation, people):
    team = make_team("Platform", members=list(people.values()))
    make_rotation(team, OnCallRole.RESPONDER, [people["ann"], people["ben"]], name="Primary")
    make_rotation(team, OnCallRole.COMMANDER, [people["cat"]], name="Commanders")
    return team


def rotation_form(team, members, **fields):
    data = {
        "team": team.pk,
        "role": OnCallRole.RESPONDER,
        "name": "Secondary",
        "time_zone": "Europe/London",
        "starts_on": "2026-01-05",
        "handoff_time": "09:00",
        "period": Rotation.Period.WEEKLY,
        "period_days": "",
        "ends_on": "",
        "layer": "1",
        "window_starts": "",
        "window_ends": "",
        "members-TOTAL_FORMS": str(len(members)),
        "members-INITIAL_FORMS": "0",
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
    }
    for index, (position, user) in enumerate(members):
        data[f"members-{index}-position"] = "" if position is None else str(position)
        data[f"members-{index}-user"] = user.pk
    data.update(fields)
    return data


@pytest.mark.django_db
def test_roster_shows_each_team_and_role_for_seven_days(commander_client, platform, people):
    with time_machine.travel(NOW, tick=False):
        response = commander_client.get(reverse("admin:oncall_team_roster"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "This week&#x27;s roster" in page or "This week's roster" in page
    [entry] = response.context["teams"]
    assert entry["team"] == platform
    rows = {row["rotation"].name: row for row in entry["rows"]}
    assert set(rows) == {"Primary", "Commanders"}
    assert len(response.context["days"]) == 7
    assert response.context["days"][0] == date(2026, 2, 4)
    # ann's week (from 2 Feb) runs to Monday 9 Feb 09:00, when ben takes over.
    primary = rows["Primary"]["cells"]
    assert [stretch["user"] for stretch in primary[0]] == ["ann"]
    monday = primary[5]
    assert [stretch["user"] for stretch in monday] == ["ann", "ben"]
    assert monday[0]["to"] == utc(2026, 2, 9, 9)
    assert monday[1]["from"] == utc(2026, 2, 9, 9)
    assert "from 09:00" in page


@pytest.mark.django_db
def test_roster_marks_overrides(commander_client, platform, people, make_override):
    primary = Rotation.objects.get(name="Primary")
    make_override(primary, people["dan"], utc(2026, 2, 5, 12), utc(2026, 2, 5, 18), reason="Gig")
    response = commander_client.get(reverse("admin:oncall_team_roster"), {"start": "2026-02-05"})
    cell = response.context["teams"][0]["rows"][1]["cells"][0]
    assert [(s["user"], s["override"] is not None) for s in cell] == [
        ("ann", False),
        ("dan", True),
        ("ann", False),
    ]
    assert "(override)" in response.content.decode()


@pytest.mark.django_db
def test_roster_costs_the_same_queries_for_many_teams(
    commander_client, make_team, make_rotation, people, django_assert_max_num_queries
):
    for number in range(12):
        team = make_team(f"Team {number}")
        for role in (OnCallRole.RESPONDER, OnCallRole.COMMANDER):
            make_rotation(team, role, [people["ann"], people["ben"], people["cat"]])
    with django_assert_max_num_queries(9):
        response = commander_client.get(reverse("admin:oncall_team_roster"))
    assert len(response.context["teams"]) == 12


@pytest.mark.django_db
def test_roster_refuses_a_bad_start_with_a_message(commander_client, platform):
    response = commander_client.get(reverse("admin:oncall_team_roster"), {"start": "soon"})
    assert response.status_code == 200
    assert "YYYY-MM-DD" in response.content.decode()


@pytest.mark.django_db
def test_roster_can_show_one_team(commander_client, platform, make_team):
    make_team("Payments")
    response = commander_client.get(reverse("admin:oncall_team_roster"), {"team": "payments"})
    assert [entry["team"].slug for entry in response.context["teams"]] == ["payments"]


@pytest.mark.django_db
def test_team_page_says_who_is_on_call_now(commander_client, platform):
    with time_machine.travel(NOW, tick=False):
        response = commander_client.get(reverse("admin:oncall_team_change", args=[platform.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "On call now" in page
    assert "<b>ann</b>" in page and "<b>cat</b>" in page


@pytest.mark.django_db
def test_team_list_links_the_roster_and_costs_bounded_queries(
    commander_client, make_team, people, django_assert_max_num_queries
):
    for number in range(20):
        make_team(f"Team {number}", members=list(people.values()))
    with django_assert_max_num_queries(8):
        response = commander_client.get(reverse("admin:oncall_team_changelist"))
    assert reverse("admin:oncall_team_roster") in response.content.decode()


@pytest.mark.django_db
def test_rotation_list_costs_bounded_queries(
    commander_client, platform, make_rotation, people, django_assert_max_num_queries
):
    for number in range(15):
        make_rotation(platform, members=[people["ann"], people["dan"]], name=f"Extra {number}")
    with django_assert_max_num_queries(10):
        response = commander_client.get(reverse("admin:oncall_rotation_changelist"))
    assert "Extra 14" in response.content.decode()


@pytest.mark.django_db
def test_adding_a_rotation_keeps_the_members_order(commander_client, platform, people):
    data = rotation_form(platform, [(2, people["ann"]), (0, people["dan"]), (None, people["cat"])])
    response = commander_client.post(reverse("admin:oncall_rotation_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    rotation = Rotation.objects.get(name="Secondary")
    assert [m.user.username for m in rotation.members.order_by("position")] == [
        "dan",
        "ann",
        "cat",
    ]
    assert rotation.history.first().history_user.username == "alice"


@pytest.mark.django_db
def test_a_refused_rotation_shows_the_form_again_and_saves_nothing(
    commander_client, platform, people
):
    data = rotation_form(platform, [(0, people["ann"]), (1, people["ann"])])
    response = commander_client.post(reverse("admin:oncall_rotation_add"), data)
    assert response.status_code == 200
    assert "in the order twice" in response.content.decode()
    assert not Rotation.objects.filter(name="Secondary").exists()


@pytest.mark.django_db
def test_custom_period_without_days_is_a_form_error(commander_client, platform, people):
    data = rotation_form(platform, [(0, people["ann"])], period=Rotation.Period.CUSTOM)
    response = commander_client.post(reverse("admin:oncall_rotation_add"), data)
    assert response.status_code == 200
    assert "every how many days" in response.content.decode()
    assert not Rotation.objects.filter(name="Secondary").exists()


@pytest.mark.django_db
def test_an_override_for_someone_not_in_the_rotation_is_refused(
    commander_client, platform, people, make_person
):
    outsider = make_person("zed")
    primary = Rotation.objects.get(name="Primary")
    data = {
        "rotation": primary.pk,
        "user": people["dan"].pk,
        "covers": outsider.pk,
        "starts_at_0": "2026-02-05",
        "starts_at_1": "09:00:00",
        "ends_at_0": "2026-02-06",
        "ends_at_1": "09:00:00",
        "reason": "Holiday",
    }
    response = commander_client.post(reverse("admin:oncall_override_add"), data)
    assert response.status_code == 200
    assert "is neither a member of Primary" in response.content.decode()
    assert not Override.objects.exists()
    data["covers"] = people["ann"].pk
    response = commander_client.post(reverse("admin:oncall_override_add"), data)
    assert response.status_code == 302
    override = Override.objects.get()
    assert (override.covers, override.created_by.username) == (people["ann"], "alice")


@pytest.mark.django_db
def test_a_responder_may_add_overrides_but_not_teams(client, responder, platform, people):
    client.force_login(responder)
    assert client.get(reverse("admin:oncall_override_add")).status_code == 200
    assert client.get(reverse("admin:oncall_team_add")).status_code == 403
    assert client.get(reverse("admin:oncall_team_roster")).status_code == 200


@pytest.mark.django_db
def test_deleting_a_team_goes_through_the_service(commander_client, make_team):
    team = make_team("Short lived")
    url = reverse("admin:oncall_team_delete", args=[team.pk])
    response = commander_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Team.objects.filter(pk=team.pk).exists()
    assert Team.history.filter(id=team.pk, history_type="-").get().history_user.username == (
        "alice"
    )


@pytest.mark.django_db
def test_calendar_page_shows_the_feed_url_and_makes_a_new_one(client, responder, platform, people):
    client.force_login(responder)
    url = reverse("admin:oncall_my_calendar")
    response = client.get(url)
    assert response.status_code == 200
    old = feed_url(responder)
    assert old in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    response = client.post(url)
    assert response.status_code == 302
    assert feed_url(responder) != old
    assert client.get(old).status_code == 404
    assert OnCallProfile.objects.filter(user=responder).count() == 1


@pytest.mark.django_db
def test_rotation_page_window_needs_both_ends(commander_client, platform, people):
    data = rotation_form(platform, [(0, people["ann"])], window_starts="09:00")
    response = commander_client.post(reverse("admin:oncall_rotation_add"), data)
    assert response.status_code == 200
    assert "both ends" in response.content.decode()
    assert time(9) not in Rotation.objects.values_list("window_starts", flat=True)


@pytest.mark.django_db
def test_changing_a_rotation_reorders_and_removes_members(commander_client, platform, people):
    primary = Rotation.objects.get(name="Primary")
    ann, ben = primary.members.order_by("position")
    data = rotation_form(platform, [], name="Primary", time_zone="UTC")
    data.update(
        {
            "members-TOTAL_FORMS": "3",
            "members-INITIAL_FORMS": "2",
            "members-0-id": ann.pk,
            "members-0-rotation": primary.pk,
            "members-0-position": "1",
            "members-0-user": people["ann"].pk,
            "members-1-id": ben.pk,
            "members-1-rotation": primary.pk,
            "members-1-position": "0",
            "members-1-user": people["ben"].pk,
            "members-1-DELETE": "on",
            "members-2-rotation": primary.pk,
            "members-2-position": "0",
            "members-2-user": people["dan"].pk,
        }
    )
    url = reverse("admin:oncall_rotation_change", args=[primary.pk])
    response = commander_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    order = [m.user.username for m in primary.members.order_by("position")]
    assert order == ["dan", "ann"]


@pytest.mark.django_db
def test_adding_a_team_in_the_admin_refuses_a_second_default(commander_client, make_team, people):
    make_team("Platform", is_default=True)
    data = {"name": "Payments", "slug": "payments", "description": "", "is_default": "on"}
    data["members"] = [people["ann"].pk]
    response = commander_client.post(reverse("admin:oncall_team_add"), data)
    assert response.status_code == 200
    assert "Platform is the default team already" in response.content.decode()
    assert not Team.objects.filter(slug="payments").exists()
    del data["is_default"]
    assert commander_client.post(reverse("admin:oncall_team_add"), data).status_code == 302
    assert list(Team.objects.get(slug="payments").members.all()) == [people["ann"]]
