"""The action item service layer: creating items on incidents and reviews, default due
dates, validation, the lifecycle table, the records every step leaves (updates, history,
timeline, notifications) and the publish guard it adds to the review workflow."""

import itertools
from datetime import date, timedelta

import pytest
from django.utils import timezone

from incidents import services as incident_services
from incidents.errors import DomainError, StateConflict
from incidents.models import Notification, Source, TimelineEvent
from postmortems import services as pm_services
from postmortems.extensions import PublishRequest
from postmortems.models import PostMortem
from remediation import services, vocabulary
from remediation.models import ActionItem, ActionItemUpdate
from remediation.services import TRANSITIONS
from tests.conftest import make_user
from tests.reviews import in_review, publish

Status = ActionItem.Status
Kind = ActionItemUpdate.Kind
ALL_STATUSES = list(Status.values)
REASON = "Waiting for the vendor's fix."


# --- fixtures (copied from tests/postmortems/conftest.py: no shared conftest here) ----


@pytest.fixture
def reviewer(db, django_user_model):
    return make_user(django_user_model, "rita", "Incident commanders", is_staff=True)


@pytest.fixture
def resolved(declare, commander, api_service):
    from incidents import services as incident_services
    from incidents.models import Status as IncidentStatus

    incident = declare(commander=commander, services=[api_service])
    incident_services.incident_acknowledge(incident=incident, actor=commander, source=Source.ADMIN)
    return incident_services.incident_transition(
        incident=incident,
        to_status=IncidentStatus.RESOLVED,
        source=Source.ADMIN,
    )


@pytest.fixture
def postmortem(resolved) -> PostMortem:
    return PostMortem.objects.get(incident=resolved)


@pytest.fixture
def incident(declare, commander):
    return declare(commander=commander)


@pytest.fixture
def create(incident, commander, responder):
    """Create an item on `incident` as alice, owned by bob, unless told otherwise."""

    def _create(**overrides):
        fields = {
            "title": "Add a pool size check to the deploy",
            "category": ActionItem.Category.TECHNICAL,
            "incident": incident,
            "actor": commander,
            "owner": responder,
        }
        fields.update(overrides)
        return services.action_item_create(source=Source.ADMIN, **fields)

    return _create


def follow_ups(user):
    return Notification.objects.filter(event=vocabulary.Event.FOLLOW_UP, recipient=user)


def put_in(item, status, actor):
    """Bring a fresh (open) item into `status` through legal moves."""
    if status != Status.OPEN:
        services.action_item_transition(
            item=item, to_status=status, actor=actor, note=REASON, source=Source.ADMIN
        )
    item.refresh_from_db()
    assert item.status == status
    return item


def snapshot(item):
    item.refresh_from_db()
    return (
        item.status,
        item.blocked_reason,
        item.blocked_at,
        item.wont_do_reason,
        item.completed_at,
        item.completed_by_id,
        item.verification_note,
        item.updates.count(),
        item.history.count(),
        TimelineEvent.objects.filter(incident=item.incident).count(),
    )


# --- creating -------------------------------------------------------------------------


def test_create_on_an_incident_records_everything(create, incident, commander, responder):
    item = create(priority="P2", description="So a tiny pool fails the deploy.")

    item.refresh_from_db()
    assert item.incident == incident
    assert item.postmortem is None
    assert item.status == Status.OPEN
    assert item.created_by == commander
    assert item.due_on == timezone.localdate() + timedelta(days=30)
    created = item.updates.get()
    assert (created.kind, created.to_status, created.author) == (Kind.CREATED, "open", commander)
    assert item.history.latest().history_user == commander
    event = TimelineEvent.objects.filter(incident=incident, kind=vocabulary.Kind.FOLLOW_UP).get()
    assert event.details == {"action_item": item.pk}
    assert item.title in event.summary
    # The owner is told about their new item.
    told = follow_ups(responder).get()
    assert item.title in told.subject


def test_create_from_a_postmortem_takes_its_incident(postmortem, commander, responder):
    item = services.action_item_create(
        title="Load-test the pool",
        category="process",
        postmortem=postmortem,
        owner=responder,
        actor=commander,
        source=Source.ADMIN,
    )
    assert item.postmortem == postmortem
    assert item.incident == postmortem.incident
    # The same incident given explicitly is fine too.
    again = services.action_item_create(
        title="Alert on pool exhaustion",
        category="technical",
        postmortem=postmortem,
        incident=postmortem.incident,
        actor=commander,
        source=Source.ADMIN,
    )
    assert again.incident == postmortem.incident


