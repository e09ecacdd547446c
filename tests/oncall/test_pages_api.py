"""The pages API (read, filter, acknowledge) and the caller's own contact methods and
paging rules, as an integration or a person's script uses them."""

import pytest

from incidents import extensions
from incidents.models import Notification, Status
from oncall.models import ContactMethod, Page, PagingRule
from oncall.services.paging import stop_pages_on_transition
from oncall.vocabulary import Event
from tests.api import client_for, errors

PAGES = "/api/v1/pages/"
METHODS = "/api/v1/oncall/contact-methods/"
RULES = "/api/v1/oncall/paging-rules/"


@pytest.fixture(autouse=True)
def engine_alone():
    # Declaring pages nobody by itself: each test sees only the pages it starts.
    with extensions.only(stop_pages_on_transition):
        yield


@pytest.fixture
def incident(declare):
    return declare()


@pytest.fixture
def bob_page(incident, responder, page_by_hand):
    return page_by_hand(incident, responder, why="as technical lead").pages[0]


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


# --- pages ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_page_reads_with_its_plan_and_state(bob_page, commander):
    response = client_for(commander).get(f"{PAGES}{bob_page.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["incident"] == bob_page.incident.reference
    assert body["user"] == "bob"
    assert body["state"] == "open"
    assert body["steps_sent"] == 1
    assert body["plan"] == [{"after": 0, "channel": "email", "address": "bob@example.com"}]
    assert body["message"] == "as technical lead"


@pytest.mark.django_db
def test_someone_elses_page_shows_its_channels_not_their_addresses(
    bob_page, responder, make_person
):
    colleague = make_person("carla", "Responders", is_staff=True)
    seen = client_for(colleague).get(f"{PAGES}{bob_page.pk}/").json()
    assert seen["plan"] == [{"after": 0, "channel": "email"}]
    own = client_for(responder).get(f"{PAGES}{bob_page.pk}/").json()
    assert own["plan"][0]["address"] == "bob@example.com"


@pytest.mark.django_db
def test_pages_of_a_confidential_incident_are_hidden_from_those_who_may_not_see_it(
    declare, security_type, responder, outsider, security_member, page_by_hand, bob_page
):
    secret = declare(title="Leak", incident_type=security_type, confidential=True)
    [hidden] = page_by_hand(secret, responder).pages

    outsiders = client_for(outsider)
    assert ids(outsiders.get(PAGES)) == [bob_page.pk]
    assert outsiders.get(f"{PAGES}{hidden.pk}/").status_code == 404
    assert outsiders.post(f"{PAGES}{hidden.pk}/acknowledge/").status_code == 404
    assert set(ids(client_for(security_member).get(PAGES))) == {bob_page.pk, hidden.pk}


@pytest.mark.django_db
def test_pages_filter_by_incident_user_and_state(
    declare, commander, responder, outsider, page_by_hand
):
    first, second = declare(), declare(title="Search is slow")
    [bob_first] = page_by_hand(first, responder).pages
    [mallory_first] = page_by_hand(first, outsider).pages
    [bob_second] = page_by_hand(second, responder).pages
    client_for(responder).post(f"{PAGES}{bob_second.pk}/acknowledge/")

    api = client_for(commander)
    assert set(ids(api.get(PAGES, {"incident": first.reference}))) == {
        bob_first.pk,
        mallory_first.pk,
    }
    assert set(ids(api.get(PAGES, {"user": "bob"}))) == {bob_first.pk, bob_second.pk}
    assert set(ids(api.get(PAGES, {"open": "true"}))) == {bob_first.pk, mallory_first.pk}
    assert ids(api.get(PAGES, {"acknowledged": "true"})) == [bob_second.pk]
    assert set(ids(api.get(PAGES, {"acknowledged": "false"}))) == {bob_first.pk, mallory_first.pk}


@pytest.mark.django_db
def test_pages_list_in_cursor_pages_newest_first(declare, commander, make_person, page_by_hand):
    incident = declare()
    people = [make_person(f"p{number}", "Responders") for number in range(5)]
    for person in people:
        page_by_hand(incident, person)
    newest_first = list(Page.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))

    api = client_for(commander)
    first = api.get(PAGES, {"page_size": 2}).json()
    assert [row["id"] for row in first["results"]] == newest_first[:2]
    assert "count" not in first
    second = api.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == newest_first[2:4]

    response = api.get(PAGES, {"page_size": 0})
    assert response.status_code == 400
    assert errors(response) == [("page_size", "invalid")]


