"""Take an incident's post-mortem to published, the way people would, so that tests of
other things can close SEV1/SEV2 incidents (closing needs a published review)."""

from django.contrib.auth import get_user_model

from postmortems import services
from postmortems.models import PostMortem


def publish_review(incident) -> PostMortem:
    """Start (if needed), write, review and publish the incident's post-mortem."""
    User = get_user_model()
    reviewer, _ = User.objects.get_or_create(
        username="rita-reviewer", defaults={"email": "rita@example.com"}
    )
    writer, _ = User.objects.get_or_create(
        username="wes-writer", defaults={"email": "wes@example.com"}
    )
    postmortem = PostMortem.objects.filter(incident=incident).first()
    if postmortem is None:
        postmortem = services.postmortem_create(incident=incident, owner=writer)
    services.postmortem_update(
        postmortem=postmortem,
        owner=writer,
        reviewers=[reviewer],
        executive_summary="Checkout failed for 40 minutes after a bad deploy.",
        impact="All card payments failed.",
        root_cause="A configuration change shrank the connection pool.",
    )
    services.postmortem_submit(postmortem=postmortem, actor=writer)
    services.postmortem_approve(postmortem=postmortem, actor=reviewer)
    return services.postmortem_publish(postmortem=postmortem, actor=writer)