def test_create_from_a_postmortem_of_another_incident_is_refused(postmortem, declare, commander):
    other = declare(title="Search is slow")
    with pytest.raises(DomainError) as refused:
        services.action_item_create(
            title="Misfiled",
            category="technical",
            postmortem=postmortem,
            incident=other,
            actor=commander,
            source=Source.ADMIN,
        )
    assert refused.value.field == "postmortem"
    assert not ActionItem.objects.exists()


def test_a_published_review_takes_no_new_items(postmortem, reviewer, commander):
    publish(postmortem, reviewer)
    postmortem.refresh_from_db()
    assert postmortem.is_published
    with pytest.raises(StateConflict, match="published"):
        services.action_item_create(
            title="Too late",
            category="process",
            postmortem=postmortem,
            actor=commander,
            source=Source.ADMIN,
        )
    assert not ActionItem.objects.exists()
    # Adding it to the incident instead still works.
    item = services.action_item_create(
        title="Noted on the incident",
        category="process",
        incident=postmortem.incident,
        actor=commander,
        source=Source.ADMIN,
    )
    assert item.postmortem is None


def test_create_needs_an_incident(commander):
    with pytest.raises(DomainError) as refused:
        services.action_item_create(
            title="Orphan", category="technical", actor=commander, source=Source.ADMIN
        )
    assert refused.value.field == "incident"


@pytest.mark.parametrize(("priority", "days"), [("P1", 7), ("P2", 30), ("P3", 90), ("P4", 180)])
def test_due_date_defaults_from_priority(create, priority, days):
    item = create(priority=priority)
    assert item.due_on == timezone.localdate() + timedelta(days=days)


def test_due_date_default_follows_settings(create, settings):
    settings.ACTION_ITEM_DUE_DAYS = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}
    assert create(priority="P1").due_on == timezone.localdate() + timedelta(days=1)
    assert create(priority="P4").due_on == timezone.localdate() + timedelta(days=4)


def test_an_explicit_due_date_wins(create):
    assert create(priority="P1", due_on=date(2031, 1, 2)).due_on == date(2031, 1, 2)


# --- validation -----------------------------------------------------------------------


@pytest.fixture
def inactive(db, django_user_model):
    return make_user(django_user_model, "ivan", "Responders", is_active=False)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"category": "astrology"}, "category"),
        ({"priority": "P0"}, "priority"),
        ({"effort": "huge"}, "effort"),
        ({"tracker_url": "javascript:alert(1)"}, "tracker_url"),
        ({"tracker_url": "ftp://tracker.example.com/OPS-1"}, "tracker_url"),
        ({"due_on": "tomorrow"}, "due_on"),
    ],
)
def test_create_refuses_bad_fields_and_changes_nothing(create, incident, overrides, field):
    before = TimelineEvent.objects.filter(incident=incident).count()
    with pytest.raises(DomainError) as refused:
        create(**overrides)
    assert refused.value.field == field
    assert not ActionItem.objects.exists()
    assert not ActionItemUpdate.objects.exists()
    assert TimelineEvent.objects.filter(incident=incident).count() == before
    assert not Notification.objects.filter(event=vocabulary.Event.FOLLOW_UP).exists()


def test_create_refuses_fields_it_does_not_set(create):
    with pytest.raises(DomainError):
        create(status="done")
    assert not ActionItem.objects.exists()


def test_an_inactive_owner_is_refused(create, inactive):
    with pytest.raises(DomainError) as refused:
        create(owner=inactive)
    assert refused.value.field == "owner"
    assert not ActionItem.objects.exists()


def test_an_owner_who_may_not_see_a_confidential_incident_is_refused(
    declare, commander, outsider, security_member
):
    secret = declare(title="Leaked keys", confidential=True, commander=commander)
    with pytest.raises(DomainError, match="confidential") as refused:
        services.action_item_create(
            title="Rotate keys",
            category="technical",
            incident=secret,
            owner=outsider,
            actor=commander,
            source=Source.ADMIN,
        )
    assert refused.value.field == "owner"
    assert not ActionItem.objects.exists()
    # The security group may own it.
    item = services.action_item_create(
        title="Rotate keys",
        category="technical",
        incident=secret,
        owner=security_member,
        actor=commander,
        source=Source.ADMIN,
    )
    assert item.owner == security_member


