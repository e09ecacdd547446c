"""Checklists: which playbooks start on which incidents, working the steps, the close
guard, time-boxes and what the review learns. Through the services, as every caller."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from incidents import extensions
from incidents import services as incidents
from incidents.errors import DomainError, StateConflict
from incidents.models import IncidentType, Severity, Source, Status, TimelineEvent
from playbooks import services
from playbooks.models import ChecklistStep, CloseRequirement, PlaybookStep
from playbooks.queries import checklist_for

pytestmark = pytest.mark.django_db

ADMIN = Source.ADMIN


@pytest.fixture
def only_playbooks():
    """Every playbooks registration and nothing else (a SEV1 closes without a review)."""
    with extensions.only(
        services.start_on_declaration,
        services.start_on_severity_change,
        services.require_steps_before_close,
        services.review_gaps,
    ):
        yield


def severity(key):
    return Severity.objects.get(key=key)


def kind(slug):
    return IncidentType.objects.get(slug=slug)


def titles(incident):
    return list(
        ChecklistStep.objects.filter(incident=incident)
        .order_by("phase", "position")
        .values_list("title", flat=True)
    )


def playbook_names(incident):
    return set(
        ChecklistStep.objects.filter(incident=incident).values_list("playbook_name", flat=True)
    )


# --- which playbooks start -------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_slug", "key", "expected"),
    [
        ("outage", "SEV4", {"Service outage"}),
        ("outage", "SEV3", {"Service outage"}),
        ("outage", "SEV2", {"Service outage", "Major outage"}),
        ("outage", "SEV1", {"Service outage", "Major outage"}),
        ("security", "SEV2", {"Security breach"}),
        ("data", "SEV1", {"Personal data breach"}),
        ("performance", "SEV3", {"Performance degradation"}),
        ("integration", "SEV2", set()),
    ],
)
def test_declaring_starts_the_playbooks_of_its_type_at_or_above_their_severity(
    declare, major_outage, type_slug, key, expected
):
    incident = declare(severity=severity(key), incident_type=kind(type_slug))
    assert playbook_names(incident) == expected
    steps = PlaybookStep.objects.filter(playbook__name__in=expected).count()
    assert ChecklistStep.objects.filter(incident=incident).count() == steps


def test_an_inactive_playbook_starts_nowhere(declare, playbooks):
    playbooks["outage"].is_active = False
    playbooks["outage"].save()
    assert titles(declare(severity=severity("SEV3"))) == []


def test_declaring_says_on_the_timeline_which_playbooks_started(declare, major_outage):
    incident = declare(severity=severity("SEV2"))
    events = TimelineEvent.objects.filter(incident=incident, kind=TimelineEvent.Kind.CHECKLIST)
    summaries = sorted(event.summary for event in events)
    assert summaries == [
        "Playbook Major outage started on declaration: 2 steps, 1 required.",
        "Playbook Service outage started on declaration: 15 steps, 12 required.",
    ]


def test_time_boxes_count_from_the_declaration(declare, playbooks):
    incident = declare(severity=severity("SEV3"))
    step = ChecklistStep.objects.get(incident=incident, title="Post the first status update")
    assert step.started_at == incident.declared_at
    assert step.due_at == incident.declared_at + timedelta(minutes=30)
    untimed = ChecklistStep.objects.get(incident=incident, title__startswith="Apply the fix")
    assert untimed.due_at is None


def test_a_triage_candidate_gets_its_checklist_when_accepted(declare, playbooks, commander):
    candidate = declare(severity=severity("SEV3"), triage=True)
    assert titles(candidate) == []
    incidents.incident_accept(incident=candidate, actor=commander, source=ADMIN)
    assert len(titles(candidate)) == 15


# --- re-rating -------------------------------------------------------------------------


def test_rerating_into_a_playbooks_severity_adds_its_steps_timed_from_then(
    declare, major_outage, commander
):
    incident = declare(severity=severity("SEV3"))
    assert playbook_names(incident) == {"Service outage"}
    later = timezone.now() + timedelta(hours=2)
    with time_machine.travel(later, tick=False):
        incidents.incident_change_severity(
            incident=incident,
            severity=severity("SEV1"),
            reason="Checkout down too",
            actor=commander,
            source=ADMIN,
        )
    assert playbook_names(incident) == {"Service outage", "Major outage"}
    brief = ChecklistStep.objects.get(incident=incident, title="Brief the executives")
    assert brief.started_at == later
    assert brief.due_at == later + timedelta(minutes=30)
    assert TimelineEvent.objects.filter(
        incident=incident, summary__startswith="Playbook Major outage started on re-rating to SEV1"
    ).exists()


def test_rating_down_keeps_the_checklist_and_up_again_adds_nothing_twice(
    declare, major_outage, commander
):
    incident = declare(severity=severity("SEV1"))
    before = ChecklistStep.objects.filter(incident=incident).count()
    for key in ("SEV3", "SEV2", "SEV4", "SEV1"):
        incidents.incident_change_severity(
            incident=incident,
            severity=severity(key),
            reason=f"now {key}",
            actor=commander,
            source=ADMIN,
        )
    assert ChecklistStep.objects.filter(incident=incident).count() == before


# --- a copy, not a reference -----------------------------------------------------------


def test_editing_or_deleting_a_playbook_never_changes_a_running_checklist(declare, playbooks):
    incident = declare(severity=severity("SEV3"))
    template = PlaybookStep.objects.get(
        playbook=playbooks["outage"], title="Post the first status update"
    )
    template.title = "Tweet something"
    template.due_within = 5
    template.required = False
    template.save()
    PlaybookStep.objects.create(playbook=playbooks["outage"], phase="detection", title="New step")
    copy = ChecklistStep.objects.get(incident=incident, playbook_step=template)
    assert (copy.title, copy.due_within, copy.required) == (
        "Post the first status update",
        30,
        True,
    )
    assert "New step" not in titles(incident)

    playbooks["outage"].delete()
    assert len(titles(incident)) == 15
    copy.refresh_from_db()
    assert copy.playbook_name == "Service outage" and copy.playbook_step is None


# --- working the steps -----------------------------------------------------------------


def test_ticking_records_who_when_and_the_note_on_the_timeline(declare, playbooks, responder):
    incident = declare(severity=severity("SEV3"))
    step = ChecklistStep.objects.get(incident=incident, title="Post the first status update")
    services.checklist_step_complete(
        step=step, note="Posted at 10:02", actor=responder, source=ADMIN
    )
    step.refresh_from_db()
    assert step.status == "done" and step.completed_by == responder
    assert step.completed_at is not None and step.note == "Posted at 10:02"
    event = TimelineEvent.objects.filter(incident=incident).order_by("pk").last()
    assert event.kind == TimelineEvent.Kind.CHECKLIST and event.author == responder
    assert event.summary == "Checklist: “Post the first status update” done. Posted at 10:02"


def test_a_step_is_ticked_once(declare, playbooks, responder, commander):
    step = ChecklistStep.objects.filter(incident=declare(severity=severity("SEV3"))).first()
    services.checklist_step_complete(step=step, actor=responder, source=ADMIN)
    with pytest.raises(StateConflict, match="already done by bob"):
        services.checklist_step_complete(step=step, actor=commander, source=ADMIN)
    with pytest.raises(StateConflict):
        services.checklist_step_skip(step=step, reason="n/a", actor=commander, source=ADMIN)


def test_skipping_needs_a_reason_and_changes_nothing_without_one(declare, playbooks, commander):
    step = ChecklistStep.objects.filter(incident=declare(severity=severity("SEV3"))).first()
    events = TimelineEvent.objects.count()
    with pytest.raises(DomainError, match="Say why"):
        services.checklist_step_skip(step=step, reason="  ", actor=commander, source=ADMIN)
    step.refresh_from_db()
    assert step.status == "pending" and TimelineEvent.objects.count() == events
    services.checklist_step_skip(
        step=step, reason="No bridge needed", actor=commander, source=ADMIN
    )
    step.refresh_from_db()
    assert (step.status, step.note) == ("skipped", "No bridge needed")


def test_reopening_puts_a_step_back(declare, playbooks, commander):
    step = ChecklistStep.objects.filter(incident=declare(severity=severity("SEV3"))).first()
    services.checklist_step_complete(step=step, actor=commander, source=ADMIN)
    services.checklist_step_reopen(
        step=step, reason="Ticked the wrong one", actor=commander, source=ADMIN
    )
    step.refresh_from_db()
    assert (step.status, step.completed_at, step.completed_by) == ("pending", None, None)
    with pytest.raises(StateConflict, match="still to do"):
        services.checklist_step_reopen(step=step, actor=commander, source=ADMIN)


def test_a_tick_back_dated_before_the_declaration_or_into_the_future_is_refused(
    declare, playbooks, commander
):
    incident = declare(severity=severity("SEV3"))
    step = ChecklistStep.objects.filter(incident=incident).first()
    for when in (incident.declared_at - timedelta(minutes=1), timezone.now() + timedelta(hours=1)):
        with pytest.raises(DomainError):
            services.checklist_step_complete(step=step, done_at=when, actor=commander, source=ADMIN)
    step.refresh_from_db()
    assert step.status == "pending"


def test_progress_counts_per_phase_in_the_references_order(declare, playbooks, commander):
    incident = declare(severity=severity("SEV3"))
    detection = ChecklistStep.objects.filter(incident=incident, phase="detection").order_by(
        "position"
    )
    services.checklist_step_complete(step=detection[0], actor=commander, source=ADMIN)
    services.checklist_step_skip(
        step=detection[3], reason="Chat is enough", actor=commander, source=ADMIN
    )
    checklist = checklist_for(incident, timezone.now())
    assert [phase.label for phase in checklist.phases] == [
        "Detection & Triage",
        "Investigation",
        "Containment & Recovery",
        "Communication",
        "Post-Incident",
    ]
    first = checklist.phases[0]
    assert (first.total, first.done, first.skipped, first.percent) == (4, 1, 1, 50)
    assert (checklist.total, checklist.resolved, checklist.required_open) == (15, 2, 11)


def test_adding_a_step_of_ones_own(declare, playbooks, commander):
    incident = declare(severity=severity("SEV3"))
    step = services.checklist_step_add(
        incident=incident,
        title="Call the CDN vendor",
        phase="containment",
        required=True,
        due_within=20,
        actor=commander,
        source=ADMIN,
    )
    assert step.position == 4 and step.due_at == step.started_at + timedelta(minutes=20)
    for bad in ({"title": " "}, {"phase": "lunch"}, {"due_within": 0}):
        with pytest.raises(DomainError):
            services.checklist_step_add(
                **{
                    "incident": incident,
                    "title": "x",
                    "phase": "containment",
                    "actor": commander,
                    "source": ADMIN,
                    **bad,
                }
            )


def test_applying_a_playbook_by_hand_adds_only_what_is_missing(
    declare, playbooks, major_outage, commander
):
    incident = declare(severity=severity("SEV3"))
    steps = services.checklist_apply_playbook(
        incident=incident, playbook=major_outage, actor=commander, source=ADMIN
    )
    assert len(steps) == 2
    with pytest.raises(StateConflict, match="already has every step"):
        services.checklist_apply_playbook(
            incident=incident, playbook=major_outage, actor=commander, source=ADMIN
        )


def test_a_closed_incidents_checklist_is_no_longer_worked(
    declare, playbooks, commander, only_playbooks
):
    incident = declare(severity=severity("SEV3"))
    incidents.incident_acknowledge(incident=incident, actor=commander, source=ADMIN)
    incidents.incident_transition(
        incident=incident, to_status=Status.RESOLVED, actor=commander, source=ADMIN
    )
    step = ChecklistStep.objects.filter(incident=incident).first()
    services.checklist_step_complete(step=step, actor=commander, source=ADMIN)  # resolved: still
    incidents.incident_transition(
        incident=incident, to_status=Status.CLOSED, actor=commander, source=ADMIN
    )
    other = ChecklistStep.objects.filter(incident=incident, status="pending").first()
    with pytest.raises(StateConflict, match="closed"):
        services.checklist_step_complete(step=other, actor=commander, source=ADMIN)


# --- the close guard -------------------------------------------------------------------


def resolve(incident, actor):
    incidents.incident_acknowledge(incident=incident, actor=actor, source=ADMIN)
    return incidents.incident_transition(
        incident=incident, to_status=Status.RESOLVED, actor=actor, source=ADMIN
    )


def close(incident, actor):
    return incidents.incident_transition(
        incident=incident, to_status=Status.CLOSED, actor=actor, source=ADMIN
    )


def test_a_sev1_closes_only_once_every_required_step_is_ticked_or_skipped(
    declare, playbooks, commander, only_playbooks
):
    incident = resolve(declare(severity=severity("SEV1")), commander)
    with pytest.raises(StateConflict) as refused:
        close(incident, commander)
    assert (
        "12 open" in refused.value.message
        and "“Confirm the scope and the user impact”" in refused.value.message
    )
    incident.refresh_from_db()
    assert incident.status == Status.RESOLVED

    required = list(ChecklistStep.objects.filter(incident=incident, required=True))
    for step in required[:-1]:
        services.checklist_step_complete(step=step, actor=commander, source=ADMIN)
    with pytest.raises(StateConflict, match="1 open"):
        close(incident, commander)
    services.checklist_step_skip(
        step=required[-1], reason="Covered by the CDN's report", actor=commander, source=ADMIN
    )
    assert close(incident, commander).status == Status.CLOSED


def test_a_severity_without_the_requirement_closes_with_steps_open(
    declare, playbooks, commander, only_playbooks
):
    incident = resolve(declare(severity=severity("SEV3")), commander)
    assert close(incident, commander).status == Status.CLOSED


def test_the_requirement_is_the_commanders_to_change(declare, playbooks, commander, only_playbooks):
    CloseRequirement.objects.filter(severity__key="SEV1").update(steps_before_close=False)
    incident = resolve(declare(severity=severity("SEV1")), commander)
    assert close(incident, commander).status == Status.CLOSED


# --- time-boxes ------------------------------------------------------------------------


def test_a_time_boxed_step_is_overdue_once_its_time_passes_until_ticked(
    declare, playbooks, commander
):
    incident = declare(severity=severity("SEV3"))
    start = incident.declared_at
    with time_machine.travel(start + timedelta(minutes=14), tick=False):
        assert checklist_for(incident, timezone.now()).overdue == []
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        overdue = [step.title for step in checklist_for(incident, timezone.now()).overdue]
        assert overdue == [
            "Confirm the scope and the user impact",
            "Confirm the severity against the severity table",
            "Staff the response: commander, technical lead, scribe",
            "Open the incident channel and bridge",
        ]
        step = ChecklistStep.objects.get(
            incident=incident, title="Open the incident channel and bridge"
        )
        done = services.checklist_step_complete(step=step, actor=commander, source=ADMIN)
        assert done.was_late()
        assert len(checklist_for(incident, timezone.now()).overdue) == 3
        event = TimelineEvent.objects.filter(incident=incident).order_by("pk").last()
        assert (
            event.summary
            == "Checklist: “Open the incident channel and bridge” done (after its time-box)."
        )


# --- the review ------------------------------------------------------------------------


def test_the_review_lists_skipped_late_and_missed_steps_under_detection_gaps(
    declare, playbooks, commander
):
    from postmortems.services import postmortem_create

    incident = declare(severity=severity("SEV3"))
    steps = {step.title: step for step in ChecklistStep.objects.filter(incident=incident)}
    services.checklist_step_skip(
        step=steps["Open the incident channel and bridge"],
        reason="Two people, one room",
        actor=commander,
        source=ADMIN,
    )
    with time_machine.travel(incident.declared_at + timedelta(minutes=50), tick=False):
        services.checklist_step_complete(
            step=steps["Post the first status update"], actor=commander, source=ADMIN
        )
    for title, step in steps.items():
        if step.due_at and title not in (
            "Post the first status update",
            "Open the incident channel and bridge",
        ):
            services.checklist_step_complete(step=step, actor=commander, source=ADMIN)
    unticked = "Schedule the post-incident review"
    ChecklistStep.objects.filter(incident=incident, title=unticked).update(
        status="pending", completed_at=None
    )
    resolve(incident, commander)
    with time_machine.travel(incident.declared_at + timedelta(days=8), tick=False):
        review = postmortem_create(incident=incident, actor=commander, source=ADMIN)
    gaps = review.detection_gaps
    assert (
        "- Checklist step skipped: “Open the incident channel and bridge” — Two people, one room"
        in gaps
    )
    late = "“Post the first status update”, 20m after its 30m time-box."
    assert f"- Checklist step done late: {late}" in gaps
    assert f"- Checklist step not done within its 7d 0h time-box: “{unticked}”." in gaps
    assert review.facts["checklist"]["skipped"] == ["Open the incident channel and bridge"]
