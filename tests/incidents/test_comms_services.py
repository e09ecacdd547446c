"""The communication settings' services: channel targets and message templates."""

import pytest

from incidents import services
from incidents.errors import DomainError
from incidents.models import Audience, ChannelKind, ChannelTarget, MessageTemplate


def create(actor, **overrides):
    fields = {
        "name": "Ops hook",
        "kind": ChannelKind.WEBHOOK,
        "address": "https://hooks.example.com/sitrep",
        "actor": actor,
    }
    fields.update(overrides)
    return services.channel_target_create(**fields)


def refusal(call) -> tuple[str | None, str]:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value.field, caught.value.message


# --- channel targets: addresses -------------------------------------------------------


@pytest.mark.parametrize(
    "kind, address, message",
    [
        (ChannelKind.EMAIL, "not-an-address", "Enter an email address."),
        (ChannelKind.EMAIL, "https://hooks.example.com/x", "Enter an email address."),
        (ChannelKind.WEBHOOK, "hooks.example.com/x", "Enter the http(s):// URL to post to."),
        (ChannelKind.SLACK, "ops@example.com", "Enter the http(s):// URL to post to."),
        (ChannelKind.WEBHOOK, "   ", "Give the address to deliver to."),
    ],
)
def test_an_address_its_channel_cannot_deliver_to_is_refused(commander, kind, address, message):
    assert refusal(lambda: create(commander, kind=kind, address=address)) == ("address", message)
    assert not ChannelTarget.objects.exists()


def test_an_unknown_kind_is_refused(commander):
    field, message = refusal(lambda: create(commander, kind="pager"))
    assert field == "kind"
    assert "email" in message and "webhook" in message


def test_a_taken_name_is_refused(commander):
    create(commander)
    field, message = refusal(lambda: create(commander, kind=ChannelKind.SLACK))
    assert field == "name"
    assert "already exists" in message


def test_addresses_each_channel_takes_are_stored_stripped(commander):
    email, _ = create(commander, name="List", kind=ChannelKind.EMAIL, address=" ops@example.com ")
    slack, _ = create(commander, name="Chat", kind=ChannelKind.SLACK, address="https://x.test/h")
    assert email.address == "ops@example.com"
    assert slack.address == "https://x.test/h"


def test_changing_only_the_kind_checks_the_address_again(commander):
    target, _ = create(commander, kind=ChannelKind.EMAIL, address="ops@example.com")
    assert refusal(
        lambda: services.channel_target_update(
            target=target, kind=ChannelKind.WEBHOOK, actor=commander
        )
    ) == ("address", "Enter the http(s):// URL to post to.")
    target.refresh_from_db()
    assert target.kind == ChannelKind.EMAIL


def test_update_refuses_fields_it_does_not_own(commander):
    target, _ = create(commander)
    field, message = refusal(
        lambda: services.channel_target_update(target=target, pk=99, actor=commander)
    )
    assert "pk" in message


# --- channel targets: the signing secret ----------------------------------------------


def test_a_webhook_given_no_secret_gets_one_shown_once(commander):
    target, generated = create(commander)
    target.refresh_from_db()
    assert len(generated) >= 32
    assert target.secret == generated


def test_a_webhook_given_a_secret_keeps_it(commander):
    target, generated = create(commander, secret="s3cret")
    target.refresh_from_db()
    assert (target.secret, generated) == ("s3cret", "")


def test_other_channels_get_no_generated_secret(commander):
    target, generated = create(commander, kind=ChannelKind.SLACK, address="https://x.test/h")
    assert (target.secret, generated) == ("", "")


def test_a_blank_secret_on_edit_keeps_the_current_one(commander):
    target, first = create(commander)
    target, generated = services.channel_target_update(
        target=target, address="https://hooks.example.com/v2", secret="", actor=commander
    )
    target.refresh_from_db()
    assert (target.secret, generated) == (first, "")
    assert target.address == "https://hooks.example.com/v2"


