"""Every write to a post-mortem: generate, edit, review, publish, reopen.

Each service runs in one transaction, locks the review it changes, refuses bad moves
with the core's domain errors, records the acting user in history, writes the step on
the incident's timeline and queues notifications — all or nothing.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from incidents import notifications
from incidents.errors import DomainError, StateConflict
from incidents.extensions import CloseRequest, Transitioned
from incidents.models import Incident, Role, Status
from incidents.queries import incident_list_visible_to, user_may_see_incident
from incidents.services import (
    acting_user,
    check_all_may_see,
    clean_text,
    save_as,
    timeline_record,
)

from . import extensions
from .generate import KEY_KINDS, SKIPPED_KINDS, draft_sections, incident_facts
from .models import (
    REQUIRED_SECTIONS,
    SECTIONS,
    ContributingFactor,
    PostMortem,
    ReviewDecision,
    TimelineEntry,
)
from .vocabulary import Event, Kind

PMStatus = PostMortem.Status

EDITABLE_FIELDS = frozenset(
    {*SECTIONS, "owner", "due_at", "review_meeting_at", "no_action_needed", "no_action_reason"}
)
TEXT_LIMIT = 50_000
DATES_WINDOW = timedelta(days=365)


# --- helpers --------------------------------------------------------------------------


def _lock(postmortem: PostMortem) -> PostMortem:
    # Two writers (or a writer and a reviewer) acting at once must not both read the
    # old status and both write; of=("self",) leaves the shared incident row alone.
    return (
        PostMortem.objects.select_for_update(of=("self",))
        .select_related("incident__severity", "incident__incident_type", "owner")
        .get(pk=postmortem.pk)
    )


def _editable(postmortem: PostMortem) -> None:
    if postmortem.is_published:
        raise StateConflict(
            f"The post-mortem of {postmortem.incident.reference} is published and read-only; "
            "reopen it (with a reason) to change it."
        )


def _edited(postmortem: PostMortem, actor, source: str) -> None:
    """After an edit in review: approvals given to the earlier text no longer count."""
    if (
        postmortem.status != PMStatus.IN_REVIEW
        or not postmortem.decisions.filter(
            round=postmortem.review_round, decision=ReviewDecision.Decision.APPROVED
        ).exists()
    ):
        return
    postmortem.review_round += 1
    save_as(postmortem, actor)
    _on_timeline(
        postmortem,
        f"Post-mortem edited after approval; review round {postmortem.review_round} starts",
        actor,
        source,
        round=postmortem.review_round,
    )
    _tell(
        postmortem,
        postmortem.reviewers.all(),
        "Changed after approval",
        "The post-mortem changed after it was approved; please review it again.",
        actor,
    )


def _on_timeline(postmortem: PostMortem, summary: str, actor, source: str, **details) -> None:
    timeline_record(
        postmortem.incident,
        kind=Kind.REVIEW,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=timezone.now(),
        details={"postmortem": postmortem.pk, **details},
    )


def _links(postmortem: PostMortem) -> str:
    admin = reverse("admin:postmortems_postmortem_change", args=[postmortem.pk])
    return (
        f"Edit: {settings.SITE_URL}{admin}\n"
        f"Read: {settings.SITE_URL}{postmortem.get_absolute_url()}"
    )


def _tell(postmortem: PostMortem, users, subject: str, message: str, actor=None) -> None:
    """Notify `users` (but not the one who acted) about the review."""
    acting = acting_user(actor)
    incident = postmortem.incident
    recipients = [
        user
        for user in users
        if (acting is None or user.pk != acting.pk)
        # An incident made confidential after people were named: they are not told.
        and user_may_see_incident(user, incident)
    ]
    if recipients:
        notifications.notify(
            postmortem.incident,
            Event.REVIEW,
            users=recipients,
            subject=f"{subject}: post-mortem {postmortem.incident.reference}",
            message=f"{message}\n\n{_links(postmortem)}",
        )


def _may_change_postmortems(users: list) -> set[int]:
    """Return the pks of `users` who may change post-mortems, in one query for the list
    (has_perm costs two per user). Permissions come from Django's groups, which only
    ModelBackend knows (the lockout backend beside it holds none)."""
    may = get_user_model().objects.with_perm(
        "postmortems.change_postmortem", backend="django.contrib.auth.backends.ModelBackend"
    )
    return set(may.filter(pk__in=[user.pk for user in users]).values_list("pk", flat=True))


def _due_at(incident: Incident) -> datetime | None:
    days = incident.severity.postmortem_due_days
    if incident.resolved_at is None or days is None:
        return None
    return incident.resolved_at + timedelta(days=days)


def _current_commander(incident: Incident):
    assignment = (
        incident.roles.filter(role=Role.COMMANDER, relieved_at__isnull=True)
        .select_related("user")
        .first()
    )
    return assignment.user if assignment else None


# --- generating -----------------------------------------------------------------------


def _sync(postmortem: PostMortem, actor) -> int:
    """Copy the incident's facts, timeline and people in, keeping the writer's edits;
    return how many timeline entries were added."""
    incident = postmortem.incident
    facts = incident_facts(incident)
    drafts = draft_sections(facts, incident.summary)
    for name, text in drafts.items():
        current = getattr(postmortem, name)
        # Never generated, or untouched since: refresh; edited (even emptied): the
        # writer's text wins.
        if name not in postmortem.generated or current == postmortem.generated[name]:
            setattr(postmortem, name, text)
    postmortem.facts = facts
    postmortem.generated = drafts
    postmortem.synced_at = timezone.now()
    if postmortem.due_at is None:
        postmortem.due_at = _due_at(incident)

    # The incident's timeline is append-only: what was copied once stays as it was.
    copied = set(postmortem.timeline.values_list("event_id", flat=True))
    added = 0
    for event in incident.timeline.exclude(kind__in=SKIPPED_KINDS).exclude(pk__in=copied):
        entry = TimelineEntry(
            postmortem=postmortem,
            event=event,
            occurred_at=event.occurred_at,
            kind=event.kind,
            summary=event.summary,
            is_key=event.kind in KEY_KINDS,
        )
        save_as(entry, actor)
        added += 1

    people = {assignment.user for assignment in incident.roles.select_related("user")}
    if incident.declared_by is not None:
        people.add(incident.declared_by)
    postmortem.participants.add(*people)
    return added


@transaction.atomic
def postmortem_create(*, incident: Incident, source: str, actor=None, owner=None) -> PostMortem:
    """Start the review of `incident`, filled in from what Sitrep recorded."""
    incident = Incident.objects.select_for_update(of=("self",)).get(pk=incident.pk)
    if PostMortem.objects.filter(incident=incident).exists():
        raise StateConflict(f"{incident.reference} already has a post-mortem.", field="incident")
    if incident.status in (Status.TRIAGE, Status.CANCELLED):
        raise StateConflict(
            f"{incident.reference} is {incident.get_status_display().lower()}; "
            "only a declared incident gets a post-mortem.",
            field="incident",
        )
    owner = owner or _current_commander(incident) or acting_user(actor)
    if owner is not None:
        check_all_may_see([owner], incident, "owner")
    postmortem = PostMortem(incident=incident, owner=owner)
    save_as(postmortem, actor)
    _sync(postmortem, actor)
    save_as(postmortem, actor)
    due = f", due {postmortem.due_at:%Y-%m-%d}" if postmortem.due_at else ""
    owned = f" by {owner.get_username()}" if owner else ""
    _on_timeline(postmortem, f"Post-mortem started{owned}{due}", actor, source)
    if owner is not None:
        _tell(
            postmortem,
            [owner],
            "You own the review",
            f"You own the post-mortem of {incident.reference} ({incident.title}){due}. "
            "The facts and the timeline are filled in; the analysis is yours to write.",
            actor,
        )
    return postmortem


@transaction.atomic
def postmortem_sync(*, postmortem: PostMortem, source: str, actor=None) -> int:
    """Bring in what the incident recorded since; return how many events were added."""
    postmortem = _lock(postmortem)
    _editable(postmortem)
    before = [text for _, _, text in postmortem.sections()]
    added = _sync(postmortem, actor)
    save_as(postmortem, actor)
    if added or before != [text for _, _, text in postmortem.sections()]:
        _edited(postmortem, actor, source)
    return added


# --- editing --------------------------------------------------------------------------


def _clean_text(name: str, value) -> str:
    return clean_text(value, field=name, limit=TEXT_LIMIT)


@transaction.atomic
def postmortem_update(
    *,
    postmortem: PostMortem,
    source: str,
    actor=None,
    participants: Iterable | None = None,
    reviewers: Iterable | None = None,
    related_incidents: Iterable[Incident] | None = None,
    contributing_factors: list[tuple[str, str]] | None = None,
    timeline_marks: dict[int, tuple[bool, str | None]] | None = None,
    **changes,
) -> PostMortem:
    """Edit the sections, people and dates; contributing factors, if given, replace
    the list ((category, description) pairs, in order); timeline marks set
    {entry id: (is key, commentary or None to keep it)}."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise DomainError(f"Cannot edit {', '.join(sorted(unknown))} here.")
    postmortem = _lock(postmortem)
    _editable(postmortem)
    incident = postmortem.incident
    for name in (*SECTIONS, "no_action_reason"):
        if name in changes:
            changes[name] = _clean_text(name, changes[name])
    owner = changes.get("owner", postmortem.owner)
    if "owner" in changes and owner is not None:
        check_all_may_see([owner], incident, "owner")
    now = timezone.now()
    for name in ("due_at", "review_meeting_at"):
        when = changes.get(name)
        if when is not None and timezone.is_naive(when):
            raise DomainError("Times must include a time zone.", field=name)
        # A date years away would keep the review from ever being overdue.
        if when is not None and not now - DATES_WINDOW <= when <= now + DATES_WINDOW:
            raise DomainError(f"Must be within {DATES_WINDOW.days} days of today.", field=name)
    if reviewers is not None:
        reviewers = list(reviewers)
        check_all_may_see(reviewers, incident, "reviewers")
        may_approve = _may_change_postmortems(reviewers)
        for user in reviewers:
            if user.pk not in may_approve:
                raise DomainError(
                    f"{user.get_username()} may not change post-mortems, so could never "
                    "approve this one.",
                    field="reviewers",
                )
    final_reviewers = reviewers if reviewers is not None else list(postmortem.reviewers.all())
    if owner is not None and any(user.pk == owner.pk for user in final_reviewers):
        raise DomainError("The owner cannot review their own post-mortem.", field="reviewers")
    if related_incidents is not None:
        related_incidents = [other for other in related_incidents if other.pk != incident.pk]
    if contributing_factors is not None:
        for category, description in contributing_factors:
            _check_factor(category, description)

    entries = {}
    if timeline_marks:
        entries = postmortem.timeline.in_bulk(list(timeline_marks))
        unknown_ids = sorted(set(timeline_marks) - set(entries))
        if unknown_ids:
            raise DomainError(
                f"No timeline entries {unknown_ids} in this post-mortem.", field="timeline"
            )

    content_changed = bool(timeline_marks) or contributing_factors is not None
    content_changed |= any(
        getattr(postmortem, name) != value
        for name, value in changes.items()
        if name in SECTIONS or name.startswith("no_action")
    )
    for name, value in changes.items():
        setattr(postmortem, name, value)
    save_as(postmortem, actor)
    for entry_id, (is_key, commentary) in (timeline_marks or {}).items():
        entry = entries[entry_id]
        entry.is_key = bool(is_key)
        if commentary is not None:
            entry.commentary = _clean_text("commentary", commentary)
        save_as(entry, actor)
    if participants is not None:
        postmortem.participants.set(participants)
    if reviewers is not None:
        postmortem.reviewers.set(reviewers)
    if related_incidents is not None:
        postmortem.related_incidents.set([*related_incidents, *_hidden_related(postmortem, actor)])
    if contributing_factors is not None:
        postmortem.contributing_factors.all().delete()
        for position, (category, description) in enumerate(contributing_factors):
            factor = ContributingFactor(
                postmortem=postmortem,
                category=category,
                description=_clean_text("contributing_factors", description),
                position=position,
            )
            save_as(factor, actor)
    if content_changed:
        _edited(postmortem, actor, source)
    return postmortem


