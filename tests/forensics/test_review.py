"""The post-mortem of a breach states its facts and gaps: the assessment, the deadline,
when the regulator and the data subjects were told, and evidence that failed its
verification (through the core's review_drafting; postmortems is imported here only)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from forensics import services
from forensics.storage import evidence_storage
from incidents.models import Source
from postmortems import services as reviews

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def incident(declare, security_type, commander):
    with time_machine.travel(T0 + HOUR, tick=False):
        return declare(
            incident_type=security_type, commander=commander, started_at=T0, detected_at=T0
        )


def review(incident, commander, at):
    with time_machine.travel(at, tick=False):
        return reviews.postmortem_create(incident=incident, actor=commander, source=Source.ADMIN)


def test_a_late_notification_is_a_gap_with_its_numbers(incident, commander):
    with time_machine.travel(T0 + 90 * HOUR, tick=False):
        services.breach_assess(
            incident=incident,
            personal_data_affected=True,
            regulator_notification_required=True,
            actor=commander,
            source=Source.ADMIN,
        )
        services.breach_record_regulator_notified(
            incident=incident,
            notified_at=T0 + 80 * HOUR,
            reference="ICO-77",
            actor=commander,
            source=Source.ADMIN,
        )
    postmortem = review(incident, commander, T0 + 100 * HOUR)

    breach = postmortem.facts["breach"]
    assert breach["deadline_at"] == (T0 + 72 * HOUR).isoformat()
    assert breach["regulator_notified_at"] == (T0 + 80 * HOUR).isoformat()
    assert breach["regulator_reference"] == "ICO-77"
    assert breach["personal_data_affected"] is True
    gaps = postmortem.detection_gaps
    assert "- Regulator notified 3d 8h after detection, 8h 00m after the 72-hour deadline." in gaps
    assert "- Personal data was affected and the data subjects have not been notified." in gaps


def test_a_missed_deadline_is_a_gap(incident, commander):
    postmortem = review(incident, commander, T0 + 80 * HOUR)

    assert postmortem.facts["breach"]["regulator_notified_at"] is None
    assert (
        "- Regulator not notified: the 72-hour deadline passed at 2026-12-07 09:00 UTC."
        in postmortem.detection_gaps
    )
    assert "- Breach assessment not recorded" in postmortem.detection_gaps


def test_a_timely_notification_is_said_too(incident, commander):
    with time_machine.travel(T0 + 20 * HOUR, tick=False):
        services.breach_assess(
            incident=incident,
            personal_data_affected=True,
            regulator_notification_required=True,
            actor=commander,
            source=Source.ADMIN,
        )
        services.breach_record_regulator_notified(
            incident=incident, actor=commander, source=Source.ADMIN
        )
        services.breach_record_subjects_notified(
            incident=incident, actor=commander, source=Source.ADMIN
        )
    gaps = review(incident, commander, T0 + 30 * HOUR).detection_gaps

    assert "- Regulator notified 20h 00m after detection, within the 72-hour deadline." in gaps
    assert "- Data subjects notified 20h 00m after detection." in gaps


def test_the_breach_steps_are_in_the_reviews_timeline(incident, commander):
    with time_machine.travel(T0 + 20 * HOUR, tick=False):
        services.breach_record_regulator_notified(
            incident=incident, actor=commander, source=Source.ADMIN
        )
    postmortem = review(incident, commander, T0 + 30 * HOUR)

    kinds = list(postmortem.timeline.filter(kind="breach").values_list("summary", flat=True))
    assert kinds[0].startswith("Breach notification clock started")
    assert kinds[1].startswith("Regulator notified")


def test_evidence_that_failed_verification_is_a_gap(incident, commander, upload):
    item = upload(incident, b"pcap bytes", kind="network_capture")
    evidence_storage().delete(item.file.name)
    services.evidence_verify(items=services.stored_items(), source=Source.CLI)
    postmortem = review(incident, commander, T0 + 30 * HOUR)

    assert postmortem.facts["evidence"] == {"items": 1, "broken": 1}
    assert (
        f"- Evidence #{item.pk} (network capture) failed verification: file missing."
        in postmortem.detection_gaps
    )


def test_an_incident_without_breach_or_evidence_gets_neither(declare, commander):
    incident = declare()
    postmortem = reviews.postmortem_create(incident=incident, actor=commander, source="admin")

    assert "breach" not in postmortem.facts
    assert "evidence" not in postmortem.facts