@pytest.mark.django_db
def test_the_page_list_costs_the_same_few_queries_at_any_size(
    declare, commander, make_person, page_by_hand, django_assert_max_num_queries
):
    incident = declare()
    for number in range(30):
        page_by_hand(incident, make_person(f"p{number}", "Responders"))
    api = client_for(commander)
    with django_assert_max_num_queries(8):
        response = api.get(PAGES)
    assert len(response.json()["results"]) == 30


@pytest.mark.django_db
def test_the_person_paged_acknowledges_their_page(bob_page, responder):
    response = client_for(responder).post(f"{PAGES}{bob_page.pk}/acknowledge/")
    assert response.status_code == 200
    assert response.json()["state"] == "acknowledged"
    assert response.json()["acknowledged_via"] == "api"
    bob_page.incident.refresh_from_db()
    assert bob_page.incident.status == Status.INVESTIGATING


@pytest.mark.django_db
def test_acknowledging_twice_is_a_409(bob_page, responder):
    api = client_for(responder)
    api.post(f"{PAGES}{bob_page.pk}/acknowledge/")
    again = api.post(f"{PAGES}{bob_page.pk}/acknowledge/")
    assert again.status_code == 409
    assert errors(again) == [(None, "conflict")]
    assert "already acknowledged" in again.json()["errors"][0]["detail"]


@pytest.mark.django_db
def test_someone_else_may_not_acknowledge_a_page(bob_page, outsider):
    response = client_for(outsider).post(f"{PAGES}{bob_page.pk}/acknowledge/")
    assert response.status_code == 403
    bob_page.refresh_from_db()
    assert bob_page.acknowledged_at is None


@pytest.mark.django_db
def test_the_incident_commander_may_acknowledge_a_page_for_someone(
    declare, commander, responder, page_by_hand
):
    incident = declare(commander=commander)
    [page] = page_by_hand(incident, responder).pages
    response = client_for(commander).post(f"{PAGES}{page.pk}/acknowledge/")
    assert response.status_code == 200
    page.refresh_from_db()
    assert page.acknowledged_at is not None


@pytest.mark.django_db
def test_pages_are_read_only(bob_page, commander):
    api = client_for(commander)
    assert api.patch(f"{PAGES}{bob_page.pk}/", {"reason": "x"}).status_code == 405
    assert api.delete(f"{PAGES}{bob_page.pk}/").status_code == 405


# --- contact methods ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_person_adds_lists_and_changes_their_own_methods(responder, commander, make_method):
    make_method(commander)  # someone else's: never listed
    api = client_for(responder)
    created = api.post(METHODS, {"kind": "sms", "address": "+447700900123", "label": "mobile"})
    assert created.status_code == 201
    body = created.json()
    assert body["verified_at"] is None and body["label"] == "mobile"
    assert created["Location"].endswith(f"{METHODS}{body['id']}/")

    assert [row["address"] for row in api.get(METHODS).json()["results"]] == ["+447700900123"]
    changed = api.patch(f"{METHODS}{body['id']}/", {"label": "work mobile"})
    assert changed.status_code == 200 and changed.json()["label"] == "work mobile"
    assert ContactMethod.objects.get(pk=body["id"]).address == "+447700900123"


@pytest.mark.django_db
def test_a_new_address_through_the_api_is_unverified(responder, make_method):
    method = make_method(responder, "sms", "+447700900123")
    response = client_for(responder).patch(f"{METHODS}{method.pk}/", {"address": "+447700900999"})
    assert response.status_code == 200
    assert response.json()["verified_at"] is None


@pytest.mark.django_db
def test_someone_elses_method_is_no_such_method(responder, commander, make_method):
    theirs = make_method(commander)
    api = client_for(responder)
    assert api.get(f"{METHODS}{theirs.pk}/").status_code == 404
    assert api.patch(f"{METHODS}{theirs.pk}/", {"label": "x"}).status_code == 404
    assert api.delete(f"{METHODS}{theirs.pk}/").status_code == 404
    assert api.post(f"{METHODS}{theirs.pk}/test/").status_code == 404
    assert ContactMethod.objects.filter(pk=theirs.pk).exists()