def test_a_secret_typed_on_edit_replaces_the_current_one(commander):
    target, _ = create(commander)
    services.channel_target_update(target=target, secret="rotated", actor=commander)
    target.refresh_from_db()
    assert target.secret == "rotated"


def test_a_target_turned_into_a_webhook_gets_a_secret(commander):
    target, _ = create(commander, kind=ChannelKind.SLACK, address="https://x.test/h")
    target, generated = services.channel_target_update(
        target=target, kind=ChannelKind.WEBHOOK, actor=commander
    )
    target.refresh_from_db()
    assert generated and target.secret == generated


def test_a_secret_longer_than_the_column_is_refused(commander):
    assert refusal(lambda: create(commander, secret="x" * 201)) == (
        "secret",
        "At most 200 characters.",
    )


def test_history_names_the_acting_user_and_never_the_secret(commander):
    target, _ = create(commander)
    services.channel_target_update(target=target, enabled=False, actor=commander)
    rows = list(target.history.order_by("history_id"))
    assert [row.history_user for row in rows] == [commander, commander]
    assert [row.enabled for row in rows] == [True, False]
    assert not hasattr(rows[0], "secret")


# --- message templates ----------------------------------------------------------------


def save_template(actor, **overrides):
    fields = {
        "slug": "handover",
        "name": "Handover",
        "audience": Audience.INTERNAL,
        "subject": "{{ incident.reference }} handed over",
        "body": "{{ message }}",
        "actor": actor,
    }
    fields.update(overrides)
    return services.message_template_save(**fields)


@pytest.mark.parametrize(
    "field, text",
    [
        ("subject", "{% if incident.confidential %}Secret"),
        ("body", "{{ incident.title|no_such_filter }}"),
        ("body", "{% load no_such_library %}"),
    ],
)
def test_a_template_that_does_not_compile_is_refused(commander, field, text):
    field_named, message = refusal(lambda: save_template(commander, **{field: text}))
    assert field_named == field
    assert message.startswith("Template error: ")
    assert not MessageTemplate.objects.filter(slug="handover").exists()


@pytest.mark.parametrize(
    "text, tag",
    [
        ('{% include "admin/base.html" %}', "include"),
        ('{% if incident %}{% include "registration/locked_out.html" %}{% endif %}', "include"),
        ('{% extends "base.html" %}', "extends"),
        ("{% debug %}", "debug"),
    ],
)
def test_a_template_cannot_reach_other_templates_or_the_workers_state(commander, text, tag):
    field, message = refusal(lambda: save_template(commander, body=text))
    assert (field, message) == ("body", f"Messages cannot use {{% {tag} %}}.")
    assert not MessageTemplate.objects.filter(slug="handover").exists()


def test_a_template_cannot_load_tag_libraries(commander):
    # The static and admin tag libraries are installed, but not for messages.
    field, message = refusal(lambda: save_template(commander, body="{% load static admin_list %}"))
    assert field == "body" and "static" in message


def test_a_template_is_saved_with_the_acting_user(commander):
    template = save_template(commander)
    template = save_template(commander, template=template, body="{{ message }} (edited)")
    template.refresh_from_db()
    assert template.body == "{{ message }} (edited)"
    assert [row.history_user for row in template.history.all()] == [commander, commander]


def test_a_refused_edit_leaves_the_template_as_it_was(commander):
    template = save_template(commander)
    refusal(lambda: save_template(commander, template=template, body="{% endif %}"))
    template.refresh_from_db()
    assert template.body == "{{ message }}"


def test_an_unknown_audience_is_refused(commander):
    field, _ = refusal(lambda: save_template(commander, audience="everyone"))
    assert field == "audience"


def test_the_default_templates_pass_the_same_check(db):
    # The data migration writes them without a service (it has only historical models):
    # this is where a broken default would be caught.
    from incidents.defaults import MESSAGE_TEMPLATES

    for row in MESSAGE_TEMPLATES:
        services.check_template(row["subject"], field="subject")
        services.check_template(row["body"], field="body")
