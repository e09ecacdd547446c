"""The schedule's API: teams, rotations and overrides, and who is on call."""

from datetime import UTC, date, datetime

import pytest
import time_machine
from rest_framework.test import APIClient

from oncall.models import OnCallRole, Override, Rotation, Team
from tests.api import client_for, errors
from tests.incidents.test_api import documented_validation_errors

TEAMS = "/api/v1/oncall/teams/"
ROTATIONS = "/api/v1/oncall/rotations/"
OVERRIDES = "/api/v1/oncall/overrides/"
NOW = "/api/v1/oncall/now/"


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def attrs(response) -> set:
    return {attr for attr, _ in errors(response)}


@pytest.fixture
def api(commander):
    return client_for(commander)


@pytest.fixture
def schema(db):
    return APIClient().get("/api/schema/", {"format": "json"}).json()


@pytest.fixture
def people(make_person):
    return {name: make_person(name) for name in ("ann", "ben", "cat", "dan")}


@pytest.fixture
def platform(make_team, make_rotation, people):
    team = make_team("Platform")
    make_rotation(team, OnCallRole.RESPONDER, [people["ann"], people["ben"]], name="Primary")
    make_rotation(team, OnCallRole.COMMANDER, [people["cat"]], name="Commanders")
    return team


ROTATION = {
    "team": "platform",
    "role": "responder",
    "name": "Follow the sun",
    "time_zone": "America/New_York",
    "starts_on": "2026-01-05",
    "handoff_time": "09:00",
    "period": "custom",
    "period_days": 3,
    "layer": 2,
    "window_starts": "08:00",
    "window_ends": "18:00",
    "members": ["dan", "ann"],
}


# --- teams ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_team_crud(api, people, api_service):
    response = api.post(TEAMS, {"name": "Payments", "members": ["ann", "ben"], "services": ["api"]})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["slug"], body["members"], body["services"]) == (
        "payments",
        ["ann", "ben"],
        ["api"],
    )
    assert response["Location"].endswith("/oncall/teams/payments/")
    response = api.patch(f"{TEAMS}payments/", {"description": "Money", "members": ["cat"]})
    assert response.status_code == 200
    assert (response.json()["description"], response.json()["members"]) == ("Money", ["cat"])
    assert [team["slug"] for team in api.get(TEAMS).json()["results"]] == ["payments"]
    assert api.delete(f"{TEAMS}payments/").status_code == 204
    assert not Team.objects.exists()


@pytest.mark.django_db
def test_team_refusals_name_the_field(api, make_team):
    make_team("Platform", is_default=True)
    assert attrs(api.post(TEAMS, {"name": "platform"})) == {"name"}
    assert attrs(api.post(TEAMS, {"name": "Other", "slug": "Not a slug"})) == {"slug"}
    response = api.post(TEAMS, {"name": "Other", "is_default": True})
    assert response.status_code == 400
    assert attrs(response) == {"is_default"}
    assert "Platform is the default team already" in response.json()["errors"][0]["detail"]
    assert attrs(api.post(TEAMS, {"name": "Other", "members": ["nobody"]})) == {"members"}
    assert Team.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("policy", [{}, [1], True, "first", 0, -1, 10**30])
def test_a_team_with_a_policy_that_is_no_id_is_a_documented_400(api, schema, policy):
    # An object where the id belongs was once a 500, then a 400 with undocumented codes.
    response = api.post(TEAMS, {"name": "Payments", "escalation_policy": policy})
    assert response.status_code == 400, response.content
    assert attrs(response) == {"escalation_policy"}
    assert set(errors(response)) <= documented_validation_errors(schema, TEAMS, "post")
    assert not Team.objects.exists()


@pytest.mark.django_db
def test_a_team_takes_its_policy_by_id_as_a_number_or_digits(api, make_policy):
    policy = make_policy(is_default=False)
    response = api.post(TEAMS, {"name": "Payments", "escalation_policy": str(policy.pk)})
    assert response.status_code == 201, response.content
    assert response.json()["escalation_policy"] == policy.pk