def _hidden_related(postmortem: PostMortem, actor) -> list[Incident]:
    """Return the related incidents `actor` may not see: kept when they edit the list,
    since they could neither see nor mean to remove them."""
    user = acting_user(actor)
    if user is None:
        return []
    visible = incident_list_visible_to(user).values("pk")
    return list(postmortem.related_incidents.exclude(pk__in=visible))


def _check_factor(category: str, description) -> None:
    clean_text(description, field="contributing_factors", limit=TEXT_LIMIT)
    if category not in ContributingFactor.Category.values:
        allowed = ", ".join(ContributingFactor.Category.values)
        raise DomainError(
            f"Unknown category {category!r}; use one of {allowed}.", field="contributing_factors"
        )
    if not isinstance(description, str) or not description.strip():
        raise DomainError("Each factor needs a description.", field="contributing_factors")


@transaction.atomic
def contributing_factor_save(
    *, factor: ContributingFactor, source: str, actor=None
) -> ContributingFactor:
    """Add or change one contributing factor of an editable review."""
    postmortem = _lock(factor.postmortem)
    _editable(postmortem)
    _check_factor(factor.category, factor.description)
    factor.description = _clean_text("contributing_factors", factor.description)
    save_as(factor, actor)
    _edited(postmortem, actor, source)
    return factor


