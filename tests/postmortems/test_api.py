"""The post-mortem REST API as an integration uses it: auth, visibility, errors, workflow."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from incidents import services as incident_services
from incidents.models import IdempotencyRecord, Source, TimelineEvent
from postmortems import services, vocabulary
from postmortems.models import ContributingFactor, PostMortem, ReviewDecision
from tests.api import client_for, errors
from tests.reviews import publish, ready, resolve

POSTMORTEMS = "/api/v1/postmortems/"


def url(postmortem_or_reference, action=""):
    reference = getattr(postmortem_or_reference, "incident", None)
    reference = reference.reference if reference else postmortem_or_reference
    return f"{POSTMORTEMS}{reference}/{action + '/' if action else ''}"


def only_detail(response) -> str:
    [error] = response.json()["errors"]
    return error["detail"]


def references(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(row["reference"] for row in response.json()["results"])


@pytest.fixture
def api(commander):
    """Alice's integration: she commands the incidents and owns their reviews."""
    return client_for(commander)


@pytest.fixture
def rita_api(reviewer):
    return client_for(reviewer)


@pytest.fixture
def published(incident, api_service, reviewer):
    made = incident(title="Search was down", services=[api_service])
    return publish(resolve(made), reviewer)


@pytest.fixture
def secret(declare, security_type, commander):
    """A confidential security incident, resolved: its draft review is owned by alice."""
    incident = declare(title="Token leaked", incident_type=security_type, commander=commander)
    assert incident.confidential
    return resolve(incident)


# --- authentication and permissions ---------------------------------------------------


@pytest.mark.parametrize("detail", [False, True])
def test_requests_without_credentials_are_401(postmortem, detail):
    response = APIClient().get(url(postmortem) if detail else POSTMORTEMS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert errors(response) == [(None, "not_authenticated")]


def test_unauthenticated_workflow_step_is_401_and_changes_nothing(postmortem):
    versions = postmortem.history.count()
    response = APIClient().post(url(postmortem, "sync"))
    assert response.status_code == 401
    assert postmortem.history.count() == versions


def test_stakeholder_lists_published_reviews_and_no_drafts(stakeholder, published, postmortem):
    client = client_for(stakeholder)
    assert references(client.get(POSTMORTEMS)) == [published.incident.reference]
    assert client.get(url(published)).status_code == 200
    response = client.get(url(postmortem))
    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]


def test_stakeholder_cannot_start_edit_or_move_reviews(stakeholder, published, declare):
    client = client_for(stakeholder)
    incident = declare(title="Unreviewed")
    response = client.post(POSTMORTEMS, {"incident": incident.reference}, format="json")
    assert response.status_code == 403
    assert errors(response) == [(None, "permission_denied")]
    assert not PostMortem.objects.filter(incident=incident).exists()

    response = client.patch(url(published), {"lessons_learned": "Mine now"}, format="json")
    assert response.status_code == 403
    response = client.post(url(published, "reopen"), {"reason": "I disagree"}, format="json")
    assert response.status_code == 403
    published.refresh_from_db()
    assert published.status == PostMortem.Status.PUBLISHED
    assert published.lessons_learned == ""


@pytest.mark.parametrize("persona", ["outsider", "responder"])
def test_confidential_review_is_404_for_people_outside_the_incident(request, secret, persona):
    client = client_for(request.getfixturevalue(persona))
    response = client.get(url(secret))
    assert response.status_code == 404
    assert errors(response) == [(None, "not_found")]
    assert references(client.get(POSTMORTEMS)) == []
    assert client.post(url(secret, "sync")).status_code == 404
    patch = client.patch(url(secret), {"root_cause": "Peeked"}, format="json")
    assert patch.status_code == 404
    secret.refresh_from_db()
    assert secret.root_cause == ""


def test_confidential_review_is_visible_to_the_security_group(secret, security_member):
    client = client_for(security_member)
    response = client.get(url(secret))
    assert response.status_code == 200
    assert response.json()["title"] == "Token leaked"
    assert references(client.get(POSTMORTEMS)) == [secret.incident.reference]