# --- rotations --------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotation_crud_keeps_the_members_order(api, platform, people):
    response = api.post(ROTATIONS, ROTATION)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["members"] == ["dan", "ann"]
    assert (body["period"], body["period_days"], body["layer"]) == ("custom", 3, 2)
    url = f"{ROTATIONS}{body['id']}/"
    response = api.patch(url, {"members": ["ann", "cat", "dan"], "period": "weekly"})
    assert response.status_code == 200
    assert response.json()["members"] == ["ann", "cat", "dan"]
    assert response.json()["period_days"] is None
    listed = api.get(ROTATIONS, {"team": "platform", "role": "responder"}).json()["results"]
    assert {row["name"] for row in listed} == {"Primary", "Follow the sun"}
    assert api.delete(url).status_code == 204
    assert not Rotation.objects.filter(pk=body["id"]).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, attr",
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"window_ends": None}, "window_ends"),
        ({"window_ends": "08:00"}, "window_ends"),
        ({"period_days": None}, "period_days"),
        ({"period_days": 0}, "period_days"),
        ({"ends_on": "2026-01-05"}, "ends_on"),
        ({"members": ["ann", "ann"]}, "members"),
        ({"members": ["ghost"]}, "members"),
        ({"name": "Primary"}, "name"),
        ({"role": "boss"}, "role"),
        ({"team": "nowhere"}, "team"),
        ({"handoff_time": "25:00"}, "handoff_time"),
    ],
)
def test_bad_rotations_are_400_naming_the_field(api, platform, people, change, attr):
    response = api.post(ROTATIONS, {**ROTATION, **change})
    assert response.status_code == 400, response.content
    assert attrs(response) == {attr}
    assert Rotation.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "members",
    [
        ["ann", [None, None]],
        [["ann"], ["ann"]],
        ["ann", 0, False, None, "x" * 1000, 10**40],
        ["ann", {"user": "ben"}],
        "ann",
    ],
)
def test_a_rotation_with_members_that_are_no_names_is_a_documented_400(
    api, schema, platform, people, members
):
    # A list inside the list was once a 500 (the twice-check hashed it).
    response = api.post(ROTATIONS, {**ROTATION, "members": members})
    assert response.status_code == 400, response.content
    assert attrs(response) == {"members"}
    assert set(errors(response)) <= documented_validation_errors(schema, ROTATIONS, "post")
    assert Rotation.objects.count() == 2


# --- overrides --------------------------------------------------------------------------


@pytest.mark.django_db
def test_override_crud(api, platform, people):
    primary = Rotation.objects.get(name="Primary")
    body = {
        "rotation": primary.pk,
        "user": "dan",
        "covers": "ann",
        "starts_at": "2026-02-03T09:00:00Z",
        "ends_at": "2026-02-04T09:00:00+01:00",
        "reason": "Dentist",
    }
    response = api.post(OVERRIDES, body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["user"], created["covers"], created["team"]) == ("dan", "ann", "platform")
    assert created["ends_at"] == "2026-02-04T08:00:00Z"
    assert created["created_by"] == "alice"
    url = f"{OVERRIDES}{created['id']}/"
    assert api.patch(url, {"covers": None}).json()["covers"] is None
    assert [row["id"] for row in api.get(OVERRIDES, {"team": "platform"}).json()["results"]] == [
        created["id"]
    ]
    assert api.delete(url).status_code == 204
    assert not Override.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, attr",
    [
        ({"ends_at": "2026-02-03T08:00:00Z"}, "ends_at"),
        ({"covers": "cat"}, "covers"),
        ({"covers": "dan"}, "covers"),
        ({"starts_at": "2026-02-03T09:00:00"}, "starts_at"),
        ({"rotation": 10**30}, "rotation"),
        ({"user": "ghost"}, "user"),
        ({"ends_at": "2029-02-03T09:00:00Z"}, "ends_at"),
    ],
)
def test_bad_overrides_are_400_naming_the_field(api, platform, people, change, attr):
    primary = Rotation.objects.get(name="Primary")
    body = {
        "rotation": primary.pk,
        "user": "dan",
        "starts_at": "2026-02-03T09:00:00Z",
        "ends_at": "2026-02-04T09:00:00Z",
        **change,
    }
    response = api.post(OVERRIDES, body)
    assert response.status_code == 400, response.content
    assert attrs(response) == {attr}
    assert not Override.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("rotation", [{}, [1], True, "first", "0", -5, 10**30])
def test_an_override_refused_on_every_field_is_a_documented_400(api, schema, platform, rotation):
    body = {
        "rotation": rotation,
        "user": "0",
        "covers": "0",
        "starts_at": "2026-02-03T09:00:00Z",
        "ends_at": "2026-02-04T09:00:00Z",
    }
    response = api.post(OVERRIDES, body)
    assert response.status_code == 400, response.content
    assert attrs(response) == {"rotation", "user", "covers"}
    assert set(errors(response)) <= documented_validation_errors(schema, OVERRIDES, "post")
    assert not Override.objects.exists()


