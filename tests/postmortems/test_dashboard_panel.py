"""The dashboard's post-mortems panel: reviews I own that are due, and reviews waiting
for my decision."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from postmortems.models import PostMortem, ReviewDecision

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


def mine_section(client) -> str:
    page = client.get(INDEX).content.decode()
    start = page.index('id="dash-mine"')
    return page[start : page.index("</section>", start)]


def test_an_owned_review_due_soon_shows_and_one_due_later_does_not(commander_client, postmortem):
    PostMortem.objects.filter(pk=postmortem.pk).update(due_at=timezone.now() + timedelta(days=10))
    assert "Post-mortems due" not in mine_section(commander_client)
    PostMortem.objects.filter(pk=postmortem.pk).update(due_at=timezone.now() - timedelta(hours=1))
    section = mine_section(commander_client)
    assert "Post-mortems due" in section
    assert postmortem.incident.reference in section
    assert "I own it" in section and "overdue since" in section


def test_a_review_waiting_for_my_decision_shows_until_i_decide(client, postmortem, reviewer):
    PostMortem.objects.filter(pk=postmortem.pk).update(
        status=PostMortem.Status.IN_REVIEW, review_round=1, due_at=None
    )
    postmortem.reviewers.add(reviewer)
    client.force_login(reviewer)
    assert "waiting for my review" in mine_section(client)
    ReviewDecision.objects.create(
        postmortem=postmortem,
        round=1,
        reviewer=reviewer,
        decision=ReviewDecision.Decision.APPROVED,
        decided_at=timezone.now(),
    )
    assert "Post-mortems due" not in mine_section(client)


def test_a_published_review_is_never_due(commander_client, postmortem):
    PostMortem.objects.filter(pk=postmortem.pk).update(
        status=PostMortem.Status.PUBLISHED, due_at=timezone.now() - timedelta(days=1)
    )
    assert "Post-mortems due" not in mine_section(commander_client)
