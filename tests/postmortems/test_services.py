"""The post-mortem service layer: generation from the incident record, re-sync that keeps
the writer's edits, the review workflow and its refusals, the close guard, the timeline,
history, notifications, confidentiality and all-or-nothing writes."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from incidents import notifications
from incidents import services as incident_services
from incidents.errors import DomainError, StateConflict
from incidents.models import (
    DetectionSource,
    Incident,
    Notification,
    Role,
    Severity,
    Source,
    StakeholderGroup,
    Status,
    TimelineEvent,
)
from postmortems import services, vocabulary
from postmortems.models import SECTIONS, ContributingFactor, PostMortem, ReviewDecision

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SITE = "https://sitrep.example.test"

PMStatus = PostMortem.Status
Kind = TimelineEvent.Kind
Event = vocabulary.Event

WRITTEN = {
    "executive_summary": "Checkout failed for 40 minutes after a configuration push.",
    "impact": "Every card payment failed.",
    "root_cause": "The push shrank the database connection pool; nothing validated its size.",
    # Action items are the remediation tests' concern; these reviews need none.
    "no_action_needed": True,
    "no_action_reason": "The fix shipped during the response.",
}


# --- helpers --------------------------------------------------------------------------


def reload(postmortem: PostMortem) -> PostMortem:
    return PostMortem.objects.get(pk=postmortem.pk)


def reload_incident(incident: Incident) -> Incident:
    return Incident.objects.get(pk=incident.pk)


def review_events(incident):
    review = TimelineEvent.objects.filter(incident=incident, kind=vocabulary.Kind.REVIEW)
    return review.order_by("id")


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


def write(postmortem, *reviewers, actor=None, **changes) -> PostMortem:
    """Write the required sections and name `reviewers`, as the owner would."""
    return services.postmortem_update(
        postmortem=postmortem,
        actor=actor,
        reviewers=list(reviewers),
        source=Source.ADMIN,
        **{**WRITTEN, **changes},
    )


def resolve(incident, actor=None):
    """Acknowledge (if needed) and resolve through the core's services."""
    if reload_incident(incident).acknowledged_at is None:
        incident_services.incident_acknowledge(incident=incident, actor=actor, source=Source.ADMIN)
    return incident_services.incident_transition(
        incident=incident,
        to_status=Status.RESOLVED,
        actor=actor,
        source=Source.ADMIN,
    )


def close(incident, actor=None):
    return incident_services.incident_transition(
        incident=incident,
        to_status=Status.CLOSED,
        actor=actor,
        source=Source.ADMIN,
    )


def last_notification_id() -> int:
    return Notification.objects.order_by("-id").values_list("id", flat=True).first() or 0


def sent_since(mark: int, event: str):
    return Notification.objects.filter(id__gt=mark, event=event).select_related("recipient")


def recipients(notes) -> set[str]:
    return {note.recipient.username for note in notes}


def snapshot(postmortem: PostMortem) -> dict:
    """Everything a refused step must leave as it was."""
    pm = reload(postmortem)
    return {
        "status": pm.status,
        "round": pm.review_round,
        "published_at": pm.published_at,
        "owner": pm.owner_id,
        "reviewers": sorted(pm.reviewers.values_list("pk", flat=True)),
        "sections": [getattr(pm, name) for name in SECTIONS],
        "updated_at": pm.updated_at,
        "history": pm.history.count(),
        "incident events": TimelineEvent.objects.filter(incident=pm.incident_id).count(),
        "entries": list(pm.timeline.values_list("id", "is_key", "commentary")),
        "decisions": pm.decisions.count(),
        "factors": list(pm.contributing_factors.values_list("category", "description")),
        "notifications": Notification.objects.count(),
    }


def add_member(django_user_model, username: str, *slugs: str):
    user = django_user_model.objects.create_user(username=username, email=f"{username}@example.com")
    for slug in slugs:
        StakeholderGroup.objects.get(slug=slug).members.add(user)
    return user


def failing_on(*events):
    """A notify() that fails for the review's own messages and works for the rest."""
    real = notifications.notify

    def notify(incident, event, **kwargs):
        if event in events:
            raise RuntimeError("mail outbox unavailable")
        return real(incident, event, **kwargs)

    return notify


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE


@pytest.fixture
def sev3(default_policy):
    return Severity.objects.get(key="SEV3")


@pytest.fixture
def draft(postmortem, commander, reviewer):
    """The resolved SEV1's review, written by alice with rita as its reviewer."""
    return write(
        postmortem,
        reviewer,
        actor=commander,
        contributing_factors=[("technical", "Pool size was not validated")],
    )


@pytest.fixture
def submitted(draft, commander):
    return services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)


@pytest.fixture
def published(submitted, commander, reviewer):
    services.postmortem_approve(postmortem=submitted, actor=reviewer, source=Source.ADMIN)
    return services.postmortem_publish(postmortem=submitted, actor=commander, source=Source.ADMIN)


@pytest.fixture
def story(declare, commander, responder, security_member, api_service):
    """A SEV1 lived through with controlled times: declared by carol at T0 with alice
    commanding, impact from T0-12m, detected T0-5m; bob technical lead at +3m,
    acknowledged +4m, a note +10m, a decision +15m, mitigated +20m, resolved by bob +40m."""
    with at(T0):
        incident = declare(
            actor=security_member,
            commander=commander,
            summary="A configuration push shrank the database pool.",
            services=[api_service],
            customer_impact="Card payments failed at checkout.",
            estimated_users_affected=1200,
            detection_source=DetectionSource.MONITORING_ALERT,
            started_at=T0 - 12 * MINUTE,
            detected_at=T0 - 5 * MINUTE,
        )
    with at(T0 + 3 * MINUTE):
        incident_services.role_assign(
            incident=incident,
            role=Role.TECHNICAL_LEAD,
            user=responder,
            actor=commander,
            source=Source.ADMIN,
        )
    with at(T0 + 4 * MINUTE):
        incident_services.incident_acknowledge(
            incident=incident, actor=commander, source=Source.ADMIN
        )
    with at(T0 + 10 * MINUTE):
        incident_services.timeline_add_entry(
            incident=incident,
            kind=Kind.NOTE,
            summary="Error rate 40% on /checkout",
            actor=responder,
            source=Source.ADMIN,
        )
    with at(T0 + 15 * MINUTE):
        incident_services.timeline_add_entry(
            incident=incident,
            kind=Kind.DECISION,
            summary="Roll back the configuration push",
            actor=commander,
            source=Source.ADMIN,
        )
    with at(T0 + 20 * MINUTE):
        incident_services.incident_transition(
            incident=incident,
            to_status=Status.MONITORING,
            actor=commander,
            source=Source.ADMIN,
        )
    with at(T0 + 40 * MINUTE):
        incident_services.incident_transition(
            incident=incident,
            to_status=Status.RESOLVED,
            actor=responder,
            source=Source.ADMIN,
        )
    return reload_incident(incident)