# --- permissions ------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_permission_the_schedule_is_403(make_person, platform):
    nobody = client_for(make_person("eve", is_staff=True))
    for url in (TEAMS, ROTATIONS, OVERRIDES, NOW):
        assert nobody.get(url).status_code == 403
    assert nobody.post(TEAMS, {"name": "Mine"}).status_code == 403
    assert APIClient().get(NOW).status_code in (401, 403)


@pytest.mark.django_db
def test_a_responder_may_swap_shifts_but_not_change_rotations(responder, platform, people):
    api = client_for(responder)
    primary = Rotation.objects.get(name="Primary")
    assert api.get(ROTATIONS).status_code == 200
    assert api.patch(f"{ROTATIONS}{primary.pk}/", {"layer": 3}).status_code == 403
    assert api.delete(f"{TEAMS}platform/").status_code == 403
    response = api.post(
        OVERRIDES,
        {
            "rotation": primary.pk,
            "user": "bob",
            "starts_at": "2026-02-03T09:00:00Z",
            "ends_at": "2026-02-04T09:00:00Z",
        },
    )
    assert response.status_code == 201


# --- who is on call ---------------------------------------------------------------------


@pytest.mark.django_db
def test_now_says_who_is_on_call_at_a_time(api, platform, people, make_override):
    primary = Rotation.objects.get(name="Primary")
    override = make_override(primary, people["dan"], utc(2026, 1, 14), utc(2026, 1, 15))
    response = api.get(NOW, {"team": "platform", "role": "responder", "at": "2026-01-14T12:00Z"})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "at": "2026-01-14T12:00:00Z",
        "on_call": [
            {
                "team": "platform",
                "role": "responder",
                "user": "dan",
                "rotation": {"id": primary.pk, "name": "Primary", "layer": 1},
                "override": override.pk,
                "starts_at": "2026-01-14T00:00:00Z",
                "ends_at": "2026-01-15T00:00:00Z",
            }
        ],
    }
    everyone = api.get(NOW, {"at": "2026-01-13T10:00:00 01:00"}).json()["on_call"]
    assert sorted((row["role"], row["user"]) for row in everyone) == [
        ("commander", "cat"),
        ("responder", "ben"),
    ]


@pytest.mark.django_db
def test_now_defaults_to_the_present(api, platform):
    with time_machine.travel(utc(2026, 1, 6, 10), tick=False):
        response = api.get(NOW, {"role": "commander"})
    assert [row["user"] for row in response.json()["on_call"]] == ["cat"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, attr",
    [
        ({"at": "yesterday"}, "at"),
        ({"at": "2026-01-14T12:00"}, "at"),
        ({"at": "2026-13-40T12:00Z"}, "at"),
        ({"at": "0001-01-01T00:00+05:00"}, "at"),
        # The ends of the calendar: a shift either side would overflow.
        ({"at": "9999-12-31T12:00:00Z"}, "at"),
        ({"at": "0001-01-01T00:00Z"}, "at"),
        ({"role": "boss"}, "role"),
        ({"team": "nowhere"}, "team"),
    ],
)
def test_bad_now_queries_are_400_as_documented(api, schema, platform, query, attr):
    response = api.get(NOW, query)
    assert response.status_code == 400, response.content
    assert attrs(response) == {attr}
    assert set(errors(response)) <= documented_validation_errors(schema, NOW, "get")


@pytest.mark.django_db
def test_rotation_list_costs_the_same_queries_for_many(
    api, make_team, make_rotation, people, django_assert_max_num_queries
):
    team = make_team("Many")
    for number in range(25):
        make_rotation(team, members=[people["ann"], people["ben"]], name=f"R{number}")
    api.get(ROTATIONS)  # the key's first use stamps last_used_at
    with django_assert_max_num_queries(6):
        assert len(api.get(ROTATIONS).json()["results"]) == 25


@pytest.mark.django_db
def test_schedule_dates_are_plain_dates(api, platform):
    primary = api.get(ROTATIONS, {"team": "platform", "role": "responder"}).json()["results"][0]
    assert date.fromisoformat(primary["starts_on"]) == date(2026, 1, 5)
    assert primary["handoff_time"] == "09:00:00"