@transaction.atomic
def contributing_factor_delete(*, factor: ContributingFactor, source: str, actor=None) -> None:
    postmortem = _lock(factor.postmortem)
    _editable(postmortem)
    factor._history_user = acting_user(actor)
    factor.delete()
    _edited(postmortem, actor, source)


# --- review workflow ------------------------------------------------------------------


def _check_status(postmortem: PostMortem, expected: str, doing: str) -> None:
    if postmortem.status != expected:
        raise StateConflict(
            f"Cannot {doing} the post-mortem of {postmortem.incident.reference}: it is "
            f"{postmortem.get_status_display().lower()}, not "
            f"{PMStatus(expected).label.lower()}.",
            field="status",
        )


def _check_reviewer(postmortem: PostMortem, actor) -> None:
    user = acting_user(actor)
    if user is None or not postmortem.reviewers.filter(pk=user.pk).exists():
        named = ", ".join(postmortem.reviewers.values_list("username", flat=True))
        raise StateConflict(
            f"Only the named reviewers ({named or 'none yet'}) may decide on this review.",
            field="reviewer",
        )


@transaction.atomic
def postmortem_submit(*, postmortem: PostMortem, source: str, actor=None):
    """Send the draft to its reviewers."""
    postmortem = _lock(postmortem)
    _check_status(postmortem, PMStatus.DRAFT, "submit")
    missing = [
        SECTIONS[name][0].lower()
        for name in REQUIRED_SECTIONS
        if not getattr(postmortem, name).strip()
    ]
    if missing:
        raise DomainError(f"Write the {', '.join(missing)} before submitting.", field="status")
    if postmortem.owner is None:
        raise DomainError("Name an owner before submitting.", field="owner")
    reviewers = list(postmortem.reviewers.all())
    if not reviewers:
        raise DomainError("Name at least one reviewer before submitting.", field="reviewers")
    postmortem.status = PMStatus.IN_REVIEW
    postmortem.review_round += 1
    save_as(postmortem, actor)
    names = ", ".join(user.get_username() for user in reviewers)
    _on_timeline(
        postmortem,
        f"Post-mortem submitted for review (round {postmortem.review_round}) to {names}",
        actor,
        source,
        round=postmortem.review_round,
    )
    _tell(
        postmortem,
        reviewers,
        "Review requested",
        f"Please review the post-mortem of {postmortem.incident.reference} "
        f"({postmortem.incident.title}): approve it or request changes.",
        actor,
    )
    return postmortem