# --- generation -----------------------------------------------------------------------


def test_resolving_a_sev1_starts_a_draft_owned_by_the_commander_due_after_policy_days(
    story, commander
):
    postmortem = PostMortem.objects.get(incident=story)

    assert postmortem.status == PMStatus.DRAFT
    assert postmortem.owner == commander
    assert postmortem.review_round == 0
    assert story.severity.postmortem_due_days == 7
    assert postmortem.due_at == story.resolved_at + timedelta(days=7)
    assert postmortem.due_at == T0 + 40 * MINUTE + timedelta(days=7)
    assert postmortem.synced_at == T0 + 40 * MINUTE


def test_generated_facts_hold_severity_services_roles_and_durations(story):
    facts = PostMortem.objects.get(incident=story).facts

    assert facts["reference"] == story.reference
    assert facts["severity"] == "SEV1"
    assert facts["services"] == ["Public API"]
    assert facts["estimated_users_affected"] == 1200
    assert facts["detection_source"] == "Monitoring alert"
    assert facts["times"]["started_at"] == (T0 - 12 * MINUTE).isoformat()
    assert facts["times"]["resolved_at"] == (T0 + 40 * MINUTE).isoformat()
    # Detect, mitigate and resolve from the start of impact; acknowledge from declaration.
    assert facts["durations"] == {
        "detect": 7 * 60,
        "acknowledge": 4 * 60,
        "mitigate": 32 * 60,
        "resolve": 52 * 60,
    }
    assert [(role["role"], role["user"]) for role in facts["roles"]] == [
        (Role.COMMANDER, "alice"),
        (Role.TECHNICAL_LEAD, "bob"),
    ]


def test_generated_sections_draft_summary_impact_and_detection_gaps(story):
    postmortem = PostMortem.objects.get(incident=story)

    assert postmortem.executive_summary == (
        "Checkout returns 502: a SEV1 (critical) outage in production affecting Public API. "
        "Impact began 2025-03-04 09:48 UTC and lasted 52m.\n\n"
        "A configuration push shrank the database pool."
    )
    assert postmortem.impact == (
        "- Services: Public API\n"
        "- Duration of impact: 52m\n"
        "- Estimated users affected: 1,200\n\n"
        "Card payments failed at checkout."
    )
    assert postmortem.detection_gaps == (
        "- Detected by monitoring alert 7m after the impact began.\n"
        "- Acknowledged 4m after it was declared, within the SEV1 response time of 15m.\n"
        "- Mitigated 32m and resolved 52m after the impact began."
    )
    # The analysis is for people to write.
    assert postmortem.root_cause == postmortem.lessons_learned == ""
    assert postmortem.generated == {
        "executive_summary": postmortem.executive_summary,
        "impact": postmortem.impact,
        "detection_gaps": postmortem.detection_gaps,
    }


def test_detection_gaps_say_when_acknowledgement_missed_the_response_time(declare, commander):
    with at(T0):
        incident = declare(commander=commander)
    with at(T0 + 20 * MINUTE):
        incident_services.incident_acknowledge(
            incident=incident, actor=commander, source=Source.ADMIN
        )
    with at(T0 + 30 * MINUTE):
        resolve(incident, actor=commander)

    gaps = PostMortem.objects.get(incident=incident).detection_gaps
    assert "- Acknowledged 20m after it was declared, outside the SEV1 response time of 15m." in (
        gaps
    )


@pytest.mark.usefixtures("without_activation")  # lists the incident's whole timeline
def test_timeline_copies_incident_events_marking_turning_points_key(story):
    postmortem = PostMortem.objects.get(incident=story)

    copied = [
        (entry.kind, entry.is_key, entry.occurred_at - T0, entry.event.kind)
        for entry in postmortem.timeline.select_related("event")
    ]
    assert copied == [
        (Kind.DECLARED, True, 0 * MINUTE, Kind.DECLARED),
        (Kind.ROLE_CHANGE, False, 0 * MINUTE, Kind.ROLE_CHANGE),
        (Kind.ROLE_CHANGE, False, 3 * MINUTE, Kind.ROLE_CHANGE),
        (Kind.STATUS_CHANGE, True, 4 * MINUTE, Kind.STATUS_CHANGE),
        (Kind.NOTE, False, 10 * MINUTE, Kind.NOTE),
        (Kind.DECISION, True, 15 * MINUTE, Kind.DECISION),
        (Kind.STATUS_CHANGE, True, 20 * MINUTE, Kind.STATUS_CHANGE),
        (Kind.STATUS_CHANGE, True, 40 * MINUTE, Kind.STATUS_CHANGE),
    ]
    note = postmortem.timeline.get(kind=Kind.NOTE)
    assert note.summary == "Error rate 40% on /checkout"
    # The review's own step ("Post-mortem started") is on the incident but not copied.
    assert review_events(story).count() == 1
    assert not postmortem.timeline.filter(kind=vocabulary.Kind.REVIEW).exists()


def test_participants_are_the_role_holders_and_the_declarer(story):
    postmortem = PostMortem.objects.get(incident=story)

    assert sorted(postmortem.participants.values_list("username", flat=True)) == [
        "alice",  # commander
        "bob",  # technical lead
        "carol",  # declared it
    ]


def test_starting_the_review_is_on_the_timeline_and_tells_the_owner(story, commander, responder):
    postmortem = PostMortem.objects.get(incident=story)

    event = review_events(story).get()
    assert event.summary == "Post-mortem started by alice, due 2025-03-11"
    assert event.author == responder  # who resolved it
    assert event.source == Source.ADMIN  # the source of the resolve that started it
    assert event.occurred_at == T0 + 40 * MINUTE
    assert event.details == {"postmortem": postmortem.pk}
    assert postmortem.history.first().history_user == responder

    note = Notification.objects.get(incident=story, event=Event.REVIEW)
    assert note.recipient == commander
    assert note.subject == f"You own the review: post-mortem {story.reference}"
    assert f"{SITE}/admin/postmortems/postmortem/{postmortem.pk}/change/" in note.body
    assert f"{SITE}/postmortems/{story.reference}/" in note.body


def test_the_owner_who_resolves_it_is_not_told_they_own_the_review(declare, commander):
    incident = declare(commander=commander)
    resolve(incident, actor=commander)

    assert PostMortem.objects.get(incident=incident).owner == commander
    assert not Notification.objects.filter(event=Event.REVIEW).exists()


