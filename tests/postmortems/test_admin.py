"""Writing and reviewing post-mortems in the admin, as commanders and reviewers do."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import services as incident_services
from incidents.admin import HIDDEN_INCIDENT, VisibleHistoryContext
from incidents.models import Incident, Severity, Source, Status, TimelineEvent
from postmortems import services, vocabulary
from postmortems.models import ContributingFactor, PostMortem, ReviewDecision, TimelineEntry
from tests.conftest import make_user
from tests.forms import form_data
from tests.reviews import ROOT_CAUSE, in_review, publish, ready, resolve

CHANGELIST = reverse("admin:postmortems_postmortem_changelist")
INCIDENTS = reverse("admin:incidents_incident_changelist")


def change_url(postmortem):
    return reverse("admin:postmortems_postmortem_change", args=[postmortem.pk])


def incident_url(incident):
    return reverse("admin:incidents_incident_change", args=[incident.pk])


def change_form(client, postmortem) -> dict:
    page = client.get(change_url(postmortem))
    assert page.status_code == 200
    return form_data(page.content.decode(), "postmortem_form")


def submit_change(client, postmortem, **changes):
    """Load the change page, edit fields like a person would, and save."""
    data = change_form(client, postmortem)
    data.update(changes)
    return client.post(change_url(postmortem), data)


def run_action(client, action, postmortems, url=CHANGELIST, **extra):
    data = {"action": action, "_selected_action": [obj.pk for obj in postmortems], **extra}
    return client.post(url, data, follow=True)


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def fresh(postmortem) -> PostMortem:
    return PostMortem.objects.get(pk=postmortem.pk)


@pytest.fixture
def rita_client(client, reviewer):
    client.force_login(reviewer)
    return client


@pytest.fixture
def sev3(default_policy):
    return Severity.objects.get(key="SEV3")


# --- editing through the change form --------------------------------------------------


def test_change_page_shows_the_review_with_its_workflow_step(commander_client, postmortem):
    body = commander_client.get(change_url(postmortem)).content.decode()
    reference = postmortem.incident.reference
    assert reference in body and "Checkout returns 502" in body
    assert f'href="/postmortems/{reference}/"' in body and "Preview the page" in body
    assert 'name="workflow"' in body and '<option value="submit">' in body
    assert 'name="workflow_comment"' in body
    assert "This review is blameless." in body
    assert "SEV1 Outage, Production · Public API" in body
    assert 'name="root_cause"' in body
    assert 'name="contributing_factors-0-category"' in body
    assert 'name="timeline-0-is_key"' in body


@pytest.mark.usefixtures("without_activation")  # lists the incident's whole timeline
def test_commander_edits_sections_adds_a_factor_and_marks_a_key_event(
    commander_client, commander, postmortem
):
    entry = postmortem.timeline.get(is_key=False)  # alice taking command
    index = list(postmortem.timeline.all()).index(entry)
    before = postmortem.history.latest()
    response = submit_change(
        commander_client,
        postmortem,
        root_cause=ROOT_CAUSE,
        lessons_learned="Canary **config** changes.",
        **{
            "contributing_factors-0-category": "technical",
            "contributing_factors-0-description": "Pool size hard-coded",
            f"timeline-{index}-is_key": "on",
            f"timeline-{index}-commentary": "From here one person led.",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    postmortem = fresh(postmortem)
    assert postmortem.root_cause == ROOT_CAUSE
    assert postmortem.lessons_learned == "Canary **config** changes."
    newest = postmortem.history.latest()
    assert newest.history_user == commander
    changes = {change.field for change in newest.diff_against(before).changes}
    assert changes == {"root_cause", "lessons_learned"}

    factor = ContributingFactor.objects.get(postmortem=postmortem)
    assert (factor.category, factor.description) == ("technical", "Pool size hard-coded")
    assert factor.history.get().history_user == commander

    entry.refresh_from_db()
    assert entry.is_key and entry.commentary == "From here one person led."
    assert entry.history.latest().history_user == commander
    # Untouched entries were not rewritten.
    assert TimelineEntry.history.filter(history_type="~").count() == 1


def test_saving_the_page_unchanged_writes_nothing(commander_client, postmortem):
    versions = postmortem.history.count()
    response = submit_change(commander_client, postmortem)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert postmortem.history.count() == versions
    assert TimelineEntry.history.filter(history_type="~").count() == 0


def test_superuser_removes_a_factor_through_the_form(client, postmortem, django_user_model):
    boss = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(boss)
    services.postmortem_update(
        postmortem=postmortem,
        contributing_factors=[("process", "No canary")],
        source=Source.ADMIN,
    )
    response = submit_change(client, postmortem, **{"contributing_factors-0-DELETE": "on"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not ContributingFactor.objects.exists()
    assert ContributingFactor.history.filter(history_type="-").get().history_user == boss


def test_commander_removes_a_factor_through_the_form(commander_client, postmortem):
    services.postmortem_update(
        postmortem=postmortem,
        contributing_factors=[("process", "No canary")],
        source=Source.ADMIN,
    )
    page = commander_client.get(change_url(postmortem)).content.decode()
    assert 'name="contributing_factors-0-DELETE"' in page
    response = submit_change(
        commander_client, postmortem, **{"contributing_factors-0-DELETE": "on"}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not ContributingFactor.objects.exists()


def test_submit_without_reviewers_saves_nothing_and_keeps_the_typed_root_cause(
    commander_client, postmortem
):
    response = submit_change(commander_client, postmortem, root_cause=ROOT_CAUSE, workflow="submit")
    # The same page again: the refusal beside the reviewers, the root cause as typed.
    assert response.status_code == 200
    body = response.content.decode()
    assert "Name at least one reviewer before submitting." in body
    assert f"{ROOT_CAUSE}</textarea>" in body
    assert '<option value="submit" selected>' in body
    postmortem = fresh(postmortem)
    assert postmortem.status == PostMortem.Status.DRAFT
    assert postmortem.root_cause == ""  # nothing saved: the edit went with the refused step


def test_workflow_step_that_needs_a_comment_says_so(commander_client, postmortem, reviewer):
    in_review(postmortem, reviewer)
    services.postmortem_approve(postmortem=postmortem, actor=reviewer, source=Source.ADMIN)
    services.postmortem_publish(postmortem=postmortem, actor=postmortem.owner, source=Source.ADMIN)
    response = submit_change(commander_client, postmortem, workflow="reopen")
    assert response.status_code == 200
    assert "Say why the post-mortem is reopened." in response.content.decode()
    assert fresh(postmortem).is_published


def test_full_workflow_through_the_change_form(client, commander, reviewer, postmortem):
    client.force_login(commander)
    response = submit_change(
        client,
        postmortem,
        root_cause=ROOT_CAUSE,
        reviewers=[str(reviewer.pk)],
        no_action_needed="on",
        no_action_reason="The fix shipped during the response.",
        workflow="submit",
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    page = client.get(response.url)
    assert "Submitted for review; the reviewers were notified." in messages_of(page)
    postmortem = fresh(postmortem)
    assert postmortem.status == PostMortem.Status.IN_REVIEW
    assert list(postmortem.reviewers.all()) == [reviewer]
    assert postmortem.root_cause == ROOT_CAUSE

    client.force_login(reviewer)
    response = submit_change(client, postmortem, workflow="approve", workflow_comment="Clear.")
    assert response.status_code == 302, response.content.decode()[:3000]
    decision = ReviewDecision.objects.get()
    assert (decision.reviewer, decision.decision, decision.comment) == (
        reviewer,
        "approved",
        "Clear.",
    )
    assert "rita" in client.get(change_url(postmortem)).content.decode()  # decisions inline

    response = submit_change(client, postmortem, workflow="publish")
    assert response.status_code == 302, response.content.decode()[:3000]
    assert "Published; the stakeholder groups were notified." in messages_of(
        client.get(response.url)
    )
    postmortem = fresh(postmortem)
    assert postmortem.is_published
    assert postmortem.published_by == reviewer
    steps = postmortem.incident.timeline.filter(kind=vocabulary.Kind.REVIEW)
    assert [event.summary.split(" (")[0] for event in steps][-3:] == [
        "Post-mortem submitted for review",
        "Post-mortem approved by rita",
        "Post-mortem published",
    ]


def test_request_changes_through_the_form_sends_it_back(rita_client, postmortem, reviewer):
    in_review(postmortem, reviewer)
    response = submit_change(
        rita_client, postmortem, workflow="request_changes", workflow_comment="Explain retries"
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert fresh(postmortem).status == PostMortem.Status.DRAFT
    assert ReviewDecision.objects.get().comment == "Explain retries"


def test_owner_cannot_approve_their_own_review_through_the_form(
    commander_client, postmortem, reviewer
):
    in_review(postmortem, reviewer)
    response = submit_change(commander_client, postmortem, workflow="approve")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Only the named reviewers (rita) may decide on this review." in body
    assert not ReviewDecision.objects.exists()


# --- once published -------------------------------------------------------------------


@pytest.fixture
def published(postmortem, reviewer):
    services.postmortem_update(
        postmortem=postmortem,
        contributing_factors=[("process", "No canary for config")],
        source=Source.ADMIN,
    )
    return publish(postmortem, reviewer)


def test_published_review_shows_its_fields_read_only(commander_client, published):
    body = commander_client.get(change_url(published)).content.decode()
    assert ROOT_CAUSE in body
    assert "No canary for config" in body
    assert "Read the published page" in body
    for name in ("root_cause", "executive_summary", "owner", "reviewers", "due_at_0"):
        assert f'name="{name}"' not in body
    assert 'name="contributing_factors-0-description"' not in body
    assert 'name="timeline-0-commentary"' not in body
    assert 'name="workflow"' in body and '<option value="reopen">' in body


def test_posting_edits_to_a_published_review_changes_nothing(commander_client, published):
    data = change_form(commander_client, published)
    data.update(
        root_cause="Rewritten after publication",
        executive_summary="Rewritten",
        **{
            "contributing_factors-0-category": "people",
            "contributing_factors-0-description": "Bob",
            "timeline-0-commentary": "Sneaky",
        },
    )
    versions = published.history.count()
    response = commander_client.post(change_url(published), data)
    assert response.status_code in (200, 302)
    after = fresh(published)
    assert after.root_cause == ROOT_CAUSE
    assert after.executive_summary == published.executive_summary
    assert after.history.count() == versions
    assert list(after.contributing_factors.values_list("description", flat=True)) == [
        "No canary for config"
    ]
    assert not TimelineEntry.objects.filter(commentary="Sneaky").exists()


def test_reopen_through_the_form_makes_it_editable_again(commander_client, published):
    response = submit_change(
        commander_client, published, workflow="reopen", workflow_comment="Wrong dates"
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    after = fresh(published)
    assert (after.status, after.reopen_reason) == (PostMortem.Status.DRAFT, "Wrong dates")
    assert 'name="root_cause"' in commander_client.get(change_url(after)).content.decode()


# --- the changelist -------------------------------------------------------------------


def listed(response) -> set[str]:
    assert response.status_code == 200
    body = response.content.decode()
    return {
        reference
        for reference in Incident.objects.values_list("reference", flat=True)
        if f">{reference}<" in body
    }


def refs(*postmortems):
    return {postmortem.incident.reference for postmortem in postmortems}


@pytest.fixture
def three(incident, reviewer, sev2):
    """A draft, a SEV2 in review and a published review."""
    return {
        "draft": resolve(incident(title="Draft one")),
        "in_review": in_review(resolve(incident(title="In review", severity=sev2)), reviewer),
        "published": publish(resolve(incident(title="Published")), reviewer),
    }


def test_changelist_shows_reviews_with_status_severity_and_due(commander_client, three):
    response = commander_client.get(CHANGELIST)
    assert listed(response) == refs(*three.values())
    body = response.content.decode()
    assert "In review" in body and "Draft" in body and "Published" in body
    assert f"{three['draft'].due_at:%Y-%m-%d}" in body


def test_changelist_filters_by_status_and_severity(commander_client, three, sev2):
    response = commander_client.get(CHANGELIST, {"status__exact": "in_review"})
    assert listed(response) == refs(three["in_review"])
    response = commander_client.get(CHANGELIST, {"incident__severity__id__exact": sev2.pk})
    assert listed(response) == refs(three["in_review"])


def test_overdue_filter_lists_only_unpublished_reviews_past_due(
    client, commander, incident, reviewer
):
    start = timezone.now()
    late = resolve(incident(title="Late"))  # due in 7 days
    done = publish(resolve(incident(title="Done")), reviewer)
    with time_machine.travel(start + timedelta(days=5), tick=False):
        on_time = resolve(incident(title="On time"))  # due in 12 days
    with time_machine.travel(start + timedelta(days=8), tick=False):
        client.force_login(commander)
        response = client.get(CHANGELIST, {"due": "overdue"})
        assert listed(response) == refs(late)
        assert f"overdue since {late.due_at:%Y-%m-%d}" in response.content.decode()
        assert listed(client.get(CHANGELIST, {"due": "this_week"})) == refs(on_time)
        assert listed(client.get(CHANGELIST)) == refs(late, done, on_time)


def test_approve_action_reports_what_worked_and_why_others_did_not(rita_client, three, reviewer):
    response = run_action(rita_client, "approve", [three["in_review"], three["draft"]])
    texts = messages_of(response)
    assert "Approved 1 post-mortem(s)." in texts
    reference = three["draft"].incident.reference
    assert f"Cannot approve the post-mortem of {reference}: it is draft, not in review." in texts
    decision = ReviewDecision.objects.get(postmortem=three["in_review"])
    assert decision.reviewer == reviewer
    assert not ReviewDecision.objects.filter(postmortem=three["draft"]).exists()


def test_approve_action_uses_the_comment_beside_it(rita_client, three):
    run_action(rita_client, "approve", [three["in_review"]], comment="Thorough.")
    assert ReviewDecision.objects.get(postmortem=three["in_review"]).comment == "Thorough."


def test_approve_action_by_someone_not_named_is_refused(commander_client, three):
    response = run_action(commander_client, "approve", [three["in_review"]])
    assert "Only the named reviewers (rita) may decide on this review." in messages_of(response)
    assert not ReviewDecision.objects.filter(postmortem=three["in_review"]).exists()


def test_reopen_action_needs_the_comment_as_its_reason(commander_client, three):
    published = three["published"]
    response = run_action(commander_client, "reopen", [published])
    assert "Say why the post-mortem is reopened." in messages_of(response)
    assert fresh(published).is_published

    response = run_action(commander_client, "reopen", [published], comment="Wrong dates")
    assert "Reopened 1 post-mortem(s)." in messages_of(response)
    after = fresh(published)
    assert (after.status, after.reopen_reason) == (PostMortem.Status.DRAFT, "Wrong dates")


def test_request_changes_action_needs_a_comment(rita_client, three):
    target = three["in_review"]
    response = run_action(rita_client, "request_changes", [target])
    assert "Say what should change." in messages_of(response)
    assert fresh(target).status == PostMortem.Status.IN_REVIEW
    response = run_action(rita_client, "request_changes", [target], comment="Explain retries")
    assert "Sent back 1 post-mortem(s)." in messages_of(response)
    assert fresh(target).status == PostMortem.Status.DRAFT


def test_submit_and_publish_actions(commander_client, three, reviewer):
    draft = three["draft"]
    ready(draft, reviewer)
    response = run_action(commander_client, "submit", [draft])
    assert "Submitted 1 post-mortem(s)." in messages_of(response)
    services.postmortem_approve(postmortem=draft, actor=reviewer, source=Source.ADMIN)
    response = run_action(commander_client, "publish", [draft, three["in_review"]])
    texts = messages_of(response)
    assert "Published 1 post-mortem(s)." in texts
    assert "Cannot publish yet: waiting for approval from rita." in texts
    assert fresh(draft).is_published
    assert fresh(three["in_review"]).status == PostMortem.Status.IN_REVIEW


def test_resync_action_brings_in_new_timeline_events(commander_client, three):
    draft = three["draft"]
    incident_services.timeline_add_entry(
        incident=draft.incident,
        kind=TimelineEvent.Kind.NOTE,
        summary="Late finding",
        source=Source.ADMIN,
    )
    response = run_action(commander_client, "resync", [draft, three["published"]])
    texts = messages_of(response)
    assert "Re-synced 1 post-mortem(s)." in texts
    assert any("is published and read-only" in text for text in texts)
    assert draft.timeline.filter(summary="Late finding").exists()


def _changelist_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    return len(queries), listed(response)


def test_changelist_query_count_does_not_grow_with_reviews(
    commander_client, incident, reviewer, django_assert_max_num_queries
):
    def add(count):
        return [resolve(incident(title=f"Incident {number}")) for number in range(count)]

    made = add(1)
    with_one, shown = _changelist_queries(commander_client)
    assert shown == refs(*made)
    made += add(9)
    with django_assert_max_num_queries(with_one):
        response = commander_client.get(CHANGELIST)
    assert listed(response) == refs(*made)
    assert with_one <= 12


# --- confidential reviews -------------------------------------------------------------


@pytest.fixture
def secret(incident, security_type):
    confidential = incident(title="Token leaked", incident_type=security_type)
    assert confidential.confidential
    return resolve(confidential)


def test_confidential_review_is_hidden_from_writers_outside_the_incident(client, secret, outsider):
    client.force_login(outsider)
    assert listed(client.get(CHANGELIST)) == set()
    response = client.get(change_url(secret))
    assert response.status_code == 302  # the admin's "does not exist" redirect
    client.post(change_url(secret), {"root_cause": "Peeked"})
    assert fresh(secret).root_cause == ""


def test_confidential_review_is_visible_to_the_security_group(client, secret, security_member):
    client.force_login(security_member)
    assert listed(client.get(CHANGELIST)) == refs(secret)
    assert client.get(change_url(secret)).status_code == 200


def test_history_of_a_confidential_review_is_hidden_from_outsiders(client, secret, outsider):
    client.force_login(outsider)
    history = reverse("admin:postmortems_postmortem_history", args=[secret.pk])
    response = client.get(history)
    assert response.status_code == 404
    assert "Token leaked" not in response.content.decode()


def test_staff_stakeholder_sees_only_published_reviews_in_the_admin(
    client, three, django_user_model
):
    viewer = make_user(django_user_model, "grace", "Stakeholders", is_staff=True)
    client.force_login(viewer)
    assert listed(client.get(CHANGELIST)) == refs(three["published"])
    assert client.get(change_url(three["draft"])).status_code == 302  # "does not exist"
    run_action(client, "reopen", [three["published"]], comment="Mine")
    assert fresh(three["published"]).is_published


def test_change_page_does_not_name_related_incidents_the_writer_cannot_see(
    client, postmortem, incident, security_type, outsider
):
    hidden = incident(title="Token leaked", incident_type=security_type)
    services.postmortem_update(
        postmortem=postmortem, related_incidents=[hidden], source=Source.ADMIN
    )
    client.force_login(outsider)
    response = client.get(change_url(postmortem))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Token leaked" not in body
    assert hidden.reference not in body


def test_history_pages_of_a_public_review_do_not_name_hidden_related_incidents(
    client, postmortem, incident, security_type, outsider, security_member, reviewer
):
    hidden = incident(title="Token leaked", incident_type=security_type)
    services.postmortem_update(
        postmortem=postmortem, related_incidents=[hidden], source=Source.ADMIN
    )
    publish(postmortem, reviewer)  # published: the page shows related incidents read-only
    versions = [
        reverse("admin:postmortems_postmortem_simple_history", args=[postmortem.pk, pk])
        for pk in postmortem.history.values_list("history_id", flat=True)
    ]
    pages = [reverse("admin:postmortems_postmortem_history", args=[postmortem.pk]), *versions]
    assert len(versions) > 3
    client.force_login(outsider)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert "Token leaked" not in body, url
        assert hidden.reference not in body, url
    # The same pages name it to someone who may see it: the check above can fail.
    client.force_login(security_member)
    assert any("Token leaked" in client.get(url).content.decode() for url in versions)


def test_history_diff_names_hidden_incidents_as_confidential(
    postmortem, incident, security_type, outsider, security_member
):
    hidden = incident(title="Token leaked", incident_type=security_type)
    record = postmortem.history.latest()
    for user, shown in ((outsider, HIDDEN_INCIDENT), (security_member, hidden)):
        helper = VisibleHistoryContext(PostMortem, record, user=user)
        assert helper._shown(hidden) == shown
        assert helper._shown(postmortem) == postmortem  # its own incident: visible
        assert helper._shown("plain text") == "plain text"


# --- the incident console -------------------------------------------------------------


def test_incident_page_links_to_its_review(commander_client, postmortem):
    body = commander_client.get(incident_url(postmortem.incident)).content.decode()
    assert "Post-incident review" in body
    assert (
        f'<a href="{change_url(postmortem)}">Draft</a> · due {postmortem.due_at:%Y-%m-%d}' in body
    )


def test_incident_page_says_when_a_review_is_required_but_not_started(
    commander_client, incident, sev3
):
    body = commander_client.get(incident_url(incident())).content.decode()
    assert "Required for this severity; not started yet." in body
    body = commander_client.get(incident_url(incident(severity=sev3))).content.decode()
    assert "Required for this severity" not in body
    assert '<div class="readonly">None.</div>' in body


def test_start_postmortem_action_creates_one_and_opens_it(
    commander_client, commander, incident, sev3
):
    minor = incident(title="Slow avatars", severity=sev3)
    resolved = incident_services.incident_transition(
        incident=minor, to_status=Status.RESOLVED, source=Source.ADMIN
    )
    assert not PostMortem.objects.exists()  # SEV3 does not start one on its own
    response = commander_client.post(
        INCIDENTS, {"action": "start_postmortem", "_selected_action": [resolved.pk]}
    )
    postmortem = PostMortem.objects.get(incident=resolved)
    assert response.status_code == 302
    assert response.url == change_url(postmortem)
    page = commander_client.get(response.url)
    assert "Started the post-mortem of 1 incident(s)." in messages_of(page)
    assert postmortem.owner == commander
    assert postmortem.facts["severity"] == "SEV3"
    assert postmortem.timeline.exists()


def test_start_postmortem_action_on_several_incidents_stays_on_the_list(
    commander_client, incident, sev3
):
    minor = [incident(title=f"Minor {number}", severity=sev3) for number in range(2)]
    response = run_action(commander_client, "start_postmortem", minor, url=INCIDENTS)
    assert response.redirect_chain == [(INCIDENTS, 302)]
    assert "Started the post-mortem of 2 incident(s)." in messages_of(response)
    assert PostMortem.objects.count() == 2


def test_start_postmortem_action_explains_why_an_incident_got_none(
    commander_client, incident, sev3, postmortem
):
    minor = incident(title="Slow avatars", severity=sev3)
    response = run_action(
        commander_client, "start_postmortem", [minor, postmortem.incident], url=INCIDENTS
    )
    texts = messages_of(response)
    assert "Started the post-mortem of 1 incident(s)." in texts
    assert f"{postmortem.incident.reference} already has a post-mortem." in texts
    assert PostMortem.objects.count() == 2


def related_suggestions(client, term) -> list[str]:
    response = client.get(
        "/admin/autocomplete/",
        {
            "app_label": "postmortems",
            "model_name": "postmortem",
            "field_name": "related_incidents",
            "term": term,
        },
    )
    assert response.status_code == 200
    return [row["text"] for row in response.json()["results"]]


def test_related_incident_picker_suggests_only_incidents_the_writer_may_see(
    client, postmortem, incident, security_type, outsider, security_member
):
    hidden = incident(title="Token leaked", incident_type=security_type)
    client.force_login(outsider)
    assert related_suggestions(client, "Token") == []
    client.force_login(security_member)
    assert related_suggestions(client, "Token") == [f"{hidden.reference} Token leaked"]
