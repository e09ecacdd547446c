"""The communication settings in the admin: channel targets, message templates and the
stakeholder groups' list, as a commander uses them."""

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from incidents import services
from incidents.models import ChannelKind, ChannelTarget, MessageTemplate, StakeholderGroup
from tests.conftest import make_user

TARGET_ADD = reverse("admin:incidents_channeltarget_add")
TEMPLATE_ADD = reverse("admin:incidents_messagetemplate_add")
GROUPS = reverse("admin:incidents_stakeholdergroup_changelist")


def target_change(target) -> str:
    return reverse("admin:incidents_channeltarget_change", args=[target.pk])


def shown(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_bad_address_shows_on_the_form_with_what_was_typed(commander_client):
    response = commander_client.post(
        TARGET_ADD,
        {
            "name": "Ops list",
            "kind": ChannelKind.EMAIL,
            "address": "ops-at-example",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"address": ["Enter an email address."]}
    body = response.content.decode()
    assert 'value="Ops list"' in body and 'value="ops-at-example"' in body
    assert not ChannelTarget.objects.exists()


def test_a_new_webhook_without_secret_gets_one_shown_once(commander_client, commander):
    response = commander_client.post(
        TARGET_ADD,
        {"name": "Hook", "kind": ChannelKind.WEBHOOK, "address": "https://x.test/h", "secret": ""},
        follow=True,
    )
    target = ChannelTarget.objects.get(name="Hook")
    assert len(target.secret) >= 32
    [notice] = [text for text in shown(response) if "Signing secret" in text]
    assert notice.endswith(target.secret)
    assert target.history.get().history_user == commander
    # Write-only: the change page never sends it back.
    assert target.secret not in commander_client.get(target_change(target)).content.decode()


def test_editing_with_the_secret_left_blank_keeps_it(commander_client, commander):
    target, _ = services.channel_target_create(
        name="Hook",
        kind=ChannelKind.WEBHOOK,
        address="https://x.test/h",
        secret="s3cret",
        actor=commander,
    )
    response = commander_client.post(
        target_change(target),
        {"name": "Hook", "kind": ChannelKind.WEBHOOK, "address": "https://x.test/v2", "secret": ""},
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert (target.address, target.secret) == ("https://x.test/v2", "s3cret")
    assert not any("Signing secret" in text for text in shown(response))


def test_a_template_that_does_not_compile_shows_on_the_form(commander_client):
    typed = "{% if incident.confidential %}Do not forward."
    response = commander_client.post(
        TEMPLATE_ADD,
        {
            "slug": "handover",
            "name": "Handover",
            "audience": "internal",
            "subject": "{{ incident.reference }}",
            "body": typed,
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["body"]
    assert errors["body"][0].startswith("Template error: ")
    assert "Do not forward." in response.content.decode()
    assert not MessageTemplate.objects.filter(slug="handover").exists()


def test_a_template_saved_in_the_admin_keeps_the_author(commander_client, commander):
    template = MessageTemplate.objects.get(slug="customer-update")
    response = commander_client.post(
        reverse("admin:incidents_messagetemplate_change", args=[template.pk]),
        {
            "slug": template.slug,
            "name": template.name,
            "audience": template.audience,
            "subject": template.subject,
            "body": "We are on it.",
        },
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.body == "We are on it."
    assert template.history.latest().history_user == commander


# --- the stakeholder groups' list -----------------------------------------------------


def _list_queries(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(GROUPS)
    assert response.status_code == 200
    return len(queries), response.context["cl"].result_count


def _add_groups(count: int, start: int, members) -> None:
    for n in range(start, start + count):
        group = StakeholderGroup.objects.create(slug=f"group-{n}", name=f"Group {n}")
        group.members.add(*members)


@pytest.mark.django_db
def test_stakeholder_group_list_costs_the_same_at_any_size(
    commander_client, sev1, django_user_model
):
    StakeholderGroup.objects.all().delete()
    members = [make_user(django_user_model, f"member{n}") for n in range(3)]
    _add_groups(2, 0, members)
    small, count = _list_queries(commander_client)
    assert count == 2
    _add_groups(10, 2, members)
    large, count = _list_queries(commander_client)
    assert count == 12
    assert large == small


def test_stakeholder_group_list_shows_the_matrix_and_members(commander_client, sev1):
    group = StakeholderGroup.objects.get(slug="legal-compliance")  # told of SEV1 only
    body = commander_client.get(GROUPS, {"q": group.name}).content.decode()
    assert '<span title="SEV1" style="display:inline-block;width:3.2em">✅ SEV1</span>' in body
    assert '<span title="SEV2" style="display:inline-block;width:3.2em">– SEV2</span>' in body
    assert "<span>Told about (the communication matrix)</span>" in body
