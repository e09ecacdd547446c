"""Paging in the admin: a person's own contact methods and rules, the test message
action, and the read-only pages list with its acknowledge action."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from incidents import extensions
from incidents.models import Notification, Status
from oncall.models import ContactMethod, Page, PagingRule
from oncall.services.paging import stop_pages_on_transition
from oncall.vocabulary import Event

METHODS = reverse("admin:oncall_contactmethod_changelist")
METHOD_ADD = reverse("admin:oncall_contactmethod_add")
RULE_ADD = reverse("admin:oncall_pagingrule_add")
PAGES = reverse("admin:oncall_page_changelist")


@pytest.fixture(autouse=True)
def engine_alone():
    # Declaring pages nobody by itself: each test sees only the pages it starts.
    with extensions.only(stop_pages_on_transition):
        yield


def shown(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def listed(response) -> list:
    return list(response.context["cl"].result_list)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")


# --- contact methods and rules --------------------------------------------------------


@pytest.mark.django_db
def test_a_person_sees_only_their_own_methods(client, responder, commander, make_method):
    mine = make_method(responder)
    theirs = make_method(commander)
    client.force_login(responder)
    assert listed(client.get(METHODS)) == [mine]
    change = reverse("admin:oncall_contactmethod_change", args=[theirs.pk])
    assert client.get(change).status_code == 302  # "does not exist", back to the list
    assert client.post(change, {"kind": "email", "address": "x@example.com"}).status_code == 302
    theirs.refresh_from_db()
    assert theirs.address == "alice+pager@example.com"


@pytest.mark.django_db
def test_someone_who_manages_everyone_sees_their_own_first_and_everyone_on_asking(
    client, superuser, responder, make_method
):
    mine = make_method(superuser)
    bobs = make_method(responder)
    client.force_login(superuser)
    assert listed(client.get(METHODS)) == [mine]
    assert set(listed(client.get(METHODS, {"whose": "all"}))) == {mine, bobs}


@pytest.mark.django_db
def test_adding_a_method_makes_it_the_persons_own_and_unverified(client, responder):
    client.force_login(responder)
    response = client.post(
        METHOD_ADD, {"kind": "sms", "address": "+447700900123", "label": "mobile"}, follow=True
    )
    method = ContactMethod.objects.get()
    assert method.user == responder and method.verified_at is None
    assert any("not verified" in text for text in shown(response))
    assert method.history.get().history_user == responder


@pytest.mark.django_db
def test_a_new_address_in_the_admin_is_unverified_again(client, responder, make_method):
    method = make_method(responder, "sms", "+447700900123")
    client.force_login(responder)
    client.post(
        reverse("admin:oncall_contactmethod_change", args=[method.pk]),
        {
            "kind": "sms",
            "address": "+447700900999",
            "label": "",
            "paging_rules-TOTAL_FORMS": "0",
            "paging_rules-INITIAL_FORMS": "0",
        },
    )
    method.refresh_from_db()
    assert method.address == "+447700900999"
    assert method.verified_at is None


@pytest.mark.django_db
def test_the_test_message_action_sends_the_verification_link(client, responder, make_method):
    method = make_method(responder, verified=False)
    client.force_login(responder)
    response = client.post(
        METHODS, {"action": "send_test", "_selected_action": [method.pk]}, follow=True
    )
    assert "Sent a test message to 1 contact method(s)." in shown(response)
    [row] = Notification.objects.filter(event=Event.CONTACT_TEST)
    assert row.address == method.address and "/oncall/contacts/verify/" in row.body


@pytest.mark.django_db
def test_a_person_sees_only_their_own_rules(client, responder, commander, make_method, make_rule):
    mine = make_rule(make_method(responder))
    make_rule(make_method(commander))
    client.force_login(responder)
    assert listed(client.get(reverse("admin:oncall_pagingrule_changelist"))) == [mine]


@pytest.mark.django_db
def test_a_rule_offers_only_the_persons_own_methods(client, responder, commander, make_method):
    mine = make_method(responder)
    make_method(commander)
    client.force_login(responder)
    form = client.get(RULE_ADD).context["adminform"].form
    assert list(form.fields["contact_method"].queryset) == [mine]
    assert "user" not in form.fields


@pytest.mark.django_db
def test_a_rule_repeating_without_interval_is_a_form_error(client, responder, make_method):
    method = make_method(responder)
    client.force_login(responder)
    response = client.post(
        RULE_ADD,
        {
            "urgency": "high",
            "contact_method": method.pk,
            "delay": "00:05:00",
            "repeat_every": "",
            "repeat_times": "3",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "repeat_every": ["Say how often to repeat."]
    }
    assert not PagingRule.objects.exists()


@pytest.mark.django_db
def test_a_rule_added_in_the_admin_pages_as_written(client, responder, make_method):
    method = make_method(responder, "sms", "+447700900123")
    client.force_login(responder)
    client.post(
        RULE_ADD,
        {
            "urgency": "high",
            "contact_method": method.pk,
            "delay": "00:05:00",
            "repeat_every": "00:10:00",
            "repeat_times": "3",
        },
    )
    rule = PagingRule.objects.get()
    assert rule.user == responder
    assert (rule.delay.seconds, rule.repeat_every.seconds, rule.repeat_times) == (300, 600, 3)


# --- pages ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_pages_list_hides_pages_of_incidents_one_may_not_see(
    client, declare, security_type, responder, outsider, page_by_hand
):
    open_page = page_by_hand(declare(), responder).pages[0]
    secret = declare(title="Leak", incident_type=security_type, confidential=True)
    page_by_hand(secret, responder)
    client.force_login(outsider)
    response = client.get(PAGES)
    assert listed(response) == [open_page]
    assert secret.reference not in response.content.decode()


@pytest.mark.django_db
def test_the_pages_list_costs_the_same_few_queries_at_any_size(
    client, declare, commander, make_person, page_by_hand, django_assert_max_num_queries
):
    incident = declare()
    for number in range(25):
        page_by_hand(incident, make_person(f"p{number}", "Responders"))
    client.force_login(commander)
    with django_assert_max_num_queries(15):
        response = client.get(PAGES)
    assert len(listed(response)) == 25
    assert "1 of 1" in response.content.decode()


@pytest.mark.django_db
def test_the_pages_list_filters_by_state(client, declare, commander, responder, page_by_hand):
    incident = declare()
    [open_page] = page_by_hand(incident, commander, reason=Page.Reason.ESCALATION).pages
    [answered] = page_by_hand(incident, responder).pages
    client.force_login(responder)
    client.post(PAGES, {"action": "acknowledge", "_selected_action": [answered.pk]})
    assert listed(client.get(PAGES, {"state": "acknowledged"})) == [answered]
    # Bob's acknowledgement acknowledged the incident, which stopped Alice's page.
    assert listed(client.get(PAGES, {"state": "stopped"})) == [open_page]
    assert listed(client.get(PAGES, {"state": "open"})) == []


@pytest.mark.django_db
def test_a_page_shows_its_outbox_rows_and_their_delivery(
    client, declare, commander, responder, page_by_hand
):
    page = page_by_hand(declare(), responder).pages[0]
    row = Notification.objects.get(event=Event.PAGE, recipient=responder)
    client.force_login(commander)
    body = client.get(reverse("admin:oncall_page_change", args=[page.pk])).content.decode()
    assert reverse("admin:incidents_notification_change", args=[row.pk]) in body
    assert "Pending" in body and "bob@example.com" in body
    assert 'name="_save"' not in body  # read-only


@pytest.mark.django_db
def test_the_person_paged_acknowledges_from_the_list(client, declare, responder, page_by_hand):
    incident = declare()
    page = page_by_hand(incident, responder).pages[0]
    client.force_login(responder)
    response = client.post(
        PAGES, {"action": "acknowledge", "_selected_action": [page.pk]}, follow=True
    )
    assert "Acknowledged 1 page(s)." in shown(response)
    page.refresh_from_db()
    assert page.acknowledged_via == "admin"
    incident.refresh_from_db()
    assert incident.status == Status.INVESTIGATING


@pytest.mark.django_db
def test_nobody_else_acknowledges_someone_elses_page(
    client, declare, responder, outsider, page_by_hand
):
    page = page_by_hand(declare(), responder).pages[0]
    client.force_login(outsider)
    response = client.post(
        PAGES, {"action": "acknowledge", "_selected_action": [page.pk]}, follow=True
    )
    assert any("only they, or the commander" in text for text in shown(response))
    page.refresh_from_db()
    assert page.acknowledged_at is None


@pytest.mark.django_db
def test_the_incident_commander_acknowledges_for_someone(
    client, declare, commander, responder, page_by_hand
):
    page = page_by_hand(declare(commander=commander), responder).pages[0]
    client.force_login(commander)
    client.post(PAGES, {"action": "acknowledge", "_selected_action": [page.pk]})
    page.refresh_from_db()
    assert page.acknowledged_at is not None
