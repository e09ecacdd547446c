"""Contact methods and paging rules: adding them, proving a method reaches its owner with
a test message's link, and the refusals that keep a rule able to page."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from incidents.errors import DomainError, StateConflict
from incidents.models import Notification, Source
from oncall.models import ContactMethod, PagingRule, Urgency
from oncall.services import contacts
from oncall.services.paging import plans_for
from oncall.vocabulary import Event
from tests.api import client_for, errors

LINK = re.compile(r"http://\S+/oncall/contacts/verify/(\S+)/")


def link_of_test_message(method) -> str:
    """The verification link of the latest test message sent to `method`."""
    row = Notification.objects.filter(event=Event.CONTACT_TEST, address=method.address).latest("pk")
    return LINK.search(row.body).group(0)


def path_of(link: str) -> str:
    return link.removeprefix("http://127.0.0.1:8000")


@pytest.mark.django_db
def test_a_new_method_is_unverified_and_pages_nobody(responder):
    contacts.contact_method_create(
        user=responder, kind="sms", address=" +447700900123 ", actor=responder, source=Source.API
    )
    method = ContactMethod.objects.get(user=responder)
    assert method.address == "+447700900123"
    assert method.verified_at is None
    # Until verified, a page falls back to the account's email address.
    [step] = plans_for([responder], Urgency.HIGH)[responder.pk]
    assert step["channel"] == "email"


@pytest.mark.django_db
def test_the_test_message_goes_to_the_method_with_a_link_and_is_stamped(responder, make_method):
    method = make_method(responder, "sms", "+447700900123", verified=False)
    with time_machine.travel("2026-03-02 10:00Z", tick=False):
        contacts.contact_method_send_test(method=method, actor=responder)
    [row] = Notification.objects.filter(event=Event.CONTACT_TEST)
    assert (row.channel, row.address, row.recipient) == ("sms", "+447700900123", responder)
    assert row.incident is None
    assert "/oncall/contacts/verify/" in row.body
    method.refresh_from_db()
    assert method.verification_sent_at.isoformat() == "2026-03-02T10:00:00+00:00"
    assert method.verified_at is None


@pytest.mark.django_db
def test_following_the_link_verifies_only_when_the_button_is_pressed(
    client, responder, make_method
):
    method = make_method(responder, "sms", "+447700900123", verified=False)
    contacts.contact_method_send_test(method=method, actor=responder)
    url = path_of(link_of_test_message(method))

    shown = client.get(url)
    assert shown.status_code == 200
    assert "+447700900123" in shown.content.decode()
    assert 'id="verify"' in shown.content.decode()
    method.refresh_from_db()
    assert method.verified_at is None  # a mail scanner fetching the link verifies nothing

    done = client.post(url)
    assert done.status_code == 200
    assert "Contact method verified" in done.content.decode()
    method.refresh_from_db()
    assert method.verified_at is not None
    assert method.history.latest().history_user == responder


@pytest.mark.django_db
def test_a_verified_method_is_what_pages_use(responder, make_method, make_rule):
    method = make_method(responder, "sms", "+447700900123")
    make_rule(method)
    [step] = plans_for([responder], Urgency.HIGH)[responder.pk]
    assert (step["channel"], step["address"]) == ("sms", "+447700900123")


@pytest.mark.django_db
def test_following_the_link_twice_changes_nothing_and_says_when(client, responder, make_method):
    method = make_method(responder, verified=False)
    url = path_of(contacts.verify_link(method))
    client.post(url)
    method.refresh_from_db()
    verified_at = method.verified_at

    again = client.post(url)
    assert again.status_code == 409
    assert "already verified" in again.content.decode()
    method.refresh_from_db()
    assert method.verified_at == verified_at


@pytest.mark.django_db
def test_changing_the_address_unverifies_and_voids_the_old_link(client, responder, make_method):
    method = make_method(responder, "sms", "+447700900123")
    old_link = path_of(contacts.verify_link(method))
    contacts.contact_method_update(
        method=method, address="+447700900999", actor=responder, source=Source.API
    )
    method.refresh_from_db()
    assert method.verified_at is None and method.verification_sent_at is None

    refused = client.post(old_link)
    assert refused.status_code == 410
    assert "no longer has" in refused.content.decode()
    method.refresh_from_db()
    assert method.verified_at is None


@pytest.mark.django_db
def test_changing_only_the_label_keeps_it_verified(responder, make_method):
    method = make_method(responder)
    method = contacts.contact_method_update(
        method=method, label="work", actor=responder, source=Source.API
    )
    assert method.verified_at is not None and method.label == "work"


@pytest.mark.django_db
def test_an_expired_link_is_refused_with_410(client, responder, make_method):
    method = make_method(responder, verified=False)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        url = path_of(contacts.verify_link(method))
        clock.shift(contacts.VERIFY_MAX_AGE + timedelta(minutes=1))
        refused = client.post(url)
    assert refused.status_code == 410
    assert "expired" in refused.content.decode()
    method.refresh_from_db()
    assert method.verified_at is None


@pytest.mark.django_db
def test_a_tampered_link_is_refused_with_400(client, responder, make_method):
    method = make_method(responder, verified=False)
    token = contacts.verify_token(method)
    forged = reverse(
        "oncall:verify-contact", args=[token[:-2] + ("AA" if token[-2:] != "AA" else "BB")]
    )
    assert client.get(forged).status_code == 400
    assert client.post(forged).status_code == 400
    method.refresh_from_db()
    assert method.verified_at is None


@pytest.mark.django_db
def test_a_second_test_message_within_a_minute_is_refused(responder, make_method):
    method = make_method(responder, verified=False)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        contacts.contact_method_send_test(method=method, actor=responder)
        with pytest.raises(StateConflict, match="less than a minute ago"):
            contacts.contact_method_send_test(method=method, actor=responder)
        clock.shift(timedelta(minutes=1, seconds=1))
        contacts.contact_method_send_test(method=method, actor=responder)
    assert Notification.objects.filter(event=Event.CONTACT_TEST).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "address", "message"),
    [
        ("email", "bob-at-example", "Enter an email address."),
        ("sms", "07700 900123", "international form"),
        ("webhook", "ftp://hooks.example.com/x", "http(s)://"),
        ("email", "   ", "Give the address to page."),
    ],
)
def test_an_address_its_channel_cannot_deliver_to_is_refused(responder, kind, address, message):
    with pytest.raises(DomainError, match=re.escape(message)) as refused:
        contacts.contact_method_create(
            user=responder, kind=kind, address=address, actor=responder, source=Source.API
        )
    assert refused.value.field == "address"
    assert not ContactMethod.objects.exists()


@pytest.mark.django_db
def test_a_bad_address_is_a_400_naming_it_in_the_api(responder):
    api = client_for(responder)
    response = api.post(
        "/api/v1/oncall/contact-methods/", {"kind": "sms", "address": "call me"}, format="json"
    )
    assert response.status_code == 400
    assert errors(response) == [("address", "invalid")]
    assert not ContactMethod.objects.exists()


@pytest.mark.django_db
def test_a_bad_address_is_a_form_error_keeping_what_was_typed(client, responder):
    client.force_login(responder)
    response = client.post(
        reverse("admin:oncall_contactmethod_add"),
        {"kind": "email", "address": "bob-at-example", "label": "home"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"address": ["Enter an email address."]}
    assert 'value="bob-at-example"' in response.content.decode()
    assert not ContactMethod.objects.exists()


@pytest.mark.django_db
def test_the_same_address_twice_is_refused(responder, make_method):
    make_method(responder, "sms", "+447700900123")
    with pytest.raises(DomainError, match="already has this sms address"):
        contacts.contact_method_create(
            user=responder, kind="sms", address="+447700900123", actor=responder, source=Source.API
        )


@pytest.mark.django_db
def test_nobody_changes_someone_elses_methods_without_the_permission(
    responder, commander, make_method
):
    method = make_method(responder)
    with pytest.raises(DomainError, match="only your own"):
        contacts.contact_method_update(
            method=method, address="evil@example.com", actor=commander, source=Source.API
        )
    method.refresh_from_db()
    assert method.address == "bob+pager@example.com"


@pytest.mark.django_db
def test_deleting_a_method_removes_its_rules(responder, make_method, make_rule):
    method = make_method(responder)
    make_rule(method)
    contacts.contact_method_delete(method=method, actor=responder, source=Source.API)
    assert not ContactMethod.objects.exists() and not PagingRule.objects.exists()


# --- paging rules ---------------------------------------------------------------------


def rule_fields(method, **changes) -> dict:
    fields = {
        "user": method.user,
        "urgency": Urgency.HIGH,
        "contact_method": method,
        "delay": timedelta(0),
        "repeat_every": None,
        "repeat_times": 0,
        "actor": method.user,
        "source": Source.API,
    }
    fields.update(changes)
    return fields


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"repeat_times": 3}, "repeat_every"),
        ({"delay": timedelta(hours=24, seconds=1)}, "delay"),
        ({"delay": timedelta(seconds=-1)}, "delay"),
        ({"repeat_times": 2, "repeat_every": timedelta(seconds=30)}, "repeat_every"),
        ({"repeat_times": 100, "repeat_every": timedelta(minutes=5)}, "repeat_times"),
        ({"urgency": "urgent"}, "urgency"),
    ],
)
def test_a_rule_that_could_not_page_as_written_is_refused(responder, make_method, changes, field):
    method = make_method(responder)
    with pytest.raises(DomainError) as refused:
        contacts.paging_rule_save(**rule_fields(method, **changes))
    assert refused.value.field == field
    assert not PagingRule.objects.exists()


@pytest.mark.django_db
def test_a_rule_must_use_a_method_of_its_own_person(responder, commander, make_method):
    theirs = make_method(commander)
    with pytest.raises(DomainError, match="bob's own contact methods") as refused:
        contacts.paging_rule_save(**rule_fields(theirs, user=responder, actor=responder))
    assert refused.value.field == "contact_method"


@pytest.mark.django_db
def test_changing_a_rule_keeps_it_one_rule(responder, make_method, make_rule):
    method = make_method(responder)
    rule = make_rule(method)
    changed = contacts.paging_rule_save(
        **rule_fields(method, delay=timedelta(minutes=5)), rule=rule
    )
    assert changed.pk == rule.pk
    assert PagingRule.objects.get().delay == timedelta(minutes=5)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address",
    [
        "http://hooks.example.com/pager",  # not https
        "https://127.0.0.1/hook",
        "https://localhost:8080/hook",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",  # the cloud's metadata service
        "https://[::1]/hook",
        "https://db.internal/hook",
    ],
)
def test_a_personal_webhook_cannot_aim_the_worker_at_the_internal_network(responder, address):
    with pytest.raises(DomainError, match="https|public address"):
        contacts.contact_method_create(
            user=responder, kind="webhook", address=address, actor=responder, source=Source.API
        )
    assert not ContactMethod.objects.filter(user=responder).exists()


@pytest.mark.django_db
def test_a_closed_network_may_allow_private_webhooks(responder, settings):
    settings.ONCALL_PRIVATE_WEBHOOKS = True
    method = contacts.contact_method_create(
        user=responder, kind="slack", address="http://10.0.0.5/hook", actor=responder,
        source=Source.API,
    )  # fmt: skip
    assert method.address == "http://10.0.0.5/hook"