def test_update_refuses_bad_fields_and_changes_nothing(create, inactive, commander):
    item = create()
    before = snapshot(item)
    for changes in ({"title": ""}, {"owner": inactive}, {"tracker_url": "www.example.com"}):
        with pytest.raises(DomainError):
            services.action_item_update(item=item, actor=commander, source=Source.ADMIN, **changes)
    item.refresh_from_db()
    assert item.title == "Add a pool size check to the deploy"
    assert item.tracker_url == ""
    assert snapshot(item) == before


# --- the lifecycle --------------------------------------------------------------------

ALLOWED = [(start, end) for start, ends in TRANSITIONS.items() for end in sorted(ends)]
ILLEGAL = [
    (start, end)
    for start, end in itertools.product(ALL_STATUSES, ALL_STATUSES)
    if end not in TRANSITIONS[start]
]


def test_the_table_is_what_the_brief_says():
    assert ("done", "blocked") in ILLEGAL
    assert ("wont_do", "done") in ILLEGAL
    assert set(TRANSITIONS["done"]) == {"open"}
    assert set(TRANSITIONS["wont_do"]) == {"open"}
    assert len(ALLOWED) == 14


@pytest.mark.parametrize(("start", "end"), ALLOWED)
def test_every_allowed_move_works_and_is_recorded(create, commander, responder, start, end):
    item = put_in(create(), start, responder)
    events = TimelineEvent.objects.filter(incident=item.incident, kind=vocabulary.Kind.FOLLOW_UP)
    before = events.count()

    moved = services.action_item_transition(
        item=item, to_status=end, actor=commander, note=REASON, source=Source.ADMIN
    )

    item.refresh_from_db()
    assert moved.status == item.status == end
    update = item.updates.latest("id")
    assert (update.kind, update.from_status, update.to_status) == (Kind.STATUS, start, end)
    assert update.author == commander
    assert update.note == REASON
    latest = item.history.latest()
    assert latest.status == end
    assert latest.history_user == commander
    assert events.count() == before + 1
    event = events.latest("id")
    assert event.details == {"action_item": item.pk}
    assert event.author == commander
    assert REASON in event.summary
    assert (item.completed_at is not None) == (end == Status.DONE)
    assert (item.blocked_at is not None) == (end == Status.BLOCKED)


@pytest.mark.parametrize(("start", "end"), ILLEGAL)
def test_illegal_moves_are_refused_and_change_nothing(create, commander, start, end):
    item = put_in(create(), start, commander)
    before = snapshot(item)

    with pytest.raises(StateConflict) as refused:
        services.action_item_transition(
            item=item, to_status=end, actor=commander, note=REASON, source=Source.ADMIN
        )

    # Named in words ("in progress", "won't do"), as the admin shows them.
    words = {value: label.lower() for value, label in Status.choices}
    allowed = ", ".join(words[value] for value in ALL_STATUSES if value in TRANSITIONS[start])
    assert f"allowed from {words[start]}: {allowed}" in refused.value.message
    assert refused.value.field == "status"
    assert snapshot(item) == before


def test_done_to_blocked_names_reopening(create, commander):
    item = put_in(create(), Status.DONE, commander)
    with pytest.raises(StateConflict, match="allowed from done: open"):
        services.action_item_transition(
            item=item, to_status="blocked", actor=commander, note="x", source=Source.ADMIN
        )


@pytest.mark.parametrize("end", [Status.BLOCKED, Status.WONT_DO])
@pytest.mark.parametrize("note", ["", "   "])
def test_blocking_and_wont_do_need_a_reason(create, commander, end, note):
    item = create()
    before = snapshot(item)
    with pytest.raises(DomainError) as refused:
        services.action_item_transition(
            item=item, to_status=end, actor=commander, note=note, source=Source.ADMIN
        )
    assert refused.value.field == "note"
    assert snapshot(item) == before


def test_blocking_keeps_the_reason_and_time_unblocking_clears_them(create, commander):
    item = create()
    services.action_item_transition(
        item=item, to_status="blocked", actor=commander, note=REASON, source=Source.ADMIN
    )
    item.refresh_from_db()
    assert item.blocked_reason == REASON
    assert item.blocked_at is not None
    services.action_item_transition(
        item=item, to_status="in_progress", actor=commander, source=Source.ADMIN
    )
    item.refresh_from_db()
    assert (item.blocked_reason, item.blocked_at) == ("", None)


def test_wont_do_keeps_the_reason(create, commander):
    item = create()
    services.action_item_transition(
        item=item,
        to_status="wont_do",
        actor=commander,
        note="Replaced by the new pool.",
        source=Source.ADMIN,
    )
    item.refresh_from_db()
    assert item.wont_do_reason == "Replaced by the new pool."
    services.action_item_transition(
        item=item, to_status="open", actor=commander, source=Source.ADMIN
    )
    item.refresh_from_db()
    assert item.wont_do_reason == ""


