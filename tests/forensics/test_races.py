"""Watchdogs and verifications racing each other on a real PostgreSQL server: each
breach warning is sent once, and a change of an item's integrity is announced once."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from forensics import deadlines, services
from forensics.models import CustodyRecord, EvidenceItem
from forensics.storage import evidence_storage
from incidents.models import Notification, Source
from tests.conftest import make_user
from tests.incidents.test_watchdog_races import race

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real concurrency"),
    pytest.mark.django_db(transaction=True),
]


def test_racing_watchdogs_send_each_breach_warning_once(declare, security_type, legal):
    incidents = [declare(title=f"Breach {n}", incident_type=security_type) for n in range(3)]
    later = timezone.now() + timedelta(hours=70)  # 2 h left: the 6 h warning is due

    sent = race(4, lambda: deadlines.warn_breach_deadlines(now=later))

    assert sum(sent) == len(incidents)
    warnings = Notification.objects.filter(event="breach_deadline")
    # The commander (alice) and lena, once each per incident.
    assert warnings.count() == 2 * len(incidents)
    for incident in incidents:
        assert incident.timeline.filter(kind="breach", details__warning="6h").count() == 1


def test_racing_verifications_announce_a_change_once(breach, upload, django_user_model):
    make_user(django_user_model, "sec-lead", "Security", is_staff=True)
    items = [upload(breach, f"file {n}".encode()) for n in range(3)]
    for item in items:
        evidence_storage().delete(item.file.name)

    race(
        3,
        lambda: services.evidence_verify(items=services.stored_items(), source=Source.SYSTEM),
    )

    assert set(EvidenceItem.objects.values_list("integrity", flat=True)) == {"missing"}
    assert Notification.objects.filter(event="evidence_integrity").count() == 1
    assert breach.timeline.filter(kind="evidence", details__integrity="missing").count() == 3
    # Each run checked each item: three failed checks per item in the custody log.
    failed = CustodyRecord.objects.filter(action=CustodyRecord.Action.VERIFICATION_FAILED)
    assert failed.count() == 9