def test_resolving_a_sev3_starts_no_review(declare, commander, sev3):
    assert not sev3.postmortem_required
    incident = declare(severity=sev3, commander=commander)

    resolve(incident, actor=commander)

    assert reload_incident(incident).status == Status.RESOLVED
    assert not PostMortem.objects.filter(incident=incident).exists()
    assert not review_events(incident).exists()


def test_a_sev3_review_can_be_started_by_hand_without_a_due_date(
    declare, commander, responder, sev3
):
    incident = declare(severity=sev3, commander=commander)
    resolve(incident, actor=commander)

    postmortem = services.postmortem_create(incident=incident, actor=responder, source=Source.ADMIN)

    assert postmortem.status == PMStatus.DRAFT
    assert postmortem.owner == commander  # the current commander, not who started it
    assert postmortem.due_at is None
    assert postmortem.facts["severity"] == "SEV3"
    assert postmortem.timeline.filter(kind=Kind.DECLARED, is_key=True).count() == 1
    assert review_events(incident).get().summary == "Post-mortem started by alice"


def test_a_review_started_before_resolution_gets_its_due_date_on_resolve(declare, commander):
    with at(T0):
        incident = declare(commander=commander)
        postmortem = services.postmortem_create(
            incident=incident, actor=commander, source=Source.ADMIN
        )
    assert postmortem.due_at is None

    with at(T0 + 30 * MINUTE):
        resolve(incident, actor=commander)

    assert PostMortem.objects.filter(incident=incident).count() == 1
    assert reload(postmortem).due_at == T0 + 30 * MINUTE + timedelta(days=7)


@pytest.mark.parametrize("status", [Status.TRIAGE, Status.CANCELLED])
def test_create_refuses_an_incident_that_was_never_declared_or_was_cancelled(
    declare, commander, sev3, status
):
    incident = declare(severity=sev3, triage=status == Status.TRIAGE)
    if status == Status.CANCELLED:
        incident_services.incident_transition(
            incident=incident, to_status=Status.CANCELLED, source=Source.ADMIN
        )

    with pytest.raises(StateConflict) as excinfo:
        services.postmortem_create(incident=incident, actor=commander, source=Source.ADMIN)

    assert excinfo.value.field == "incident"
    assert "only a declared incident gets a post-mortem" in str(excinfo.value)
    assert not PostMortem.objects.filter(incident=incident).exists()
    assert not review_events(incident).exists()


def test_create_refuses_a_second_review_of_the_same_incident(postmortem, commander):
    before = snapshot(postmortem)

    with pytest.raises(StateConflict) as excinfo:
        services.postmortem_create(
            incident=postmortem.incident, actor=commander, source=Source.ADMIN
        )

    assert f"{postmortem.incident.reference} already has a post-mortem" in str(excinfo.value)
    assert PostMortem.objects.filter(incident=postmortem.incident).count() == 1
    assert snapshot(postmortem) == before


# --- re-sync --------------------------------------------------------------------------


@pytest.fixture
def edited_then_moved(postmortem, commander, sev2):
    """alice rewrites the summary, moves the due date and re-marks two entries; then the
    incident records a note and a downgrade to SEV2."""
    declared = postmortem.timeline.get(kind=Kind.DECLARED)
    role = postmortem.timeline.get(kind=Kind.ROLE_CHANGE)
    services.postmortem_update(
        postmortem=postmortem,
        actor=commander,
        executive_summary="  In our words: checkout broke.  ",
        due_at=postmortem.incident.resolved_at + timedelta(days=14),
        timeline_marks={
            declared.pk: (False, "Declared from the alert, not by hand"),
            role.pk: (True, "alice took command at once"),
        },
        source=Source.ADMIN,
    )
    incident_services.timeline_add_entry(
        incident=postmortem.incident,
        kind=Kind.NOTE,
        summary="Support confirms the recovery",
        actor=commander,
        source=Source.ADMIN,
    )
    incident_services.incident_change_severity(
        incident=postmortem.incident,
        severity=sev2,
        reason="Only cards failed",
        actor=commander,
        source=Source.ADMIN,
    )
    return postmortem


def test_sync_adds_the_new_incident_events_and_returns_how_many(edited_then_moved, commander):
    postmortem = edited_then_moved
    before = postmortem.timeline.count()

    added = services.postmortem_sync(postmortem=postmortem, actor=commander, source=Source.ADMIN)

    assert added == 2
    new = list(postmortem.timeline.order_by("id")[before:])
    assert [(entry.kind, entry.is_key) for entry in new] == [
        (Kind.NOTE, False),
        (Kind.SEVERITY_CHANGE, True),
    ]
    assert new[0].summary == "Support confirms the recovery"
    assert (
        services.postmortem_sync(postmortem=postmortem, actor=commander, source=Source.ADMIN) == 0
    )
    assert not postmortem.timeline.filter(kind=vocabulary.Kind.REVIEW).exists()


def test_sync_keeps_the_writers_edited_section_and_marks(edited_then_moved, commander):
    postmortem = edited_then_moved

    services.postmortem_sync(postmortem=postmortem, actor=commander, source=Source.ADMIN)

    postmortem = reload(postmortem)
    assert postmortem.executive_summary == "In our words: checkout broke."
    assert postmortem.due_at == postmortem.incident.resolved_at + timedelta(days=14)
    declared = postmortem.timeline.get(kind=Kind.DECLARED)
    role = postmortem.timeline.get(kind=Kind.ROLE_CHANGE)
    assert (declared.is_key, declared.commentary) == (False, "Declared from the alert, not by hand")
    assert (role.is_key, role.commentary) == (True, "alice took command at once")


def test_sync_refreshes_untouched_generated_sections_with_the_new_facts(
    edited_then_moved, commander
):
    postmortem = edited_then_moved
    assert "SEV1 response time of 15m" in reload(postmortem).detection_gaps

    services.postmortem_sync(postmortem=postmortem, actor=commander, source=Source.ADMIN)

    postmortem = reload(postmortem)
    assert postmortem.facts["severity"] == "SEV2"
    assert "the SEV2 response time of 1h 00m." in postmortem.detection_gaps
    assert postmortem.detection_gaps == postmortem.generated["detection_gaps"]
    # What sync would have written for the summary is stored, but the writer's text stays.
    assert "a SEV2 (high) outage" in postmortem.generated["executive_summary"]
    assert postmortem.history.first().history_user == commander


# --- the review workflow --------------------------------------------------------------


def test_submit_sends_the_draft_to_review_in_round_one(draft, commander):
    postmortem = services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)

    postmortem = reload(postmortem)
    assert postmortem.status == PMStatus.IN_REVIEW
    assert postmortem.review_round == 1


