"""Response times and milestones: one definition, read by the incident page, the API and
the post-mortem's facts."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from incidents import metrics, services
from incidents.models import Incident, Severity, Source, Status
from postmortems.generate import incident_facts

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)


def stamped(**times) -> Incident:
    """An unsaved incident holding only the given milestone times."""
    return Incident(**{field: times.get(field) for field in metrics.MILESTONE_FIELDS})


def test_response_times_count_from_the_impact_and_acknowledgement_from_the_declaration():
    incident = stamped(
        started_at=T0,
        detected_at=T0 + 10 * MINUTE,
        declared_at=T0 + 15 * MINUTE,
        acknowledged_at=T0 + 20 * MINUTE,
        identified_at=T0 + 40 * MINUTE,
        mitigated_at=T0 + 60 * MINUTE,
        resolved_at=T0 + 120 * MINUTE,
    )

    assert metrics.response_times(metrics.milestone_times(incident)) == {
        "detect": 10 * MINUTE,
        "acknowledge": 5 * MINUTE,
        "mitigate": 60 * MINUTE,
        "resolve": 120 * MINUTE,
    }


def test_a_missing_stamp_gives_no_time_rather_than_a_wrong_one():
    # Still in triage (never declared) but already mitigated; not yet resolved.
    incident = stamped(started_at=T0, detected_at=T0, mitigated_at=T0 + 30 * MINUTE)

    assert metrics.response_times(metrics.milestone_times(incident)) == {
        "detect": timedelta(0),
        "acknowledge": None,
        "mitigate": 30 * MINUTE,
        "resolve": None,
    }


def test_milestones_are_listed_in_the_order_they_happen_and_a_review_stops_at_resolution():
    assert [label for _, label in metrics.MILESTONES] == [
        "Impact began",
        "Detected",
        "Declared",
        "Acknowledged",
        "Cause identified",
        "Mitigated",
        "Resolved",
        "Closed",
    ]
    assert metrics.RESPONSE_MILESTONES == metrics.MILESTONES[:-1]
    # Every milestone is a time the incident records.
    assert all(
        Incident._meta.get_field(field).get_internal_type() == "DateTimeField"
        for field in metrics.MILESTONE_FIELDS
    )


def test_back_dated_milestones_count_from_when_things_happened_not_when_recorded(declare, sev2):
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        incident = declare(
            severity=sev2,
            started_at=T0,
            detected_at=T0 + 20 * MINUTE,
            declared_at=T0 + 30 * MINUTE,
        )
        incident = services.incident_acknowledge(
            incident=incident, source=Source.ADMIN, occurred_at=T0 + 45 * MINUTE
        )
        incident = services.incident_transition(
            incident=incident,
            to_status=Status.RESOLVED,
            source=Source.ADMIN,
            occurred_at=T0 + 3 * 60 * MINUTE,
        )

    lengths = metrics.response_times(metrics.milestone_times(incident))
    assert lengths == {
        "detect": 20 * MINUTE,
        "acknowledge": 15 * MINUTE,
        "mitigate": 3 * 60 * MINUTE,  # resolved without a separate mitigation
        "resolve": 3 * 60 * MINUTE,
    }
    # The post-mortem's facts hold the same times, in seconds.
    assert incident_facts(incident)["durations"] == {
        key: int(length.total_seconds()) for key, length in lengths.items()
    }


@pytest.mark.usefixtures("core_only")
def test_response_times_are_wall_clock_even_under_a_business_hours_policy(declare):
    sev3 = Severity.objects.get(key="SEV3")  # acknowledge within 4 business hours
    assert sev3.response_in_business_hours
    friday_4pm = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    with time_machine.travel(friday_4pm, tick=False):
        incident = declare(severity=sev3)
    with time_machine.travel(friday_4pm + timedelta(days=2, hours=18), tick=False):
        incident = services.incident_acknowledge(incident=incident, source=Source.ADMIN)

    # The deadline is in business hours (Monday 12:00); how long it took is not.
    assert incident.ack_due_at == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    lengths = metrics.response_times(metrics.milestone_times(incident))
    assert lengths["acknowledge"] == timedelta(days=2, hours=18)


def test_the_incident_page_shows_the_response_times(commander_client, declare):
    with time_machine.travel(T0 + 15 * MINUTE, tick=False):
        incident = declare(started_at=T0, detected_at=T0 + 10 * MINUTE)
    with time_machine.travel(T0 + 20 * MINUTE, tick=False):
        services.incident_acknowledge(incident=incident, source=Source.ADMIN)

    body = commander_client.get(f"/admin/incidents/incident/{incident.pk}/change/").content
    assert "to detect: 10m · to acknowledge: 5m" in body.decode()
    assert "to resolve" not in body.decode()
