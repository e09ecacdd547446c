"""API keys: made in the admin and the CLI, stored hashed, revoked; old idempotency
records pruned by a schedule that exists without any manual step."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from incidents import services, tasks
from incidents.errors import DomainError
from incidents.models import APIKey, IdempotencyRecord
from tests.forms import form_data

ADD = reverse("admin:incidents_apikey_add")


def test_key_is_stored_only_as_a_hash(commander):
    key, plaintext = services.api_key_create(user=commander, name="alertmanager")
    assert plaintext.startswith(f"sitrep_{key.prefix}_")
    assert key.hashed_key == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext not in str(APIKey.objects.filter(pk=key.pk).values().get())


def test_only_superusers_create_keys_for_others(commander, responder, admin_user):
    with pytest.raises(DomainError, match="Only superusers"):
        services.api_key_create(user=responder, name="x", actor=commander)
    key, _ = services.api_key_create(user=responder, name="x", actor=admin_user)
    assert key.user == responder and key.created_by == admin_user


def test_create_api_key_command_prints_key_on_last_line(commander):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_key",
        "alice",
        "--name",
        "grafana",
        "--expires-in-days",
        "30",
        stdout=out,
        stderr=err,
    )
    plaintext = out.getvalue().strip().splitlines()[-1]
    key = APIKey.objects.get(name="grafana")
    assert key.hashed_key == services.hash_api_key(plaintext)
    assert key.user == commander
    assert timedelta(days=29) < key.expires_at - timezone.now() <= timedelta(days=30)
    assert "grafana" in err.getvalue()


@pytest.mark.parametrize(
    "args, message",
    [
        (["ghost"], "No user named 'ghost'"),
        (["alice", "--expires-in-days", "0"], "Must be from 1 to 3,650 days"),
        (["alice", "--name", " "], "Name the key"),
    ],
)
def test_create_api_key_command_rejects_bad_input(commander, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args, stdout=StringIO(), stderr=StringIO())
    assert not APIKey.objects.exists()


def test_admin_shows_new_key_once_and_never_again(commander_client, commander):
    data = form_data(commander_client.get(ADD).content.decode(), "apikey_form")
    data.update(name="pagerduty", expires_in_days="90")
    response = commander_client.post(ADD, data, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    key = APIKey.objects.get(name="pagerduty")
    plaintext = shown[0].rsplit(" ", 1)[-1]
    assert key.hashed_key == services.hash_api_key(plaintext)
    assert key.user == commander
    page = commander_client.get(reverse("admin:incidents_apikey_change", args=[key.pk]))
    assert plaintext not in page.content.decode()
    assert key.prefix in page.content.decode()


def test_admin_lists_only_your_own_keys(commander_client, commander, responder):
    mine, _ = services.api_key_create(user=commander, name="mine")
    theirs, _ = services.api_key_create(user=responder, name="theirs")
    body = commander_client.get(reverse("admin:incidents_apikey_changelist")).content.decode()
    assert mine.prefix in body and theirs.prefix not in body


def test_admin_offers_only_yourself_as_key_owner(commander_client, commander, responder):
    body = commander_client.get(ADD).content.decode()
    picker = body[body.index('name="user"') : body.index("</select>", body.index('name="user"'))]
    assert ">alice<" in picker and ">bob<" not in picker


def test_admin_revoke_action(commander_client, commander):
    key, _ = services.api_key_create(user=commander, name="old")
    commander_client.post(
        reverse("admin:incidents_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert key.history.latest().history_user == commander


def test_revoking_twice_is_refused(commander):
    key, _ = services.api_key_create(user=commander, name="old")
    services.api_key_revoke(key=key)
    with pytest.raises(DomainError, match="already revoked"):
        services.api_key_revoke(key=key)


def test_prune_forgets_records_older_than_a_day(commander):
    with time_machine.travel(timezone.now() - timedelta(hours=25)):
        IdempotencyRecord.objects.create(
            user=commander, key="old", fingerprint="x", response_status=201, response_body={}
        )
    IdempotencyRecord.objects.create(
        user=commander, key="new", fingerprint="x", response_status=201, response_body={}
    )
    assert tasks.prune_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_prune_schedule_exists_after_migrate(db):
    schedule = Schedule.objects.get(func="incidents.tasks.prune_idempotency_records")
    assert schedule.schedule_type == Schedule.HOURLY


@pytest.mark.parametrize("days", [0, services.API_KEY_MAX_DAYS + 1, 99_999_999_999])
def test_an_expiry_out_of_range_is_refused(commander, days):
    with pytest.raises(DomainError) as refused:
        services.api_key_create(user=commander, name="far future", expires_in_days=days)
    assert refused.value.field == "expires_in_days"


def test_the_admin_refuses_an_expiry_too_far_ahead_instead_of_failing(client, commander):
    client.force_login(commander)
    response = client.post(
        reverse("admin:incidents_apikey_add"),
        {"name": "far future", "user": commander.pk, "expires_in_days": "99999999999"},
    )
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 3650." in response.content.decode()


def test_the_admin_refuses_a_name_of_control_characters_and_keeps_the_form(client, commander):
    client.force_login(commander)
    response = client.post(
        reverse("admin:incidents_apikey_add"),
        {"name": "\x01\x02", "user": commander.pk, "expires_in_days": "30"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Name the key after what will use it." in body
    assert 'value="30"' in body  # what was typed is still there
    assert not APIKey.objects.exists()