def _decide(postmortem, actor, decision: str, comment: str) -> ReviewDecision:
    if ReviewDecision.objects.filter(
        postmortem=postmortem, round=postmortem.review_round, reviewer=actor
    ).exists():
        raise StateConflict(
            f"{actor.get_username()} already decided on round {postmortem.review_round}.",
            field="reviewer",
        )
    record = ReviewDecision(
        postmortem=postmortem,
        round=postmortem.review_round,
        reviewer=actor,
        decision=decision,
        comment=comment,
        decided_at=timezone.now(),
    )
    save_as(record, actor)
    return record


@transaction.atomic
def postmortem_approve(
    *, postmortem: PostMortem, actor, source: str, comment: str = ""
) -> ReviewDecision:
    """Record a named reviewer's approval of the current submission."""
    postmortem = _lock(postmortem)
    _check_status(postmortem, PMStatus.IN_REVIEW, "approve")
    _check_reviewer(postmortem, actor)
    comment = _clean_text("comment", comment)
    record = _decide(postmortem, actor, ReviewDecision.Decision.APPROVED, comment)
    summary = f"Post-mortem approved by {actor.get_username()}"
    _on_timeline(postmortem, summary, actor, source, round=postmortem.review_round)
    waiting = _awaiting_approval(postmortem)
    next_step = f"Still waiting for {', '.join(waiting)}." if waiting else "It is ready to publish."
    if postmortem.owner is not None:
        _tell(postmortem, [postmortem.owner], "Approved", f"{summary}. {next_step}", actor)
    return record