@pytest.mark.parametrize("section", ["executive_summary", "impact", "root_cause"])
def test_submit_refused_while_a_required_section_is_blank(draft, commander, section):
    write(draft, *draft.reviewers.all(), actor=commander, **{section: "   "})
    before = snapshot(draft)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)

    assert SECTIONS[section][0].lower() in str(excinfo.value)
    assert "before submitting" in str(excinfo.value)
    assert snapshot(draft) == before


def test_submit_refused_without_an_owner(draft, commander, reviewer):
    write(draft, reviewer, actor=commander, owner=None)
    before = snapshot(draft)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)

    assert excinfo.value.field == "owner"
    assert snapshot(draft) == before


def test_submit_refused_without_a_reviewer(postmortem, commander):
    write(postmortem, actor=commander)
    before = snapshot(postmortem)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_submit(postmortem=postmortem, actor=commander, source=Source.ADMIN)

    assert excinfo.value.field == "reviewers"
    assert snapshot(postmortem) == before


@pytest.mark.parametrize("stage", ["submitted", "published"])
def test_submit_refused_unless_draft(request, commander, stage):
    postmortem = request.getfixturevalue(stage)
    before = snapshot(postmortem)

    with pytest.raises(StateConflict) as excinfo:
        services.postmortem_submit(postmortem=postmortem, actor=commander, source=Source.ADMIN)

    assert "Cannot submit" in str(excinfo.value)
    assert "not draft" in str(excinfo.value)
    assert snapshot(postmortem) == before


def test_approve_records_the_reviewers_decision_for_the_round(submitted, reviewer):
    record = services.postmortem_approve(
        postmortem=submitted, actor=reviewer, comment=" Clear. ", source=Source.ADMIN
    )

    record = ReviewDecision.objects.get(pk=record.pk)
    assert (record.reviewer, record.round, record.decision, record.comment) == (
        reviewer,
        1,
        ReviewDecision.Decision.APPROVED,
        "Clear.",
    )
    assert reload(submitted).status == PMStatus.IN_REVIEW  # publishing is a separate step


@pytest.mark.parametrize("who", ["commander", "outsider", None])
def test_only_named_reviewers_may_approve(request, submitted, who):
    actor = request.getfixturevalue(who) if who else None
    before = snapshot(submitted)

    with pytest.raises(StateConflict) as excinfo:
        services.postmortem_approve(postmortem=submitted, actor=actor, source=Source.ADMIN)

    assert "Only the named reviewers (rita)" in str(excinfo.value)
    assert snapshot(submitted) == before


DECISIONS = {
    "approve": lambda pm, owner, reviewer: services.postmortem_approve(
        postmortem=pm,
        actor=reviewer,
        source=Source.ADMIN,
    ),
    "request changes to": lambda pm, owner, reviewer: services.postmortem_request_changes(
        postmortem=pm,
        actor=reviewer,
        comment="More detail",
        source=Source.ADMIN,
    ),
    "publish": lambda pm, owner, reviewer: services.postmortem_publish(
        postmortem=pm, actor=owner, source=Source.ADMIN
    ),
}


@pytest.mark.parametrize("stage", ["draft", "published"])
@pytest.mark.parametrize("doing", DECISIONS)
def test_deciding_and_publishing_are_refused_unless_in_review(
    request, commander, reviewer, doing, stage
):
    postmortem = request.getfixturevalue(stage)
    before = snapshot(postmortem)

    with pytest.raises(StateConflict) as excinfo:
        DECISIONS[doing](postmortem, commander, reviewer)

    assert f"Cannot {doing} the post-mortem of {postmortem.incident.reference}" in str(
        excinfo.value
    )
    assert "not in review" in str(excinfo.value)
    assert snapshot(postmortem) == before


def test_a_reviewer_decides_once_per_round(draft, commander, reviewer, responder):
    write(draft, reviewer, responder, actor=commander)
    services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)
    services.postmortem_approve(postmortem=draft, actor=reviewer, source=Source.ADMIN)
    before = snapshot(draft)

    for decide in (
        lambda: services.postmortem_approve(postmortem=draft, actor=reviewer, source=Source.ADMIN),
        lambda: services.postmortem_request_changes(
            postmortem=draft,
            actor=reviewer,
            comment="On second thought",
            source=Source.ADMIN,
        ),
    ):
        with pytest.raises(StateConflict) as excinfo:
            decide()
        assert "rita already decided on round 1" in str(excinfo.value)

    assert snapshot(draft) == before


def test_request_changes_sends_the_review_back_to_draft_with_the_comment(submitted, reviewer):
    record = services.postmortem_request_changes(
        postmortem=submitted,
        actor=reviewer,
        comment="  Name the alert that fired.  ",
        source=Source.ADMIN,
    )

    postmortem = reload(submitted)
    assert postmortem.status == PMStatus.DRAFT
    assert postmortem.review_round == 1  # the next submission starts round 2
    assert record.decision == ReviewDecision.Decision.CHANGES_REQUESTED
    assert record.comment == "Name the alert that fired."


@pytest.mark.parametrize("comment", ["", "   ", None])
def test_request_changes_needs_a_comment(submitted, reviewer, comment):
    before = snapshot(submitted)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_request_changes(
            postmortem=submitted, actor=reviewer, comment=comment, source=Source.ADMIN
        )

    assert excinfo.value.field == "comment"
    assert snapshot(submitted) == before


def test_only_named_reviewers_may_request_changes(submitted, outsider):
    before = snapshot(submitted)

    with pytest.raises(StateConflict):
        services.postmortem_request_changes(
            postmortem=submitted,
            actor=outsider,
            comment="I would write it differently",
            source=Source.ADMIN,
        )

    assert snapshot(submitted) == before


def test_publish_refused_until_every_reviewer_approved(draft, commander, reviewer, responder):
    write(draft, reviewer, responder, actor=commander)
    services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)
    services.postmortem_approve(postmortem=draft, actor=reviewer, source=Source.ADMIN)
    before = snapshot(draft)

    with pytest.raises(StateConflict) as excinfo:
        services.postmortem_publish(postmortem=draft, actor=commander, source=Source.ADMIN)

    assert "waiting for approval from bob" in str(excinfo.value)
    assert "rita" not in str(excinfo.value)
    assert snapshot(draft) == before


