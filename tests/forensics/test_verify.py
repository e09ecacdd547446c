"""verify_evidence: every stored file hashed again; a corrupted or missing file is named
and makes the command fail, is recorded on the item, in its custody log and on the
timeline, and the security group hears of each change once."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django_q.models import Schedule

from forensics import tasks
from forensics.models import CustodyRecord, EvidenceItem
from forensics.storage import evidence_storage
from incidents.models import Notification
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
Integrity = EvidenceItem.Integrity


@pytest.fixture
def items(breach, upload, declare):
    other = declare(title="Disk full on db-2")
    return [
        upload(breach, b"first file\n", name="first.log"),
        upload(breach, b"second file\n", name="second.log"),
        upload(other, b"third file\n", name="third.log"),
    ]


@pytest.fixture
def security_team(django_user_model):
    return make_user(django_user_model, "sec-lead", "Security", is_staff=True)


def corrupt(item):
    with open(evidence_storage().path(item.file.name), "ab") as stored:
        stored.write(b"tampered")


def remove(item):
    evidence_storage().delete(item.file.name)


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_evidence", *args, stdout=out, stderr=err)
    except CommandError as error:
        err.write(str(error))
        return error.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def integrity_messages():
    return list(Notification.objects.filter(event="evidence_integrity").order_by("pk"))


def test_an_intact_locker_verifies_and_exits_zero(items, security_team):
    code, out, err = run()

    assert code == 0
    assert "3 stored item(s) verified, 0 not intact." in out
    assert err == ""
    for item in items:
        item.refresh_from_db()
        assert item.integrity == Integrity.OK
        assert item.last_verified_at is not None
        assert item.custody.last().action == CustodyRecord.Action.VERIFIED
    assert integrity_messages() == []  # nothing changed


def test_a_corrupted_and_a_missing_file_are_named_and_fail_the_command(items, security_team):
    corrupt(items[0])
    remove(items[2])

    code, out, err = run()

    assert code == 1
    assert f"MISMATCH  #{items[0].pk} {items[0].incident.reference} system logs" in err
    assert items[0].file.name in err
    assert f"MISSING   #{items[2].pk} {items[2].incident.reference} system logs" in err
    assert "3 stored item(s) verified, 2 not intact." in err
    assert f"#{items[1].pk}" not in err
    states = {item.pk: EvidenceItem.objects.get(pk=item.pk).integrity for item in items}
    assert states == {
        items[0].pk: Integrity.MISMATCH,
        items[1].pk: Integrity.OK,
        items[2].pk: Integrity.MISSING,
    }
    failed = CustodyRecord.objects.filter(action=CustodyRecord.Action.VERIFICATION_FAILED)
    assert {record.evidence_id for record in failed} == {items[0].pk, items[2].pk}
    assert "hashes to" in failed.get(evidence=items[0]).detail
    event = items[0].incident.timeline.filter(kind="evidence").last()
    assert "hash mismatch" in event.summary


def test_the_security_group_hears_of_a_change_once(items, security_team):
    corrupt(items[0])
    run()
    run()  # the same state again: nothing new to say

    (message,) = integrity_messages()
    assert message.recipient == security_team
    assert message.incident is None  # it may name several incidents: it mentions them
    assert set(message.mentions.all()) == {items[0].incident}
    assert f"evidence #{items[0].pk}" in message.body
    assert "1 item(s)" in message.subject


def test_a_file_put_back_is_intact_again_and_that_is_told_too(items, security_team):
    stored = evidence_storage().path(items[0].file.name)
    with open(stored, "rb") as original:
        content = original.read()
    corrupt(items[0])
    run()
    with open(stored, "wb") as restored:
        restored.write(content)

    code, _, _ = run()

    assert code == 0
    assert EvidenceItem.objects.get(pk=items[0].pk).integrity == Integrity.OK
    assert "intact again" in integrity_messages()[-1].body
    assert len(integrity_messages()) == 2


def test_a_reference_limits_the_check_to_its_incident(items, security_team):
    remove(items[2])

    code, out, _ = run(items[0].incident.reference)

    assert code == 0
    assert "2 stored item(s) verified" in out
    assert EvidenceItem.objects.get(pk=items[2].pk).integrity == Integrity.OK  # not looked at


def test_an_unknown_reference_is_a_usage_error(items):
    code, _, err = run("INC-1999-0001")

    assert code == 2
    assert "No incident INC-1999-0001" in err


def test_the_exit_status_reaches_the_shell(items, monkeypatch, capsys):
    from forensics.management.commands.verify_evidence import Command

    monkeypatch.setattr(connections, "close_all", lambda: None)  # the test's connection
    corrupt(items[1])
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "verify_evidence"])

    assert exited.value.code == 1
    assert "MISMATCH" in capsys.readouterr().err


def test_items_held_elsewhere_are_not_checked(breach, commander):
    from forensics import services
    from incidents.models import Source

    services.evidence_register(
        incident=breach,
        kind="other",
        external_location="safe 3",
        description="the laptop",
        actor=commander,
        source=Source.ADMIN,
    )

    code, out, _ = run()

    assert code == 0
    assert "0 stored item(s) verified" in out


def test_the_daily_task_runs_the_same_check(items, security_team):
    remove(items[1])

    assert tasks.verify_evidence() == 1
    assert EvidenceItem.objects.get(pk=items[1].pk).integrity == Integrity.MISSING
    record = items[1].custody.last()
    assert (record.source, record.actor_name) == ("system", "")
    assert len(integrity_messages()) == 1


def test_the_checks_are_scheduled(db):
    daily = Schedule.objects.get(func="forensics.tasks.verify_evidence")
    minutely = Schedule.objects.get(func="forensics.tasks.warn_breach_deadlines")

    assert daily.schedule_type == Schedule.DAILY
    assert (minutely.schedule_type, minutely.minutes) == (Schedule.MINUTES, 1)


def test_an_intact_check_writes_no_history_row_but_a_change_does(items, security_team):
    before = EvidenceItem.history.count()
    run()
    assert EvidenceItem.history.count() == before
    corrupt(items[0])
    run()
    assert EvidenceItem.history.count() == before + 1
    assert EvidenceItem.history.latest("history_id").integrity == Integrity.MISMATCH