def test_outsider_cannot_start_a_review_of_a_confidential_incident(
    declare, security_type, commander, outsider
):
    incident = declare(title="Token leaked", incident_type=security_type, commander=commander)
    response = client_for(outsider).post(
        POSTMORTEMS, {"incident": incident.reference}, format="json"
    )
    assert response.status_code == 400
    assert errors(response) == [("incident", "does_not_exist")]
    assert not PostMortem.objects.exists()


# --- reading --------------------------------------------------------------------------


def test_detail_shows_the_review_with_facts_people_and_page(api, postmortem, reviewer):
    ready(postmortem, reviewer)
    body = api.get(url(postmortem)).json()
    reference = postmortem.incident.reference
    assert body["reference"] == reference
    assert body["title"] == "Checkout returns 502"
    assert body["severity"] == "SEV1"
    assert body["status"] == "draft"
    assert body["owner"] == "alice"
    assert body["reviewers"] == ["rita"]
    assert "alice" in body["participants"]
    assert body["page"] == f"http://testserver/postmortems/{reference}/"
    assert body["facts"]["services"] == ["Public API"]
    assert body["root_cause"] == "The pool was too small for the retry storm."
    assert body["overdue"] is False


@pytest.fixture
def linked(incident, security_type, reviewer):
    """A published review that names a public and a confidential related incident."""
    secret = incident(title="Token leaked", incident_type=security_type)
    public = incident(title="Search slow")
    postmortem = resolve(incident(title="Search was down"))
    services.postmortem_update(
        postmortem=postmortem, related_incidents=[secret, public], source=Source.ADMIN
    )
    return publish(postmortem, reviewer), public, secret


def test_api_names_only_the_related_incidents_the_reader_may_see(linked, stakeholder):
    postmortem, public, secret = linked
    body = client_for(stakeholder).get(url(postmortem)).json()
    assert body["related_incidents"] == [public.reference]


def test_security_member_sees_every_related_incident(linked, security_member):
    postmortem, public, secret = linked
    body = client_for(security_member).get(url(postmortem)).json()
    assert sorted(body["related_incidents"]) == sorted([public.reference, secret.reference])


def test_related_incident_the_writer_cannot_see_is_refused(postmortem, incident, outsider):
    secret = incident(title="Token leaked", confidential=True)
    response = client_for(outsider).patch(
        url(postmortem), {"related_incidents": [secret.reference]}, format="json"
    )
    assert response.status_code == 400
    assert errors(response) == [("related_incidents", "does_not_exist")]
    assert not postmortem.related_incidents.exists()


# --- starting a review ----------------------------------------------------------------


@pytest.fixture
def unreviewed(declare, commander, api_service):
    """A SEV1 still being worked on, with a decision on its timeline: no review yet."""
    incident = declare(commander=commander, services=[api_service], summary="Pool exhausted")
    incident_services.timeline_add_entry(
        incident=incident,
        kind=TimelineEvent.Kind.DECISION,
        summary="Roll back the deploy",
        source=Source.ADMIN,
    )
    return incident


def test_create_fills_facts_and_timeline_from_the_incident(api, unreviewed):
    response = api.post(POSTMORTEMS, {"incident": unreviewed.reference}, format="json")
    assert response.status_code == 201, response.content
    assert response["Location"] == f"http://testserver{url(unreviewed.reference)}"
    body = response.json()
    assert body["reference"] == unreviewed.reference
    assert body["status"] == "draft"
    assert body["owner"] == "alice"  # the incident's commander
    assert body["facts"]["severity"] == "SEV1"
    assert body["facts"]["services"] == ["Public API"]
    assert "Checkout returns 502" in body["executive_summary"]
    assert "Pool exhausted" in body["executive_summary"]
    assert "Public API" in body["impact"]
    timeline = {entry["summary"]: entry["is_key"] for entry in body["timeline"]}
    assert timeline["Roll back the deploy"] is True
    assert any(summary.startswith("Declared as SEV1") for summary in timeline)
    postmortem = PostMortem.objects.get(incident=unreviewed)
    assert postmortem.history.earliest().history_user.username == "alice"
    assert unreviewed.timeline.filter(
        kind=vocabulary.Kind.REVIEW, source="api", summary__startswith="Post-mortem started"
    ).exists()