def test_approvals_from_an_earlier_round_do_not_count_after_resubmission(
    draft, commander, reviewer, responder
):
    write(draft, reviewer, responder, actor=commander)
    services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)
    services.postmortem_approve(
        postmortem=draft, actor=reviewer, source=Source.ADMIN
    )  # rita, round 1
    services.postmortem_request_changes(
        postmortem=draft,
        actor=responder,
        comment="Add the rollback to the timeline",
        source=Source.ADMIN,
    )
    services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)  # round 2
    services.postmortem_approve(postmortem=draft, actor=responder, source=Source.ADMIN)

    with pytest.raises(StateConflict) as excinfo:
        services.postmortem_publish(postmortem=draft, actor=commander, source=Source.ADMIN)
    assert "waiting for approval from rita" in str(excinfo.value)
    assert reload(draft).status == PMStatus.IN_REVIEW

    services.postmortem_approve(
        postmortem=draft, actor=reviewer, source=Source.ADMIN
    )  # rita, round 2
    services.postmortem_publish(postmortem=draft, actor=commander, source=Source.ADMIN)
    assert reload(draft).status == PMStatus.PUBLISHED


def test_publish_refused_when_the_reviewers_were_removed_before_anyone_approved(
    submitted, commander
):
    services.postmortem_update(
        postmortem=submitted, actor=commander, reviewers=[], source=Source.ADMIN
    )

    with pytest.raises(DomainError, match="no reviewer is named"):
        services.postmortem_publish(postmortem=submitted, actor=commander, source=Source.ADMIN)

    assert reload(submitted).status == PMStatus.IN_REVIEW


def test_an_edit_after_approval_starts_a_new_round_and_asks_the_reviewers_again(
    submitted, commander, reviewer
):
    services.postmortem_approve(postmortem=submitted, actor=reviewer, source=Source.ADMIN)

    services.postmortem_update(
        postmortem=submitted,
        actor=commander,
        root_cause="A different cause entirely.",
        source=Source.ADMIN,
    )

    postmortem = reload(submitted)
    assert (postmortem.status, postmortem.review_round) == (PMStatus.IN_REVIEW, 2)
    with pytest.raises(StateConflict, match="waiting for approval from rita"):
        services.postmortem_publish(postmortem=postmortem, actor=commander, source=Source.ADMIN)
    asked = Notification.objects.filter(recipient=reviewer, subject__startswith="Changed after")
    assert asked.count() == 1
    assert TimelineEvent.objects.filter(
        incident=postmortem.incident, summary__contains="edited after approval"
    ).exists()


def test_an_edit_in_review_before_any_approval_keeps_the_round(submitted, commander):
    services.postmortem_update(
        postmortem=submitted, actor=commander, impact="Fewer users.", source=Source.ADMIN
    )

    assert reload(submitted).review_round == 1


def test_publish_stamps_who_and_when(submitted, commander, reviewer):
    services.postmortem_approve(postmortem=submitted, actor=reviewer, source=Source.ADMIN)

    with at(T0 + timedelta(days=400)):
        services.postmortem_publish(postmortem=submitted, actor=commander, source=Source.ADMIN)

    postmortem = reload(submitted)
    assert postmortem.status == PMStatus.PUBLISHED
    assert postmortem.published_at == T0 + timedelta(days=400)
    assert postmortem.published_by == commander


def test_reopen_takes_a_published_review_back_to_draft_keeping_the_reason(published, commander):
    services.postmortem_reopen(
        postmortem=published, actor=commander, reason="  Wrong cause  ", source=Source.ADMIN
    )

    postmortem = reload(published)
    assert postmortem.status == PMStatus.DRAFT
    assert postmortem.published_at is None
    assert postmortem.published_by is None
    assert postmortem.reopen_reason == "Wrong cause"
    assert postmortem.history.first().history_change_reason == "Wrong cause"


@pytest.mark.parametrize("reason", ["", "  ", None])
def test_reopen_needs_a_reason(published, commander, reason):
    before = snapshot(published)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_reopen(
            postmortem=published, actor=commander, reason=reason, source=Source.ADMIN
        )

    assert excinfo.value.field == "reason"
    assert snapshot(published) == before


@pytest.mark.parametrize("stage", ["draft", "submitted"])
def test_reopen_refused_unless_published(request, commander, stage):
    postmortem = request.getfixturevalue(stage)
    before = snapshot(postmortem)

    with pytest.raises(StateConflict) as excinfo:
        services.postmortem_reopen(
            postmortem=postmortem, actor=commander, reason="Why not", source=Source.ADMIN
        )

    assert "not published" in str(excinfo.value)
    assert snapshot(postmortem) == before


def test_a_reopened_review_needs_fresh_approval(published, commander, reviewer):
    services.postmortem_reopen(
        postmortem=published, actor=commander, reason="Wrong cause", source=Source.ADMIN
    )
    services.postmortem_submit(postmortem=published, actor=commander, source=Source.ADMIN)
    assert reload(published).review_round == 2

    with pytest.raises(StateConflict) as excinfo:
        services.postmortem_publish(postmortem=published, actor=commander, source=Source.ADMIN)
    assert "waiting for approval from rita" in str(excinfo.value)

    services.postmortem_approve(postmortem=published, actor=reviewer, source=Source.ADMIN)
    services.postmortem_publish(postmortem=published, actor=commander, source=Source.ADMIN)
    assert reload(published).status == PMStatus.PUBLISHED


def test_the_owner_cannot_be_a_reviewer(draft, commander, reviewer):
    before = snapshot(draft)

    with pytest.raises(DomainError) as named_owner:
        services.postmortem_update(
            postmortem=draft, actor=commander, reviewers=[commander], source=Source.ADMIN
        )
    with pytest.raises(DomainError) as owner_is_reviewer:
        services.postmortem_update(
            postmortem=draft, actor=commander, owner=reviewer, source=Source.ADMIN
        )

    assert named_owner.value.field == owner_is_reviewer.value.field == "reviewers"
    assert "cannot review their own post-mortem" in str(named_owner.value)
    assert snapshot(draft) == before


EDITS = {
    "update": lambda pm, actor: services.postmortem_update(
        postmortem=pm,
        actor=actor,
        root_cause="Rewritten",
        source=Source.ADMIN,
    ),
    "add factor": lambda pm, actor: services.contributing_factor_save(
        factor=ContributingFactor(postmortem=pm, category="process", description="No canary"),
        actor=actor,
        source=Source.ADMIN,
    ),
    "change factor": lambda pm, actor: services.contributing_factor_save(
        factor=_changed(pm.contributing_factors.get()),
        actor=actor,
        source=Source.ADMIN,
    ),
    "delete factor": lambda pm, actor: services.contributing_factor_delete(
        factor=pm.contributing_factors.get(),
        actor=actor,
        source=Source.ADMIN,
    ),
    "sync": lambda pm, actor: services.postmortem_sync(
        postmortem=pm, actor=actor, source=Source.ADMIN
    ),
}