@pytest.mark.django_db
def test_an_unknown_kind_is_a_400(responder):
    response = client_for(responder).post(METHODS, {"kind": "pigeon", "address": "roof"})
    assert response.status_code == 400
    assert errors(response) == [("kind", "invalid_choice")]


@pytest.mark.django_db
def test_the_test_endpoint_sends_the_verification_message_once_a_minute(responder, make_method):
    method = make_method(responder, verified=False)
    api = client_for(responder)
    sent = api.post(f"{METHODS}{method.pk}/test/")
    assert sent.status_code == 200
    assert sent.json()["verification_sent_at"] is not None
    [row] = Notification.objects.filter(event=Event.CONTACT_TEST)
    assert row.address == method.address
    assert "/oncall/contacts/verify/" in row.body

    again = api.post(f"{METHODS}{method.pk}/test/")
    assert again.status_code == 409
    assert Notification.objects.filter(event=Event.CONTACT_TEST).count() == 1


@pytest.mark.django_db
def test_removing_a_method_removes_its_rules(responder, make_method, make_rule):
    method = make_method(responder)
    make_rule(method)
    assert client_for(responder).delete(f"{METHODS}{method.pk}/").status_code == 204
    assert not ContactMethod.objects.exists() and not PagingRule.objects.exists()


@pytest.mark.django_db
def test_contact_methods_need_a_signed_in_caller(client):
    assert client.get(METHODS).status_code in (401, 403)


# --- paging rules ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_person_adds_and_changes_a_rule_in_seconds(responder, make_method):
    method = make_method(responder, "sms", "+447700900123")
    api = client_for(responder)
    created = api.post(
        RULES,
        {
            "urgency": "high",
            "contact_method": method.pk,
            "delay": 300,
            "repeat_every": 600,
            "repeat_times": 3,
        },
    )
    assert created.status_code == 201
    assert created.json() == {
        "id": created.json()["id"],
        "urgency": "high",
        "contact_method": method.pk,
        "delay": 300,
        "repeat_every": 600,
        "repeat_times": 3,
    }
    changed = api.patch(f"{RULES}{created.json()['id']}/", {"repeat_times": 1})
    assert changed.status_code == 200
    assert (changed.json()["delay"], changed.json()["repeat_times"]) == (300, 1)


@pytest.mark.django_db
def test_a_rule_cannot_use_someone_elses_method(responder, commander, make_method):
    theirs = make_method(commander)
    response = client_for(responder).post(RULES, {"urgency": "high", "contact_method": theirs.pk})
    assert response.status_code == 400
    assert errors(response) == [("contact_method", "does_not_exist")]
    assert not PagingRule.objects.exists()


@pytest.mark.django_db
def test_a_repeat_without_interval_is_a_400_naming_it(responder, make_method):
    method = make_method(responder)
    response = client_for(responder).post(
        RULES, {"urgency": "high", "contact_method": method.pk, "repeat_times": 2}
    )
    assert response.status_code == 400
    assert errors(response) == [("repeat_every", "invalid")]
    assert not PagingRule.objects.exists()


@pytest.mark.django_db
def test_a_delay_over_a_day_is_a_400(responder, make_method):
    method = make_method(responder)
    response = client_for(responder).post(
        RULES, {"urgency": "low", "contact_method": method.pk, "delay": 86401}
    )
    assert response.status_code == 400
    assert errors(response) == [("delay", "max_value")]


@pytest.mark.django_db
def test_a_person_lists_and_removes_only_their_rules(responder, commander, make_method, make_rule):
    mine = make_rule(make_method(responder))
    theirs = make_rule(make_method(commander))
    api = client_for(responder)
    assert [row["id"] for row in api.get(RULES).json()["results"]] == [mine.pk]
    assert api.delete(f"{RULES}{theirs.pk}/").status_code == 404
    assert api.delete(f"{RULES}{mine.pk}/").status_code == 204
    assert list(PagingRule.objects.values_list("pk", flat=True)) == [theirs.pk]