def test_done_stamps_who_and_when_and_keeps_the_verification(create, responder):
    item = create()
    services.action_item_transition(
        item=item,
        to_status="done",
        actor=responder,
        note="  A drill exhausted the pool.  ",
        source=Source.ADMIN,
    )
    item.refresh_from_db()
    assert item.completed_by == responder
    assert item.completed_at is not None
    assert item.verification_note == "A drill exhausted the pool."
    # Reopening clears the completion but keeps what was verified.
    services.action_item_transition(
        item=item, to_status="open", actor=responder, source=Source.ADMIN
    )
    item.refresh_from_db()
    assert item.completed_at is None
    assert item.completed_by is None
    assert item.status == Status.OPEN


def test_done_without_a_note_keeps_an_earlier_verification_note(create, responder):
    item = create(verification_note="Graph of pool usage.")
    services.action_item_transition(
        item=item, to_status="done", actor=responder, source=Source.ADMIN
    )
    item.refresh_from_db()
    assert item.verification_note == "Graph of pool usage."


def test_blocking_tells_the_owner_unless_they_blocked_it(create, commander, responder):
    item = create()
    follow_ups(responder).delete()
    services.action_item_transition(
        item=item, to_status="blocked", actor=commander, note=REASON, source=Source.ADMIN
    )
    told = follow_ups(responder).get()
    assert "blocked" in told.subject.lower()
    services.action_item_transition(
        item=item, to_status="open", actor=responder, source=Source.ADMIN
    )
    services.action_item_transition(
        item=item, to_status="blocked", actor=responder, note=REASON, source=Source.ADMIN
    )
    assert follow_ups(responder).count() == 1


# --- editing and notes ----------------------------------------------------------------


def test_update_records_a_change(create, commander):
    item = create()
    services.action_item_update(
        item=item, actor=commander, priority="P1", team="Platform", source=Source.ADMIN
    )
    item.refresh_from_db()
    assert (item.priority, item.team) == ("P1", "Platform")
    change = item.updates.latest("id")
    assert change.kind == Kind.CHANGE
    assert change.author == commander
    assert "priority" in change.note and "team" in change.note
    assert item.history.latest().history_user == commander


def test_update_with_nothing_changed_records_nothing(create, commander):
    item = create(priority="P2")
    before = snapshot(item)
    services.action_item_update(item=item, actor=commander, priority="P2", source=Source.ADMIN)
    assert snapshot(item) == before


def test_update_refuses_status_and_other_fields(create, commander):
    item = create()
    with pytest.raises(DomainError):
        services.action_item_update(item=item, actor=commander, status="done", source=Source.ADMIN)
    item.refresh_from_db()
    assert item.status == Status.OPEN


def test_a_new_owner_is_told(create, commander, responder, reviewer):
    item = create()
    services.action_item_update(item=item, actor=commander, owner=reviewer, source=Source.ADMIN)
    item.refresh_from_db()
    assert item.owner == reviewer
    told = follow_ups(reviewer).get()
    assert told.event == "follow_up"
    assert item.title in told.subject
    assert "bob" in told.body  # from whom it was handed over
    change = item.updates.latest("id")
    assert change.kind == Kind.CHANGE


def test_taking_an_item_yourself_tells_nobody(create, commander, reviewer):
    item = create(owner=None)
    services.action_item_update(item=item, actor=reviewer, owner=reviewer, source=Source.ADMIN)
    item.refresh_from_db()
    assert item.owner == reviewer
    assert not follow_ups(reviewer).exists()
    assert item.updates.latest("id").kind == Kind.CHANGE


def test_creating_an_item_for_yourself_tells_nobody(create, responder):
    create(actor=responder, owner=responder)
    assert not follow_ups(responder).exists()


def test_a_note_is_recorded(create, responder):
    item = create()
    update = services.action_item_note(
        item=item,
        note="  Half the services done.  ",
        actor=responder,
        source=Source.ADMIN,
    )
    assert update.kind == Kind.NOTE
    assert update.note == "Half the services done."
    assert update.author == responder
    assert item.updates.filter(kind=Kind.NOTE).count() == 1
    item.refresh_from_db()
    assert item.status == Status.OPEN