def _changed(factor: ContributingFactor) -> ContributingFactor:
    factor.description = "Changed after publication"
    return factor


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_a_published_review_is_read_only(published, commander, edit):
    # Something new to sync, so a refused sync visibly brings nothing in.
    incident_services.timeline_add_entry(
        incident=published.incident,
        kind=Kind.NOTE,
        summary="Late note",
        actor=commander,
        source=Source.ADMIN,
    )
    before = snapshot(published)

    with pytest.raises(StateConflict) as excinfo:
        edit(published, commander)

    assert "published and read-only" in str(excinfo.value)
    assert snapshot(published) == before


def test_update_refuses_fields_that_are_not_the_writers(draft, commander):
    before = snapshot(draft)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_update(
            postmortem=draft, actor=commander, status=PMStatus.PUBLISHED, source=Source.ADMIN
        )

    assert "Cannot edit status" in str(excinfo.value)
    assert snapshot(draft) == before


def test_update_refuses_marks_for_entries_not_in_the_review(draft, commander):
    before = snapshot(draft)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_update(
            postmortem=draft,
            actor=commander,
            root_cause="Changed",
            timeline_marks={999_999: (True, "")},
            source=Source.ADMIN,
        )

    assert excinfo.value.field == "timeline"
    assert snapshot(draft) == before


def test_contributing_factors_replace_the_list_in_order(draft, commander):
    services.postmortem_update(
        postmortem=draft,
        actor=commander,
        contributing_factors=[("process", " No canary stage "), ("external", "Vendor outage")],
        source=Source.ADMIN,
    )

    assert list(draft.contributing_factors.values_list("position", "category", "description")) == [
        (0, "process", "No canary stage"),
        (1, "external", "Vendor outage"),
    ]


def test_a_factor_needs_a_known_category_and_a_description(draft, commander):
    before = snapshot(draft)

    with pytest.raises(DomainError) as unknown:
        services.contributing_factor_save(
            factor=ContributingFactor(postmortem=draft, category="blame", description="bob"),
            actor=commander,
            source=Source.ADMIN,
        )
    with pytest.raises(DomainError) as empty:
        services.postmortem_update(
            postmortem=draft,
            actor=commander,
            contributing_factors=[("process", "  ")],
            source=Source.ADMIN,
        )

    assert "Unknown category 'blame'" in str(unknown.value)
    assert empty.value.field == "contributing_factors"
    assert snapshot(draft) == before


def test_factor_changes_record_the_actor_in_history(draft, commander):
    factor = draft.contributing_factors.get()
    factor_id = factor.pk

    factor.description = "Pool size had no lower bound"
    services.contributing_factor_save(factor=factor, actor=commander, source=Source.ADMIN)
    services.contributing_factor_delete(factor=factor, actor=commander, source=Source.ADMIN)

    history = ContributingFactor.history.filter(id=factor_id).order_by("-history_id")
    assert [(row.history_type, row.history_user) for row in history[:2]] == [
        ("-", commander),
        ("~", commander),
    ]
    assert not draft.contributing_factors.exists()


# --- the close guard ------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "state"), [("draft", "draft"), ("submitted", "in review")])
def test_closing_a_sev1_is_refused_until_its_review_is_published(request, stage, state):
    postmortem = request.getfixturevalue(stage)
    incident = postmortem.incident
    history = incident.history.count()

    with pytest.raises(StateConflict) as excinfo:
        close(incident)

    assert str(excinfo.value) == (
        f"{incident.reference} cannot be closed: SEV1 requires a published post-mortem "
        f"and its post-mortem is {state}."
    )
    assert excinfo.value.field == "status"
    incident = reload_incident(incident)
    assert incident.status == Status.RESOLVED
    assert incident.closed_at is None
    assert incident.history.count() == history


def test_closing_is_refused_when_a_re_rating_requires_a_review_none_started(
    declare, commander, sev2, sev3
):
    incident = declare(severity=sev3, commander=commander)
    resolve(incident, actor=commander)
    incident_services.incident_change_severity(
        incident=incident,
        severity=sev2,
        reason="More customers were hit",
        actor=commander,
        source=Source.ADMIN,
    )

    with pytest.raises(StateConflict) as excinfo:
        close(incident, actor=commander)

    assert "SEV2 requires a published post-mortem and none has been started" in str(excinfo.value)
    assert reload_incident(incident).status == Status.RESOLVED


def test_closing_a_sev1_whose_review_was_deleted_is_refused(postmortem):
    incident = postmortem.incident
    postmortem.delete()

    with pytest.raises(StateConflict) as excinfo:
        close(incident)

    assert "none has been started" in str(excinfo.value)
    assert reload_incident(incident).status == Status.RESOLVED


def test_a_sev1_closes_once_its_review_is_published(published, commander):
    close(published.incident, actor=commander)

    assert reload_incident(published.incident).status == Status.CLOSED


def test_a_sev3_closes_without_a_review(declare, commander, sev3):
    incident = declare(severity=sev3, commander=commander)
    resolve(incident, actor=commander)

    close(incident, actor=commander)

    assert reload_incident(incident).status == Status.CLOSED
    assert not PostMortem.objects.filter(incident=incident).exists()


# --- timeline and history -------------------------------------------------------------


def test_every_review_step_is_on_the_incident_timeline_and_in_history_with_its_actor(
    draft, commander, reviewer
):
    incident = draft.incident
    steps = [
        (
            commander,
            lambda: services.postmortem_submit(
                postmortem=draft, actor=commander, source=Source.ADMIN
            ),
        ),
        (
            reviewer,
            lambda: services.postmortem_request_changes(
                postmortem=draft,
                actor=reviewer,
                comment="Add the rollback",
                source=Source.ADMIN,
            ),
        ),
        (
            commander,
            lambda: services.postmortem_submit(
                postmortem=draft, actor=commander, source=Source.ADMIN
            ),
        ),
        (
            reviewer,
            lambda: services.postmortem_approve(
                postmortem=draft, actor=reviewer, source=Source.ADMIN
            ),
        ),
        (
            commander,
            lambda: services.postmortem_publish(
                postmortem=draft, actor=commander, source=Source.ADMIN
            ),
        ),
        (
            commander,
            lambda: services.postmortem_reopen(
                postmortem=draft,
                actor=commander,
                reason="Wrong cause",
                source=Source.ADMIN,
            ),
        ),
    ]
    already = review_events(incident).count()
    history_users = []
    for _, step in steps:
        history = reload(draft).history.count()
        result = step()
        # An approval changes no review row: its history is the decision's.
        changed = reload(draft).history if reload(draft).history.count() > history else None
        decided = result.history if isinstance(result, ReviewDecision) else None
        history_users.append(
            (
                changed.first().history_user if changed else None,
                decided.get().history_user if decided else None,
            )
        )

    assert history_users == [
        (commander, None),
        (reviewer, reviewer),
        (commander, None),
        (None, reviewer),
        (commander, None),
        (commander, None),
    ]
    events = list(review_events(incident)[already:])
    assert [(event.summary, event.author) for event in events] == [
        ("Post-mortem submitted for review (round 1) to rita", commander),
        ("Post-mortem: Changes requested by rita: Add the rollback", reviewer),
        ("Post-mortem submitted for review (round 2) to rita", commander),
        ("Post-mortem approved by rita", reviewer),
        ("Post-mortem published", commander),
        ("Post-mortem reopened: Wrong cause", commander),
    ]
    assert all(event.details["postmortem"] == draft.pk for event in events)
    assert events[0].details["round"] == 1
    assert events[-1].details["reason"] == "Wrong cause"


