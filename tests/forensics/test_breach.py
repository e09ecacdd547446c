"""The breach notification clock: started for security and data incidents, counted from
detection, stopped by notifying the regulator or by finding no notification is needed;
the assessment and the notifications recorded through the services, each on the
timeline; and the watchdog's warnings at 24 h and 6 h left and when missed, once each,
to the commander and the legal and compliance group."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from forensics import deadlines, services
from forensics.models import BreachAssessment
from incidents import services as incidents
from incidents.errors import DomainError
from incidents.models import Notification, Role, Source
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def clock(declare, security_type, commander):
    """A security incident detected at T0 (so due by T0 + 72 h), declared an hour later."""
    with time_machine.travel(T0 + HOUR, tick=False):
        incident = declare(
            title="Customer table dumped",
            incident_type=security_type,
            commander=commander,
            started_at=T0 - HOUR,
            detected_at=T0,
        )
    return incident.breach_assessment


def breach_events(incident) -> list[str]:
    return list(incident.timeline.filter(kind="breach").values_list("summary", flat=True))


def warnings_sent() -> list[tuple]:
    return sorted(
        (n.dedup_key.split(":")[2], n.address, n.incident_id is not None)
        for n in Notification.objects.filter(event="breach_deadline")
    )


def watch(at: datetime) -> int:
    with time_machine.travel(at, tick=False):
        return deadlines.warn_breach_deadlines()


# --- the clock ----------------------------------------------------------------------------


def test_declaring_a_security_incident_starts_the_clock_from_detection(clock):
    assert clock.clock_started_at == T0
    assert clock.deadline_at == T0 + 72 * HOUR
    assert clock.personal_data_affected is None
    assert clock.regulator_notification_required is None
    (event,) = breach_events(clock.incident)
    assert "regulator must be notified by 2026-12-07 09:00 UTC (72 h after detection)" in event


def test_a_data_incident_starts_one_and_an_outage_does_not(declare, data_type):
    assert hasattr(declare(incident_type=data_type), "breach_assessment")
    assert not BreachAssessment.objects.filter(incident=declare()).exists()


def test_the_types_and_hours_come_from_the_settings(declare, data_type, outage, settings):
    settings.BREACH_INCIDENT_TYPES = ["outage"]
    settings.BREACH_NOTIFICATION_HOURS = 24

    assert not BreachAssessment.objects.filter(incident=declare(incident_type=data_type)).exists()
    incident = declare(incident_type=outage)
    assert incident.breach_assessment.deadline_at == incident.detected_at + 24 * HOUR


def test_reclassifying_an_incident_as_confidential_security_starts_it_from_detection(
    declare, security_type, commander
):
    incident = declare(title="Odd logins")
    incidents.incident_update_details(
        incident=incident,
        incident_type=security_type,
        confidential=True,
        actor=commander,
        source=Source.ADMIN,
    )

    assessment = BreachAssessment.objects.get(incident=incident)
    assert assessment.deadline_at == incident.detected_at + 72 * HOUR


def test_an_accepted_triage_candidate_starts_it_when_it_becomes_declared(
    declare, security_type, commander
):
    candidate = declare(incident_type=security_type, triage=True)
    assert not BreachAssessment.objects.filter(incident=candidate).exists()

    incidents.incident_accept(incident=candidate, actor=commander, source=Source.ADMIN)

    assert BreachAssessment.objects.filter(incident=candidate).exists()


# --- assessing ----------------------------------------------------------------------------


def test_the_assessment_is_recorded_with_who_and_when_and_on_the_timeline(clock, commander):
    with time_machine.travel(T0 + 2 * HOUR, tick=False):
        assessment = services.breach_assess(
            incident=clock.incident,
            personal_data_affected=True,
            regulator_notification_required=True,
            assessment_notes="Names and emails of 1,200 customers.",
            actor=commander,
            source=Source.ADMIN,
        )

    assert (assessment.assessed_by, assessment.assessed_at) == (commander, T0 + 2 * HOUR)
    assert breach_events(clock.incident)[-1] == (
        "Breach assessed: personal data affected: yes; regulator notification required: yes. "
        "Names and emails of 1,200 customers."
    )


def test_assessing_nothing_new_writes_nothing(clock, commander):
    services.breach_assess(incident=clock.incident, actor=commander, source=Source.ADMIN)

    assert len(breach_events(clock.incident)) == 1


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"personal_data_affected": "maybe"}, "personal_data_affected"),
        ({"deadline_at": T0}, None),
        ({"clock_started_at": T0 - 2 * HOUR}, "clock_started_at"),  # before the impact
    ],
)
def test_a_bad_assessment_is_refused(clock, commander, changes, field):
    with time_machine.travel(T0 + 2 * HOUR, tick=False), pytest.raises(DomainError) as refused:
        services.breach_assess(
            incident=clock.incident, actor=commander, source=Source.ADMIN, **changes
        )

    assert refused.value.field == field


def test_a_clock_started_later_moves_the_deadline_and_rearms_its_warnings(clock, commander):
    watch(T0 + 49 * HOUR)  # the 24 h warning
    with time_machine.travel(T0 + 50 * HOUR, tick=False):
        moved = services.breach_assess(
            incident=clock.incident,
            clock_started_at=T0 + 40 * HOUR,
            actor=commander,
            source=Source.ADMIN,
        )

    assert moved.deadline_at == T0 + 112 * HOUR
    assert moved.warned_24h_at is None
    assert breach_events(clock.incident)[-1] == (
        "Breach assessed: clock started 2026-12-06 01:00 UTC, regulator deadline "
        "2026-12-09 01:00 UTC"
    )
    assert watch(T0 + 89 * HOUR) == 1  # the new deadline's own 24 h warning
    assert [stage for stage, _, _ in warnings_sent()] == ["24h", "24h"]


def test_someone_who_may_not_see_the_incident_cannot_assess_it(clock, outsider):
    with pytest.raises(DomainError, match="that you may see"):
        services.breach_assess(
            incident=clock.incident, personal_data_affected=False, actor=outsider, source="api"
        )


def test_a_first_assessment_of_any_incident_starts_its_clock(declare, commander):
    outage = declare()
    assessment = services.breach_assess(
        incident=outage, personal_data_affected=True, actor=commander, source=Source.API
    )

    assert assessment.deadline_at == outage.detected_at + 72 * HOUR


# --- notifying ----------------------------------------------------------------------------


def test_notifying_the_regulator_in_time_says_so_on_the_timeline(clock, commander):
    with time_machine.travel(T0 + 40 * HOUR, tick=False):
        assessment = services.breach_record_regulator_notified(
            incident=clock.incident,
            notified_at=T0 + 30 * HOUR,
            reference="ICO-2026-0815",
            notes="Online form.",
            actor=commander,
            source=Source.ADMIN,
        )

    assert assessment.regulator_notified_at == T0 + 30 * HOUR
    assert not assessment.clock_running
    assert breach_events(clock.incident)[-1] == (
        "Regulator notified (reference ICO-2026-0815): 30h 00m after detection, within the "
        "72-hour deadline"
    )
    event = clock.incident.timeline.filter(kind="breach").last()
    assert event.occurred_at == T0 + 30 * HOUR


def test_a_late_notification_says_by_how_much(clock, commander):
    with time_machine.travel(T0 + 90 * HOUR, tick=False):
        services.breach_record_regulator_notified(
            incident=clock.incident, actor=commander, source=Source.ADMIN
        )

    assert breach_events(clock.incident)[-1] == (
        "Regulator notified: 3d 18h after detection, 18h 00m after the 72-hour deadline"
    )


def test_recording_it_again_is_a_correction(clock, commander):
    with time_machine.travel(T0 + 40 * HOUR, tick=False):
        for reference in ("ICO-1", "ICO-2"):
            services.breach_record_regulator_notified(
                incident=clock.incident, reference=reference, actor=commander, source="admin"
            )

    assert breach_events(clock.incident)[-1].startswith(
        "Regulator notification record corrected (reference ICO-2)"
    )


@pytest.mark.parametrize(
    "notified_at, message",
    [
        (T0 + 50 * HOUR, "Cannot be in the future"),
        (T0 - 3 * HOUR, "before the incident began"),
        (datetime(2026, 12, 5, 9, 0), "time zone"),
    ],
)
def test_a_notification_time_must_be_in_the_past_of_the_incident(
    clock, commander, notified_at, message
):
    with time_machine.travel(T0 + 40 * HOUR, tick=False), pytest.raises(DomainError, match=message):
        services.breach_record_regulator_notified(
            incident=clock.incident, notified_at=notified_at, actor=commander, source="api"
        )


def test_notifying_the_data_subjects_is_recorded(clock, commander):
    with time_machine.travel(T0 + 60 * HOUR, tick=False):
        assessment = services.breach_record_subjects_notified(
            incident=clock.incident,
            reference="email campaign 7",
            actor=commander,
            source=Source.ADMIN,
        )

    assert assessment.data_subjects_notified_at == T0 + 60 * HOUR
    assert assessment.clock_running  # the regulator is still owed
    assert breach_events(clock.incident)[-1] == (
        "Data subjects notified (reference email campaign 7): 2d 12h after detection"
    )


# --- the watchdog -------------------------------------------------------------------------


def test_nothing_is_due_before_24_hours_are_left(clock, legal):
    assert watch(T0 + 47 * HOUR) == 0
    assert warnings_sent() == []


def test_each_warning_goes_once_to_the_commander_and_the_legal_group(clock, legal, commander):
    assert watch(T0 + 48 * HOUR + timedelta(minutes=1)) == 1
    assert watch(T0 + 48 * HOUR + timedelta(minutes=2)) == 0  # the next round: nothing new
    assert watch(T0 + 66 * HOUR) == 1
    assert watch(T0 + 67 * HOUR) == 0
    assert watch(T0 + 72 * HOUR) == 1
    assert watch(T0 + 100 * HOUR) == 0

    # The commander may see the incident: theirs is attached to it. Legal's mentions it.
    assert warnings_sent() == [
        ("24h", "alice@example.com", True),
        ("24h", "lena@example.com", False),
        ("6h", "alice@example.com", True),
        ("6h", "lena@example.com", False),
        ("missed", "alice@example.com", True),
        ("missed", "lena@example.com", False),
    ]
    assessment = BreachAssessment.objects.get(pk=clock.pk)
    assert assessment.warned_24h_at == T0 + 48 * HOUR + timedelta(minutes=1)
    assert assessment.warned_6h_at == T0 + 66 * HOUR
    assert assessment.missed_at == T0 + 72 * HOUR
    events = breach_events(clock.incident)
    assert events[1] == "Breach notification due in 23h 59m: " + clock.incident.reference + (
        ". Told alice, lena."
    )
    assert events[2].startswith("Breach notification due in 6h 00m")
    assert events[3].startswith(f"Breach notification deadline missed: {clock.incident.reference}")


def test_the_warning_names_the_reference_and_deadline_not_the_title(clock, legal):
    watch(T0 + 66 * HOUR)

    message = Notification.objects.get(event="breach_deadline", address="lena@example.com")
    assert message.subject == f"Breach notification due in 6h 00m: {clock.incident.reference}"
    assert "by 2026-12-07 09:00 UTC" in message.body
    assert "not assessed yet" in message.body
    assert "/admin/forensics/breachassessment/" in message.body
    assert "Customer table" not in message.subject + message.body
    assert list(message.mentions.all()) == [clock.incident]
    assert "title" not in str(message.payload)


def test_a_watchdog_that_was_down_sends_the_latest_warning_only(clock, legal):
    assert watch(T0 + 69 * HOUR) == 1

    assert {stage for stage, _, _ in warnings_sent()} == {"6h"}
    assessment = BreachAssessment.objects.get(pk=clock.pk)
    assert assessment.warned_24h_at == assessment.warned_6h_at == T0 + 69 * HOUR


def test_no_warning_once_the_regulator_is_notified(clock, legal, commander):
    with time_machine.travel(T0 + 10 * HOUR, tick=False):
        services.breach_record_regulator_notified(
            incident=clock.incident, actor=commander, source=Source.ADMIN
        )

    assert watch(T0 + 60 * HOUR) == watch(T0 + 80 * HOUR) == 0
    assert warnings_sent() == []


def test_no_warning_when_no_notification_is_needed(clock, legal, commander):
    services.breach_assess(
        incident=clock.incident,
        personal_data_affected=False,
        regulator_notification_required=False,
        actor=commander,
        source=Source.ADMIN,
    )

    assert watch(T0 + 80 * HOUR) == 0


def test_an_incident_without_a_commander_tells_whoever_declared_it(
    declare, security_type, responder
):
    with time_machine.travel(T0, tick=False):
        declare(incident_type=security_type, actor=responder)
    watch(T0 + 66 * HOUR)

    assert warnings_sent() == [("6h", "bob@example.com", True)]


def test_the_current_commander_is_told_not_the_one_relieved(clock, legal, commander, responder):
    incidents.role_assign(
        incident=clock.incident,
        role=Role.COMMANDER,
        user=responder,
        actor=commander,
        source=Source.ADMIN,
    )
    watch(T0 + 66 * HOUR)

    addresses = {address for _, address, _ in warnings_sent()}
    assert addresses == {"bob@example.com", "lena@example.com"}


def test_a_warning_that_reaches_nobody_says_so_on_the_timeline(
    declare, security_type, django_user_model
):
    silent = make_user(django_user_model, "nomail", "Incident commanders", is_staff=True)
    silent.email = ""
    silent.save()
    with time_machine.travel(T0, tick=False):
        incident = declare(incident_type=security_type, actor=silent, commander=silent)
    watch(T0 + 66 * HOUR)

    assert warnings_sent() == []
    assert breach_events(incident)[-1].endswith(
        "Told nobody: neither the commander nor anyone in Legal and compliance has an email "
        "address."
    )


def test_a_second_watchdog_on_the_same_warning_sends_nothing(clock, legal):
    # Both scanned the same due warning; the first to lock it sends it.
    with time_machine.travel(T0 + 66 * HOUR, tick=False):
        assert deadlines._warn(clock.pk, T0 + 66 * HOUR) == 1
        assert deadlines._warn(clock.pk, T0 + 66 * HOUR) == 0

    assert len(warnings_sent()) == 2


def test_the_watchdog_task_runs_the_watchdog(clock, legal):
    from forensics import tasks

    with time_machine.travel(T0 + 66 * HOUR, tick=False):
        assert tasks.warn_breach_deadlines() == 1