def test_create_names_the_owner_given(api, unreviewed, responder):
    response = api.post(
        POSTMORTEMS, {"incident": unreviewed.reference, "owner": "bob"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["owner"] == "bob"


def test_create_for_an_incident_with_a_review_is_409(api, postmortem):
    response = api.post(POSTMORTEMS, {"incident": postmortem.incident.reference}, format="json")
    assert response.status_code == 409
    assert errors(response) == [(None, "conflict")]
    assert "already has a post-mortem" in only_detail(response)
    assert PostMortem.objects.count() == 1


def test_create_with_unknown_incident_or_owner_is_400(api, unreviewed):
    response = api.post(POSTMORTEMS, {"incident": "INC-1999-0001"}, format="json")
    assert response.status_code == 400
    assert errors(response) == [("incident", "does_not_exist")]
    body = {"incident": unreviewed.reference, "owner": "nobody"}
    response = api.post(POSTMORTEMS, body, format="json")
    assert response.status_code == 400
    assert errors(response) == [("owner", "does_not_exist")]
    assert not PostMortem.objects.exists()


def test_create_replays_the_first_response_for_the_same_idempotency_key(api, unreviewed):
    body = {"incident": unreviewed.reference}
    first = api.post(POSTMORTEMS, body, format="json", HTTP_IDEMPOTENCY_KEY="start-review-1")
    events = unreviewed.timeline.count()
    retry = api.post(POSTMORTEMS, body, format="json", HTTP_IDEMPOTENCY_KEY="start-review-1")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert PostMortem.objects.count() == 1
    assert unreviewed.timeline.count() == events
    assert IdempotencyRecord.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_422(api, unreviewed, incident):
    other = incident(title="Other")
    first = {"incident": unreviewed.reference}
    api.post(POSTMORTEMS, first, format="json", HTTP_IDEMPOTENCY_KEY="start-review-1")
    response = api.post(
        POSTMORTEMS,
        {"incident": other.reference},
        format="json",
        HTTP_IDEMPOTENCY_KEY="start-review-1",
    )
    assert response.status_code == 422
    assert errors(response) == [(None, "idempotency_key_reused")]
    assert not PostMortem.objects.filter(incident=other).exists()


def test_create_for_an_incident_in_triage_is_409(api, incident):
    candidate = incident(title="Maybe nothing", triage=True)
    response = api.post(POSTMORTEMS, {"incident": candidate.reference}, format="json")
    assert response.status_code == 409
    assert "only a declared incident gets a post-mortem" in only_detail(response)


# --- editing --------------------------------------------------------------------------


def test_patch_edits_sections_and_reviewers_with_history(api, commander, postmortem, reviewer):
    body = {
        "root_cause": "  A config push **halved** the pool.  ",
        "lessons_learned": "Canary config changes.",
        "reviewers": ["rita"],
    }
    before = postmortem.history.latest()
    response = api.patch(url(postmortem), body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["root_cause"] == "A config push **halved** the pool."
    assert data["lessons_learned"] == "Canary config changes."
    assert data["reviewers"] == ["rita"]
    postmortem.refresh_from_db()
    assert list(postmortem.reviewers.all()) == [reviewer]
    newest = postmortem.history.latest()
    assert newest.history_user == commander
    changes = {change.field: change.new for change in newest.diff_against(before).changes}
    assert changes["root_cause"] == "A config push **halved** the pool."
    assert changes["lessons_learned"] == "Canary config changes."
    assert set(changes) == {"root_cause", "lessons_learned", "reviewers"}


def test_patch_contributing_factors_replaces_the_list_in_order(api, postmortem):
    first = [
        {"category": "technical", "description": "Pool size hard-coded"},
        {"category": "process", "description": "No canary for config"},
    ]
    response = api.patch(url(postmortem), {"contributing_factors": first}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["contributing_factors"] == first
    second = [{"category": "external", "description": "Upstream retry storm"}]
    response = api.patch(url(postmortem), {"contributing_factors": second}, format="json")
    assert response.json()["contributing_factors"] == second
    assert list(postmortem.contributing_factors.values_list("category", "description")) == [
        ("external", "Upstream retry storm")
    ]


def test_patch_without_contributing_factors_keeps_them(api, postmortem):
    factors = [{"category": "people", "description": "On-call was new to the service"}]
    api.patch(url(postmortem), {"contributing_factors": factors}, format="json")
    response = api.patch(url(postmortem), {"impact": "Every checkout failed."}, format="json")
    assert response.json()["contributing_factors"] == factors


@pytest.mark.usefixtures("without_activation")  # lists the incident's whole timeline
def test_patch_timeline_marks_key_events_and_commentary_by_entry_id(api, postmortem):
    entry = postmortem.timeline.get(is_key=False)  # the commander's role assignment
    key = postmortem.timeline.filter(is_key=True).first()
    marks = [
        {"id": entry.pk, "is_key": True, "commentary": "From here *one* person led."},
        {"id": key.pk, "is_key": False},
    ]
    response = api.patch(url(postmortem), {"timeline": marks}, format="json")
    assert response.status_code == 200, response.content
    by_id = {row["id"]: row for row in response.json()["timeline"]}
    assert by_id[entry.pk]["is_key"] is True
    assert by_id[entry.pk]["commentary"] == "From here *one* person led."
    assert by_id[key.pk]["is_key"] is False
    entry.refresh_from_db()
    assert entry.is_key and entry.history.latest().history_user.username == "alice"


def test_patch_that_only_unmarks_a_key_event_keeps_its_commentary(api, postmortem):
    entry = postmortem.timeline.filter(is_key=True).first()
    marks = [{"id": entry.pk, "is_key": True, "commentary": "Why this mattered."}]
    api.patch(url(postmortem), {"timeline": marks}, format="json")
    response = api.patch(
        url(postmortem), {"timeline": [{"id": entry.pk, "is_key": False}]}, format="json"
    )
    assert response.status_code == 200
    entry.refresh_from_db()
    assert not entry.is_key
    assert entry.commentary == "Why this mattered."


@pytest.mark.usefixtures("without_activation")  # lists the incident's whole timeline
def test_patch_timeline_with_unknown_entry_id_is_400_and_changes_nothing(api, postmortem):
    entry = postmortem.timeline.get(is_key=False)
    marks = [
        {"id": entry.pk, "is_key": True, "commentary": "Noted"},
        {"id": 999_999, "is_key": True},
    ]
    response = api.patch(url(postmortem), {"timeline": marks, "impact": "New"}, format="json")
    assert response.status_code == 400
    assert errors(response) == [("timeline", "invalid")]
    assert "999999" in only_detail(response)
    entry.refresh_from_db()
    assert not entry.is_key and entry.commentary == ""
    postmortem.refresh_from_db()
    assert postmortem.impact != "New"


def test_patch_timeline_entry_of_another_review_is_400(api, postmortem, published):
    foreign = published.timeline.first()
    marks = [{"id": foreign.pk, "is_key": not foreign.is_key, "commentary": "Hijack"}]
    response = api.patch(url(postmortem), {"timeline": marks}, format="json")
    assert response.status_code == 400
    assert errors(response) == [("timeline", "invalid")]
    foreign.refresh_from_db()
    assert foreign.commentary == ""


def test_unknown_contributing_factor_category_is_400_naming_the_field(api, postmortem):
    factors = [{"category": "blame", "description": "Bob typed the wrong command"}]
    response = api.patch(url(postmortem), {"contributing_factors": factors}, format="json")
    assert response.status_code == 400
    # On the list itself (the schema cannot name a position), the item in the message.
    assert errors(response) == [("contributing_factors", "invalid")]
    assert only_detail(response) == 'Item 0 (category): "blame" is not a valid choice.'
    assert not ContributingFactor.objects.exists()


def test_unknown_reviewer_username_is_400_naming_the_field(api, postmortem, reviewer):
    response = api.patch(url(postmortem), {"reviewers": ["rita", "ghost"]}, format="json")
    assert response.status_code == 400
    assert errors(response) == [("reviewers", "does_not_exist")]
    assert "ghost" in only_detail(response)
    assert not postmortem.reviewers.exists()


def test_owner_cannot_review_their_own_postmortem(api, postmortem):
    response = api.patch(url(postmortem), {"reviewers": ["alice"]}, format="json")
    assert response.status_code == 400
    assert errors(response) == [("reviewers", "invalid")]
    assert "owner cannot review" in only_detail(response)


def test_reviewer_of_a_confidential_review_must_be_able_to_see_it(api, secret, outsider):
    response = api.patch(url(secret), {"reviewers": ["mallory"]}, format="json")
    assert response.status_code == 400
    assert errors(response) == [("reviewers", "invalid")]
    assert not secret.reviewers.exists()


def test_patch_of_a_published_review_is_409_and_changes_nothing(published, commander):
    client = client_for(commander)
    response = client.patch(url(published), {"root_cause": "Rewritten"}, format="json")
    assert response.status_code == 409
    assert errors(response) == [(None, "conflict")]
    assert "published and read-only" in only_detail(response)
    published.refresh_from_db()
    assert published.root_cause == "The pool was too small for the retry storm."


def test_sync_brings_in_new_timeline_events_and_keeps_edited_sections(api, postmortem):
    api.patch(url(postmortem), {"impact": "Written by a person."}, format="json")
    incident_services.timeline_add_entry(
        incident=postmortem.incident,
        kind=TimelineEvent.Kind.NOTE,
        summary="Late finding",
        source=Source.ADMIN,
    )
    response = api.post(url(postmortem, "sync"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert "Late finding" in [entry["summary"] for entry in body["timeline"]]
    assert body["impact"] == "Written by a person."


def test_sync_of_a_published_review_is_409(published, commander):
    response = client_for(commander).post(url(published, "sync"))
    assert response.status_code == 409
    assert errors(response) == [(None, "conflict")]


# --- the review workflow --------------------------------------------------------------


def test_full_workflow_submit_approve_publish_reopen(api, rita_api, postmortem, reviewer):
    body = {
        "reviewers": ["rita"],
        "root_cause": "Pool too small.",
        "no_action_needed": True,
        "no_action_reason": "The fix shipped during the response.",
    }
    assert api.patch(url(postmortem), body, format="json").status_code == 200

    response = api.post(url(postmortem, "submit"))
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["review_round"]) == ("in_review", 1)

    response = rita_api.post(url(postmortem, "approve"), {"comment": "Clear."}, format="json")
    assert response.status_code == 200, response.content
    [decision] = response.json()["decisions"]
    assert decision == {
        **decision,
        "round": 1,
        "reviewer": "rita",
        "decision": "approved",
        "comment": "Clear.",
    }

    response = api.post(url(postmortem, "publish"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "published"
    assert body["published_by"] == "alice"
    assert body["published_at"] is not None

    response = api.post(url(postmortem, "reopen"), {"reason": "Wrong dates"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["reopen_reason"]) == ("draft", "Wrong dates")
    assert body["published_at"] is None
    steps = postmortem.incident.timeline.filter(kind=vocabulary.Kind.REVIEW, source="api")
    assert steps.count() == 4  # submitted, approved, published, reopened


def test_an_edit_after_approval_through_the_api_is_recorded_as_api(
    api, rita_api, postmortem, reviewer
):
    ready(postmortem, reviewer)
    assert api.post(url(postmortem, "submit")).status_code == 200
    approved = rita_api.post(url(postmortem, "approve"), {"comment": "Clear."}, format="json")
    assert approved.status_code == 200, approved.content

    response = api.patch(url(postmortem), {"root_cause": "The pool was too small."}, format="json")

    assert response.status_code == 200, response.content
    event = postmortem.incident.timeline.get(
        kind=vocabulary.Kind.REVIEW, summary__startswith="Post-mortem edited after approval"
    )
    assert (event.source, event.author) == (Source.API, postmortem.owner)
    assert event.history.get().source == Source.API


def test_request_changes_sends_it_back_as_a_draft(api, rita_api, postmortem, reviewer):
    ready(postmortem, reviewer)
    api.post(url(postmortem, "submit"))
    response = rita_api.post(
        url(postmortem, "request-changes"), {"comment": "Explain the retries"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "draft"
    decision = ReviewDecision.objects.get()
    assert (decision.decision, decision.comment) == ("changes_requested", "Explain the retries")


@pytest.mark.parametrize("comment", [None, "", "   "])
def test_request_changes_without_a_comment_is_400(rita_api, postmortem, reviewer, comment):
    ready(postmortem, reviewer)
    services.postmortem_submit(postmortem=postmortem, actor=postmortem.owner, source=Source.ADMIN)
    body = {} if comment is None else {"comment": comment}
    response = rita_api.post(url(postmortem, "request-changes"), body, format="json")
    assert response.status_code == 400
    assert [attr for attr, _ in errors(response)] == ["comment"]
    postmortem.refresh_from_db()
    assert postmortem.status == PostMortem.Status.IN_REVIEW
    assert not ReviewDecision.objects.exists()


@pytest.mark.parametrize("body", [{}, {"reason": ""}])
def test_reopen_without_a_reason_is_400(published, commander, body):
    response = client_for(commander).post(url(published, "reopen"), body, format="json")
    assert response.status_code == 400
    assert [attr for attr, _ in errors(response)] == ["reason"]
    published.refresh_from_db()
    assert published.status == PostMortem.Status.PUBLISHED


def test_publishing_a_draft_is_409(api, postmortem):
    response = api.post(url(postmortem, "publish"))
    assert response.status_code == 409
    assert errors(response) == [(None, "conflict")]
    assert "it is draft, not in review" in only_detail(response)
    postmortem.refresh_from_db()
    assert postmortem.status == PostMortem.Status.DRAFT


def test_publishing_before_every_reviewer_approved_is_409(api, postmortem, reviewer, responder):
    ready(postmortem, reviewer)
    api.patch(url(postmortem), {"reviewers": ["rita", "bob"]}, format="json")
    api.post(url(postmortem, "submit"))
    services.postmortem_approve(postmortem=postmortem, actor=reviewer, source=Source.ADMIN)
    response = api.post(url(postmortem, "publish"))
    assert response.status_code == 409
    assert "waiting for approval from bob" in only_detail(response)


def test_approval_by_someone_not_named_as_reviewer_is_409(api, postmortem, reviewer):
    ready(postmortem, reviewer)
    api.post(url(postmortem, "submit"))
    response = api.post(url(postmortem, "approve"), {}, format="json")
    assert response.status_code == 409
    assert errors(response) == [(None, "conflict")]
    assert "Only the named reviewers (rita)" in only_detail(response)
    assert not ReviewDecision.objects.exists()


def test_approving_twice_in_one_round_is_409(api, rita_api, postmortem, reviewer, responder):
    ready(postmortem, reviewer)
    api.patch(url(postmortem), {"reviewers": ["rita", "bob"]}, format="json")
    api.post(url(postmortem, "submit"))
    assert rita_api.post(url(postmortem, "approve"), {}, format="json").status_code == 200
    response = rita_api.post(url(postmortem, "approve"), {}, format="json")
    assert response.status_code == 409
    assert "rita already decided on round 1" in only_detail(response)
    assert ReviewDecision.objects.count() == 1


def test_submit_without_reviewers_is_400_naming_the_field(api, postmortem):
    api.patch(url(postmortem), {"root_cause": "Pool too small."}, format="json")
    response = api.post(url(postmortem, "submit"))
    assert response.status_code == 400
    assert errors(response) == [("reviewers", "invalid")]
    postmortem.refresh_from_db()
    assert postmortem.status == PostMortem.Status.DRAFT


def test_submit_without_root_cause_is_400(api, postmortem, reviewer):
    api.patch(url(postmortem), {"reviewers": ["rita"]}, format="json")
    response = api.post(url(postmortem, "submit"))
    assert response.status_code == 400
    assert errors(response) == [("status", "invalid")]
    assert "root cause" in only_detail(response)


# --- listing --------------------------------------------------------------------------


@pytest.fixture
def assorted(declare, commander, responder, reviewer, api_service, sev2):
    """A draft (SEV1, api, alice), one in review (SEV2, bob) and one published (SEV1)."""
    draft = resolve(declare(title="Draft one", services=[api_service], commander=commander))
    in_review = resolve(declare(title="In review", severity=sev2, commander=responder))
    ready(in_review, reviewer)
    services.postmortem_submit(postmortem=in_review, actor=responder, source=Source.ADMIN)
    done = publish(resolve(declare(title="Published", commander=commander)), reviewer)
    return {"draft": draft, "in_review": in_review, "published": done}


def refs(*postmortems):
    return sorted(postmortem.incident.reference for postmortem in postmortems)


def test_writers_list_every_review_they_may_see(api, assorted):
    assert references(api.get(POSTMORTEMS)) == refs(*assorted.values())


def test_list_filters_by_status_repeatedly(api, assorted):
    response = api.get(POSTMORTEMS, {"status": ["draft", "in_review"]})
    assert references(response) == refs(assorted["draft"], assorted["in_review"])
    assert references(api.get(POSTMORTEMS, {"status": "published"})) == refs(assorted["published"])


def test_list_filters_by_severity_service_and_owner(api, assorted):
    assert references(api.get(POSTMORTEMS, {"severity": "SEV2"})) == refs(assorted["in_review"])
    assert references(api.get(POSTMORTEMS, {"service": "api"})) == refs(assorted["draft"])
    assert references(api.get(POSTMORTEMS, {"owner": "bob"})) == refs(assorted["in_review"])


def test_list_with_unknown_service_is_400(api, assorted):
    response = api.get(POSTMORTEMS, {"service": "nope"})
    assert response.status_code == 400
    assert errors(response) == [("service", "invalid_choice")]


def test_list_filters_overdue_reviews(api, incident, reviewer):
    start = timezone.now()
    late = resolve(incident(title="Late"))  # due 7 days after resolution
    done = publish(resolve(incident(title="Done")), reviewer)
    with time_machine.travel(start + timedelta(days=5), tick=False):
        on_time = resolve(incident(title="On time"))
    with time_machine.travel(start + timedelta(days=8), tick=False):
        assert references(api.get(POSTMORTEMS, {"overdue": "true"})) == refs(late)
        assert references(api.get(POSTMORTEMS, {"overdue": "false"})) == refs(on_time, done)
        [row] = [row for row in api.get(POSTMORTEMS).json()["results"] if row["overdue"] is True]
        assert row["reference"] == late.incident.reference
    assert references(api.get(POSTMORTEMS, {"overdue": "true"})) == []


def test_list_searches_titles(api, assorted):
    assert references(api.get(POSTMORTEMS, {"search": "review"})) == refs(assorted["in_review"])


def _list_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(POSTMORTEMS)
    assert response.status_code == 200
    return len(queries), response.json()["count"]


def test_list_query_count_does_not_grow_with_reviews(
    api, declare, commander, reviewer, responder, api_service, django_assert_max_num_queries
):
    def add(count):
        for number in range(count):
            postmortem = resolve(
                declare(title=f"Incident {number}", services=[api_service], commander=commander)
            )
            ready(
                postmortem,
                reviewer,
                contributing_factors=[("technical", "A"), ("process", "B")],
                related_incidents=[declare(title="Related")],
                participants=[commander, responder],
            )
            services.postmortem_submit(postmortem=postmortem, actor=commander, source=Source.ADMIN)
            services.postmortem_approve(postmortem=postmortem, actor=reviewer, source=Source.ADMIN)

    add(1)
    api.get(POSTMORTEMS)  # the key's first use is recorded once
    with_one, count = _list_queries(api)
    assert count == 1
    add(4)
    with django_assert_max_num_queries(with_one):
        response = api.get(POSTMORTEMS)
    assert response.json()["count"] == 5
    assert with_one <= 16