def test_editing_records_the_writer_in_history(postmortem, responder):
    services.postmortem_update(
        postmortem=postmortem, actor=responder, root_cause="Pool size", source=Source.ADMIN
    )

    row = reload(postmortem).history.first()
    assert row.history_user == responder
    assert row.root_cause == "Pool size"


# --- notifications --------------------------------------------------------------------


def test_submitting_tells_each_reviewer_with_links(draft, commander, reviewer, responder):
    write(draft, reviewer, responder, actor=commander)
    mark = last_notification_id()

    services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)

    told = list(sent_since(mark, Event.REVIEW))
    assert recipients(told) == {"rita", "bob"}
    reference = draft.incident.reference
    for note in told:
        assert note.subject == f"Review requested: post-mortem {reference}"
        assert f"Please review the post-mortem of {reference}" in note.body
        assert f"Edit: {SITE}/admin/postmortems/postmortem/{draft.pk}/change/" in note.body
        assert f"Read: {SITE}/postmortems/{reference}/" in note.body


def test_a_reviewer_who_submits_is_not_told_to_review(draft, commander, reviewer, responder):
    write(draft, reviewer, responder, actor=commander)
    mark = last_notification_id()

    services.postmortem_submit(postmortem=draft, actor=responder, source=Source.ADMIN)

    assert recipients(sent_since(mark, Event.REVIEW)) == {"rita"}


def test_the_owner_is_told_of_each_approval_and_what_is_still_awaited(
    draft, commander, reviewer, responder
):
    write(draft, reviewer, responder, actor=commander)
    services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)
    mark = last_notification_id()

    services.postmortem_approve(postmortem=draft, actor=reviewer, source=Source.ADMIN)
    services.postmortem_approve(postmortem=draft, actor=responder, source=Source.ADMIN)

    told = list(sent_since(mark, Event.REVIEW).order_by("id"))
    assert [note.recipient for note in told] == [commander, commander]
    assert told[0].subject == f"Approved: post-mortem {draft.incident.reference}"
    assert told[0].body.startswith("Post-mortem approved by rita. Still waiting for bob.")
    assert told[1].body.startswith("Post-mortem approved by bob. It is ready to publish.")


def test_the_owner_is_told_what_changes_were_requested(submitted, commander, reviewer):
    mark = last_notification_id()

    services.postmortem_request_changes(
        postmortem=submitted,
        actor=reviewer,
        comment="Name the alert",
        source=Source.ADMIN,
    )

    note = sent_since(mark, Event.REVIEW).get()
    assert note.recipient == commander
    assert note.subject == f"Changes requested: post-mortem {submitted.incident.reference}"
    assert note.body.startswith("Changes requested by rita: Name the alert")
    assert f"{SITE}/postmortems/{submitted.incident.reference}/" in note.body


def test_reopening_tells_the_owner_and_reviewers_but_not_who_reopened(
    published, commander, security_member
):
    mark = last_notification_id()
    services.postmortem_reopen(
        postmortem=published, actor=commander, reason="Wrong cause", source=Source.ADMIN
    )
    assert recipients(sent_since(mark, Event.REVIEW)) == {"rita"}

    services.postmortem_submit(postmortem=published, actor=commander, source=Source.ADMIN)
    services.postmortem_approve(
        postmortem=published, actor=published.reviewers.get(), source=Source.ADMIN
    )
    services.postmortem_publish(postmortem=published, actor=commander, source=Source.ADMIN)
    mark = last_notification_id()
    services.postmortem_reopen(
        postmortem=published, actor=security_member, reason="Typo", source=Source.ADMIN
    )
    told = list(sent_since(mark, Event.REVIEW))
    assert recipients(told) == {"alice", "rita"}
    assert all(note.body.startswith("Typo") for note in told)


def test_publication_reaches_the_stakeholder_groups_of_the_severity(
    submitted, commander, reviewer, stakeholder, django_user_model
):
    StakeholderGroup.objects.get(slug="executive-team").members.add(stakeholder)
    add_member(django_user_model, "cora", "external-customers")  # via the status page only
    services.postmortem_approve(postmortem=submitted, actor=reviewer, source=Source.ADMIN)
    incident = submitted.incident

    services.postmortem_publish(postmortem=submitted, actor=commander, source=Source.ADMIN)

    note = Notification.objects.get(event=Event.REVIEW_PUBLISHED)
    assert note.recipient == stakeholder
    assert note.incident == incident
    assert note.subject == f"Post-mortem published: {incident.reference} {incident.title}"
    assert note.body.startswith(WRITTEN["executive_summary"])
    assert note.body.endswith(f"Read it: {SITE}/postmortems/{incident.reference}/")


def test_publication_of_a_sev2_skips_groups_that_hear_only_of_sev1(
    declare, commander, reviewer, sev2, django_user_model
):
    add_member(django_user_model, "erin", "executive-team")  # SEV1 and SEV2
    add_member(django_user_model, "lena", "legal-compliance")  # SEV1 only
    incident = declare(severity=sev2, commander=commander)
    resolve(incident, actor=commander)
    postmortem = write(PostMortem.objects.get(incident=incident), reviewer, actor=commander)
    services.postmortem_submit(postmortem=postmortem, actor=commander, source=Source.ADMIN)
    services.postmortem_approve(postmortem=postmortem, actor=reviewer, source=Source.ADMIN)

    services.postmortem_publish(postmortem=postmortem, actor=commander, source=Source.ADMIN)

    assert recipients(sent_since(0, Event.REVIEW_PUBLISHED)) == {"erin"}


