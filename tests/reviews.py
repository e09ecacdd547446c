"""Reviews written the way people would: for tests of reviews, and so that tests of other
things can close SEV1/SEV2 incidents (closing needs a published review)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from incidents import services as incident_services
from incidents.models import Source, Status
from postmortems import services
from postmortems.models import PostMortem

# Action items are the remediation tests' concern; reviews elsewhere need none.
NO_ACTION = {"no_action_needed": True, "no_action_reason": "The fix shipped during the response."}


def publish_review(incident) -> PostMortem:
    """Start (if needed), write, review and publish the incident's post-mortem."""
    User = get_user_model()
    reviewer, _ = User.objects.get_or_create(
        username="rita-reviewer", defaults={"email": "rita@example.com"}
    )
    reviewer.groups.add(Group.objects.get(name="Incident commanders"))  # may approve
    writer, _ = User.objects.get_or_create(
        username="wes-writer", defaults={"email": "wes@example.com"}
    )
    postmortem = PostMortem.objects.filter(incident=incident).first()
    if postmortem is None:
        postmortem = services.postmortem_create(
            incident=incident, owner=writer, source=Source.ADMIN
        )
    services.postmortem_update(
        postmortem=postmortem,
        owner=writer,
        reviewers=[reviewer],
        executive_summary="Checkout failed for 40 minutes after a bad deploy.",
        impact="All card payments failed.",
        root_cause="A configuration change shrank the connection pool.",
        source=Source.ADMIN,
        **NO_ACTION,
    )
    services.postmortem_submit(postmortem=postmortem, actor=writer, source=Source.ADMIN)
    services.postmortem_approve(postmortem=postmortem, actor=reviewer, source=Source.ADMIN)
    return services.postmortem_publish(postmortem=postmortem, actor=writer, source=Source.ADMIN)


ROOT_CAUSE = "The pool was too small for the retry storm."


def resolve(incident) -> PostMortem:
    """Resolve the incident; a SEV1/SEV2 starts its post-mortem on resolution."""
    incident_services.incident_transition(
        incident=incident, to_status=Status.RESOLVED, source=Source.ADMIN
    )
    return PostMortem.objects.get(incident=incident)


def ready(postmortem, reviewer, **changes) -> PostMortem:
    """Write the required sections (the draft holds the rest) and name the reviewer;
    publishable without action items unless `changes` say otherwise."""
    fields = {"root_cause": ROOT_CAUSE, **NO_ACTION, **changes}
    return services.postmortem_update(
        postmortem=postmortem, reviewers=[reviewer], source=Source.ADMIN, **fields
    )


def in_review(postmortem, reviewer, **changes) -> PostMortem:
    ready(postmortem, reviewer, **changes)
    return services.postmortem_submit(
        postmortem=postmortem, actor=postmortem.owner, source=Source.ADMIN
    )


def publish(postmortem, reviewer, **changes) -> PostMortem:
    """Take the draft through review to published, as its owner and `reviewer`."""
    in_review(postmortem, reviewer, **changes)
    services.postmortem_approve(postmortem=postmortem, actor=reviewer, source=Source.ADMIN)
    return services.postmortem_publish(
        postmortem=postmortem, actor=postmortem.owner, source=Source.ADMIN
    )