@transaction.atomic
def postmortem_request_changes(
    *, postmortem: PostMortem, actor, comment: str, source: str
) -> ReviewDecision:
    """Send the review back to its owner as a draft, saying what to change."""
    comment = clean_text(
        comment, field="comment", limit=TEXT_LIMIT, required="Say what should change."
    )
    postmortem = _lock(postmortem)
    _check_status(postmortem, PMStatus.IN_REVIEW, "request changes to")
    _check_reviewer(postmortem, actor)
    record = _decide(postmortem, actor, ReviewDecision.Decision.CHANGES_REQUESTED, comment)
    postmortem.status = PMStatus.DRAFT
    save_as(postmortem, actor)
    summary = f"Changes requested by {actor.get_username()}: {comment}"
    _on_timeline(postmortem, f"Post-mortem: {summary}", actor, source)
    if postmortem.owner is not None:
        _tell(postmortem, [postmortem.owner], "Changes requested", summary, actor)
    return record


def _awaiting_approval(postmortem: PostMortem) -> list[str]:
    approved = ReviewDecision.objects.filter(
        postmortem=postmortem,
        round=postmortem.review_round,
        decision=ReviewDecision.Decision.APPROVED,
    ).values("reviewer")
    return list(postmortem.reviewers.exclude(pk__in=approved).values_list("username", flat=True))