def test_publication_of_a_confidential_review_reaches_only_cleared_groups(
    declare, commander, security_member, security_type, stakeholder, django_user_model
):
    StakeholderGroup.objects.get(slug="executive-team").members.add(stakeholder)
    add_member(django_user_model, "sid", "security-team")
    add_member(django_user_model, "lena", "legal-compliance")
    incident = declare(incident_type=security_type, commander=commander, title="Stuffing")
    assert incident.confidential
    resolve(incident, actor=commander)
    postmortem = write(PostMortem.objects.get(incident=incident), security_member, actor=commander)
    services.postmortem_submit(postmortem=postmortem, actor=commander, source=Source.ADMIN)
    services.postmortem_approve(postmortem=postmortem, actor=security_member, source=Source.ADMIN)

    services.postmortem_publish(postmortem=postmortem, actor=commander, source=Source.ADMIN)

    assert recipients(sent_since(0, Event.REVIEW_PUBLISHED)) == {"sid", "lena"}


# --- confidentiality ------------------------------------------------------------------


@pytest.fixture
def confidential(declare, commander, security_type):
    """The draft review of a resolved confidential security incident commanded by alice."""
    incident = declare(incident_type=security_type, commander=commander, title="Stuffing")
    resolve(incident, actor=commander)
    return PostMortem.objects.get(incident=incident)


def test_a_reviewer_who_may_not_see_the_confidential_incident_is_refused(
    confidential, commander, reviewer
):
    before = snapshot(confidential)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_update(
            postmortem=confidential, actor=commander, reviewers=[reviewer], source=Source.ADMIN
        )

    assert excinfo.value.field == "reviewers"
    assert f"rita may not see confidential {confidential.incident.reference}" in str(excinfo.value)
    assert snapshot(confidential) == before


def test_an_owner_who_may_not_see_the_confidential_incident_is_refused(
    confidential, commander, outsider
):
    before = snapshot(confidential)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_update(
            postmortem=confidential, actor=commander, owner=outsider, source=Source.ADMIN
        )

    assert excinfo.value.field == "owner"
    assert snapshot(confidential) == before


def test_starting_a_confidential_review_for_an_owner_who_may_not_see_it_is_refused(
    declare, commander, outsider, security_type, sev3
):
    incident = declare(incident_type=security_type, severity=sev3, commander=commander)
    resolve(incident, actor=commander)

    with pytest.raises(DomainError) as excinfo:
        services.postmortem_create(
            incident=incident, actor=commander, owner=outsider, source=Source.ADMIN
        )

    assert excinfo.value.field == "owner"
    assert not PostMortem.objects.filter(incident=incident).exists()
    assert not review_events(incident).exists()


def test_the_security_group_and_incident_participants_may_review_a_confidential_one(
    confidential, commander, security_member, responder
):
    incident_services.role_assign(
        incident=confidential.incident,
        role=Role.SCRIBE,
        user=responder,
        actor=commander,
        source=Source.ADMIN,
    )

    services.postmortem_update(
        postmortem=confidential,
        actor=commander,
        reviewers=[security_member, responder],
        source=Source.ADMIN,
    )

    assert sorted(confidential.reviewers.values_list("username", flat=True)) == ["bob", "carol"]


# --- all or nothing -------------------------------------------------------------------


def test_a_submission_whose_notice_fails_keeps_nothing(draft, commander, monkeypatch):
    before = snapshot(draft)
    monkeypatch.setattr(services.notifications, "notify", failing_on(Event.REVIEW))

    with pytest.raises(RuntimeError):
        services.postmortem_submit(postmortem=draft, actor=commander, source=Source.ADMIN)

    assert snapshot(draft) == before


def test_an_approval_whose_notice_fails_keeps_nothing(submitted, reviewer, monkeypatch):
    before = snapshot(submitted)
    monkeypatch.setattr(services.notifications, "notify", failing_on(Event.REVIEW))

    with pytest.raises(RuntimeError):
        services.postmortem_approve(postmortem=submitted, actor=reviewer, source=Source.ADMIN)

    assert snapshot(submitted) == before
    assert not ReviewDecision.objects.exists()


def test_a_publication_whose_notice_fails_keeps_nothing(
    submitted, commander, reviewer, monkeypatch
):
    services.postmortem_approve(postmortem=submitted, actor=reviewer, source=Source.ADMIN)
    before = snapshot(submitted)
    monkeypatch.setattr(services.notifications, "notify", failing_on(Event.REVIEW_PUBLISHED))

    with pytest.raises(RuntimeError):
        services.postmortem_publish(postmortem=submitted, actor=commander, source=Source.ADMIN)

    assert snapshot(submitted) == before
    assert reload(submitted).published_by is None


def test_an_edit_refused_midway_keeps_nothing(draft, commander):
    entry = draft.timeline.get(kind=Kind.DECLARED)
    before = snapshot(draft)

    # The commentary is checked only after the sections were saved.
    with pytest.raises(DomainError):
        services.postmortem_update(
            postmortem=draft,
            actor=commander,
            root_cause="Rewritten",
            timeline_marks={entry.pk: (False, "x" * (services.TEXT_LIMIT + 1))},
            source=Source.ADMIN,
        )

    assert snapshot(draft) == before


def test_a_review_that_fails_to_start_keeps_the_incident_unresolved(
    declare, commander, monkeypatch
):
    incident = declare(commander=commander)
    incident_services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
    events = TimelineEvent.objects.filter(incident=incident).count()

    def broken(*args, **kwargs):
        raise RuntimeError("drafting failed")

    monkeypatch.setattr(services, "draft_sections", broken)
    with pytest.raises(RuntimeError):
        resolve(incident, actor=commander)

    incident = reload_incident(incident)
    assert incident.status == Status.INVESTIGATING
    assert incident.resolved_at is None
    assert TimelineEvent.objects.filter(incident=incident).count() == events
    assert not PostMortem.objects.filter(incident=incident).exists()


@pytest.mark.parametrize("field", ["due_at", "review_meeting_at"])
@pytest.mark.parametrize("years", [-2, 2, 7000])
def test_review_dates_stay_within_a_year_of_today(postmortem, field, years):
    # A due date years away would keep the review from ever being overdue.
    try:
        when = timezone.now() + timedelta(days=365 * years)
    except OverflowError:
        when = datetime(9999, 12, 31, tzinfo=UTC)
    with pytest.raises(DomainError) as refused:
        services.postmortem_update(postmortem=postmortem, source=Source.ADMIN, **{field: when})
    assert refused.value.field == field
    soon = timezone.now() + timedelta(days=30)
    services.postmortem_update(postmortem=postmortem, source=Source.ADMIN, **{field: soon})