@pytest.mark.parametrize("note", ["", "   ", "x" * 20_001])
def test_a_note_needs_sensible_text(create, responder, note):
    item = create()
    with pytest.raises(DomainError):
        services.action_item_note(item=item, note=note, actor=responder, source=Source.ADMIN)
    assert not item.updates.filter(kind=Kind.NOTE).exists()


# --- the publish guard ----------------------------------------------------------------


def _approve(postmortem, reviewer, **changes):
    in_review(postmortem, reviewer, **changes)
    pm_services.postmortem_approve(postmortem=postmortem, actor=reviewer, source=Source.ADMIN)


def _publish(postmortem):
    return pm_services.postmortem_publish(
        postmortem=postmortem, actor=postmortem.owner, source=Source.ADMIN
    )


def test_publishing_without_action_items_or_a_reason_is_refused(postmortem, reviewer):
    _approve(postmortem, reviewer, no_action_needed=False, no_action_reason="")
    with pytest.raises(StateConflict, match="action items") as refused:
        _publish(postmortem)
    assert refused.value.field == "action_items"
    postmortem.refresh_from_db()
    assert not postmortem.is_published


def test_no_action_needed_still_needs_the_reason(postmortem, reviewer):
    _approve(postmortem, reviewer, no_action_needed=True, no_action_reason="  ")
    with pytest.raises(DomainError) as refused:
        _publish(postmortem)
    assert refused.value.field == "no_action_reason"
    postmortem.refresh_from_db()
    assert not postmortem.is_published


def test_the_guard_asks_for_a_reason_when_no_action_is_needed(postmortem):
    # The guard itself, for a review the workflow let through without a reason.
    PostMortem.objects.filter(pk=postmortem.pk).update(no_action_needed=True, no_action_reason="")
    postmortem.refresh_from_db()
    with pytest.raises(DomainError) as refused:
        services.require_action_items_or_reason(
            PublishRequest(postmortem=postmortem, actor=None, source=Source.ADMIN)
        )
    assert refused.value.field == "no_action_reason"


def test_no_action_needed_with_a_reason_publishes(postmortem, reviewer):
    _approve(postmortem, reviewer)  # the helpers' default: no action needed, and why
    assert _publish(postmortem).is_published


def test_an_action_item_on_the_review_lets_it_publish(postmortem, reviewer, commander):
    _approve(postmortem, reviewer, no_action_needed=False, no_action_reason="")
    services.action_item_create(
        title="Validate pool size",
        category="technical",
        postmortem=postmortem,
        actor=commander,
        source=Source.ADMIN,
    )
    assert _publish(postmortem).is_published


def test_an_action_item_noted_on_the_incident_lets_it_publish(postmortem, reviewer, commander):
    _approve(postmortem, reviewer, no_action_needed=False, no_action_reason="")
    services.action_item_create(
        title="Noted during the response",
        category="process",
        incident=postmortem.incident,
        actor=commander,
        source=Source.ADMIN,
    )
    assert _publish(postmortem).is_published


# --- confidentiality and the timeline (from the review of this change) -----------------


def test_someone_who_may_not_see_a_confidential_incident_cannot_add_to_it(
    declare, security_type, outsider
):
    secret = declare(title="Badge cloned", incident_type=security_type)

    with pytest.raises(DomainError) as excinfo:
        services.action_item_create(
            incident=secret,
            title="Rotate badges",
            category="process",
            actor=outsider,
            source=Source.ADMIN,
        )

    assert excinfo.value.field == "incident"
    assert not ActionItem.objects.exists()


def test_an_owner_no_longer_cleared_for_the_incident_hears_nothing_about_it(
    create, incident, responder, commander
):
    item = create()  # owned by bob, who holds no role on the incident
    incident_services.incident_update_details(
        incident=incident, confidential=True, source=Source.ADMIN
    )
    before = follow_ups(responder).count()

    services.action_item_transition(
        item=item,
        to_status="blocked",
        note="Waiting on legal",
        actor=commander,
        source=Source.ADMIN,
    )

    assert follow_ups(responder).count() == before


def test_notes_and_edits_are_on_the_incident_timeline(create, commander):
    item = create()

    services.action_item_note(
        item=item, note="Draft PR is up", actor=commander, source=Source.ADMIN
    )
    services.action_item_update(item=item, actor=commander, team="Payments", source=Source.ADMIN)

    summaries = list(
        TimelineEvent.objects.filter(
            incident=item.incident, kind=vocabulary.Kind.FOLLOW_UP
        ).values_list("summary", flat=True)
    )
    assert f"Action item #{item.pk}: Draft PR is up" in summaries
    assert f"Action item #{item.pk}: Changed team" in summaries