@transaction.atomic
def postmortem_publish(*, postmortem: PostMortem, source: str, actor=None):
    """Publish the approved review to its stakeholders; it becomes read-only."""
    postmortem = _lock(postmortem)
    _check_status(postmortem, PMStatus.IN_REVIEW, "publish")
    waiting = _awaiting_approval(postmortem)
    if waiting:
        raise StateConflict(
            f"Cannot publish yet: waiting for approval from {', '.join(waiting)}.",
            field="status",
        )
    if not postmortem.reviewers.exists():
        # Submitting needs a reviewer; one removed since must not mean "nobody to wait for".
        raise StateConflict(
            "Cannot publish: no reviewer is named. Name one; they approve it first.",
            field="status",
        )
    extensions.publish_guard.run(
        extensions.PublishRequest(postmortem=postmortem, actor=actor, source=source)
    )
    postmortem.status = PMStatus.PUBLISHED
    postmortem.published_at = timezone.now()
    postmortem.published_by = acting_user(actor)
    postmortem.reopen_reason = ""
    save_as(postmortem, actor)
    _on_timeline(postmortem, "Post-mortem published", actor, source)
    incident = postmortem.incident
    # The stakeholder groups the matrix names for this severity (confidential
    # incidents reach only those cleared for them).
    notifications.notify(
        incident,
        Event.REVIEW_PUBLISHED,
        subject=f"Post-mortem published: {incident.reference} {incident.title}",
        message=(
            f"{postmortem.executive_summary}\n\n"
            f"Read it: {settings.SITE_URL}{postmortem.get_absolute_url()}"
        ),
    )
    return postmortem


@transaction.atomic
def postmortem_reopen(
    *, postmortem: PostMortem, reason: str, source: str, actor=None
) -> PostMortem:
    """Take a published review back to draft to correct it; the reason is kept."""
    reason = clean_text(
        reason, field="reason", limit=TEXT_LIMIT, required="Say why the post-mortem is reopened."
    )
    postmortem = _lock(postmortem)
    _check_status(postmortem, PMStatus.PUBLISHED, "reopen")
    postmortem.status = PMStatus.DRAFT
    postmortem.published_at = None
    postmortem.published_by = None
    postmortem.reopen_reason = reason
    postmortem._change_reason = reason
    save_as(postmortem, actor)
    _on_timeline(postmortem, f"Post-mortem reopened: {reason}", actor, source, reason=reason)
    people = [postmortem.owner, *postmortem.reviewers.all()]
    _tell(postmortem, [user for user in people if user], "Reopened", reason, actor)
    return postmortem


# --- the incident lifecycle's extension points (registered in apps.py) -----------------


def require_published_postmortem(request: CloseRequest) -> None:
    """Refuse to close an incident whose severity requires a review until it is published."""
    incident = request.incident
    if not incident.severity.postmortem_required:
        return
    # Locked: a reopen committing between this check and the close would otherwise
    # leave a closed incident with an unpublished review.
    postmortem = PostMortem.objects.select_for_update().filter(incident=incident).first()
    if postmortem is None:
        raise StateConflict(
            f"{incident.reference} cannot be closed: {incident.severity.key} requires a "
            "published post-mortem and none has been started.",
            field="status",
        )
    if not postmortem.is_published:
        raise StateConflict(
            f"{incident.reference} cannot be closed: {incident.severity.key} requires a "
            f"published post-mortem and its post-mortem is "
            f"{postmortem.get_status_display().lower()}.",
            field="status",
        )


def start_postmortem_on_resolve(event: Transitioned) -> None:
    """When an incident whose severity requires a review is resolved, start the review;
    one started earlier takes in the resolution (facts, due date)."""
    if event.to_status != Status.RESOLVED:
        return
    incident, actor, source = event.incident, event.actor, event.source
    postmortem = PostMortem.objects.filter(incident=incident).first()
    if postmortem is None:
        if incident.severity.postmortem_required:
            postmortem_create(incident=incident, actor=actor, source=source)
    elif not postmortem.is_published:
        postmortem_sync(postmortem=postmortem, actor=actor, source=source)
