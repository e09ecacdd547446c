"""Every write to an incident's checklist: starting the playbooks that match it, ticking,
skipping and reopening steps, adding a step by hand. Each runs in the transaction of the
change that asked for it (or its own), with the incident locked, and says so on the
incident's timeline (kind `checklist`).

Registered in apps.py: `start_on_declaration` and `start_on_severity_change` (events),
`require_steps_before_close` (the close guard), `review_gaps` (a review's draft)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from incidents import extensions
from incidents.errors import DomainError, StateConflict
from incidents.formatting import short_duration
from incidents.history import bulk_create_with_history
from incidents.models import Incident, Severity, TimelineEvent
from incidents.services import (
    NOTE_TEXT,
    acting_user,
    clean_text,
    lock_incident,
    save_as,
    timeline_record,
    when_happened,
)

from .models import (
    GUIDANCE_TEXT,
    MAX_DUE_MINUTES,
    NOT_WORKED,
    PHASE_ORDER,
    TITLE_TEXT,
    ChecklistStep,
    CloseRequirement,
    Phase,
    Playbook,
    PlaybookStep,
    due_at,
)
from .queries import unresolved_required

CHECKLIST = TimelineEvent.Kind.CHECKLIST


# --- starting playbooks ---------------------------------------------------------------


def matching_steps(incident: Incident, severity: Severity) -> QuerySet:
    """The steps of the active playbooks for the incident's type at `severity` (one
    query, each step with its playbook)."""
    return (
        PlaybookStep.objects.filter(
            playbook__is_active=True,
            playbook__incident_type_id=incident.incident_type_id,
            playbook__min_severity__rank__gte=severity.rank,
        )
        .select_related("playbook")
        .order_by("playbook__name", "phase", "position", "pk")
    )


def _start(
    incident: Incident, steps, *, started_at: datetime, actor, source, why, fresh=False
) -> list[ChecklistStep]:
    """Copy the playbook `steps` the incident lacks (all of them, for a `fresh` incident,
    which has no checklist yet); one timeline event per playbook started."""
    steps = list(steps)
    if not steps:
        return []
    if not fresh:
        have = set(
            ChecklistStep.objects.filter(
                incident=incident, playbook_step__in=[step.pk for step in steps]
            ).values_list("playbook_step_id", flat=True)
        )
        steps = [step for step in steps if step.pk not in have]
    user = acting_user(actor)
    copies = []
    for step in steps:
        copy = ChecklistStep(
            incident=incident,
            playbook=step.playbook,
            playbook_step=step,
            playbook_name=step.playbook.name,
            phase=step.phase,
            position=step.position,
            title=step.title,
            guidance=step.guidance,
            runbook_url=step.runbook_url,
            required=step.required,
            due_within=step.due_within,
            started_at=started_at,
            due_at=due_at(started_at, step.due_within),
        )
        if user is not None:
            copy._history_user = user
        copies.append(copy)
    if not copies:
        return []
    created = bulk_create_with_history(copies, ChecklistStep)
    by_playbook: dict[Playbook, list[ChecklistStep]] = {}
    for copy in copies:
        by_playbook.setdefault(copy.playbook, []).append(copy)
    for playbook, started in by_playbook.items():
        required = sum(step.required for step in started)
        timeline_record(
            incident,
            kind=CHECKLIST,
            summary=f"Playbook {playbook.name} started {why}: {len(started)} steps, "
            f"{required} required.",
            actor=actor,
            source=source,
            occurred_at=started_at,
            details={"playbook": playbook.slug, "steps": len(started), "required": required},
        )
    return created


def start_on_declaration(event: extensions.Declared) -> None:
    """A declared incident gets the checklists of every playbook matching it."""
    incident = event.incident
    started_at = incident.declared_at or timezone.now()
    # A new incident, or a triage candidate just accepted, has no checklist yet.
    _start(
        incident,
        matching_steps(incident, incident.severity),
        started_at=started_at,
        actor=event.actor,
        source=event.source,
        why="on declaration",
        fresh=True,
    )


def start_on_severity_change(event: extensions.SeverityChanged) -> None:
    """Re-rated into a severity a playbook starts at: that playbook's steps are added,
    their time-boxes counted from now. Rated down, the checklist stays as it is."""
    incident = event.incident
    if event.to_severity.rank >= event.from_severity.rank or incident.status in NOT_WORKED:
        return
    # Only the playbooks this severity brings in: those of the old one already ran.
    steps = matching_steps(incident, event.to_severity).filter(
        playbook__min_severity__rank__lt=event.from_severity.rank
    )
    _start(
        incident,
        steps,
        started_at=timezone.now(),
        actor=event.actor,
        source=event.source,
        why=f"on re-rating to {event.to_severity.key}",
    )


@transaction.atomic
def checklist_apply_playbook(
    *, incident: Incident, playbook: Playbook, actor, source: str
) -> list[ChecklistStep]:
    """Apply `playbook` to the incident by hand (one its type or severity did not start):
    the steps it lacks are added, their time-boxes counted from now."""
    incident = lock_incident(incident)
    _check_open(incident)
    if not playbook.is_active:
        raise DomainError(f"The playbook {playbook.name} is not active.", field="playbook")
    steps = _start(
        incident,
        playbook.steps.select_related("playbook"),
        started_at=timezone.now(),
        actor=actor,
        source=source,
        why="by hand",
    )
    if not steps:
        raise StateConflict(
            f"{incident.reference} already has every step of {playbook.name}.", field="playbook"
        )
    return steps


# --- working the checklist ------------------------------------------------------------


def _check_open(incident: Incident) -> None:
    if incident.status in NOT_WORKED:
        raise StateConflict(
            f"{incident.reference} is {incident.get_status_display().lower()}: its "
            "checklist is no longer worked.",
            field="status",
        )


def _lock_step(step: ChecklistStep) -> tuple[Incident, ChecklistStep]:
    # The incident first, as every incident service locks it: a close and a reopen of a
    # required step cannot interleave (the close guard reads the steps under this lock).
    incident = lock_incident(step.incident)
    step = ChecklistStep.objects.select_for_update().get(pk=step.pk)
    step.incident = incident
    return incident, step


def _check_pending(step: ChecklistStep) -> None:
    if step.status != ChecklistStep.Status.PENDING:
        who = step.completed_by.get_username() if step.completed_by else "someone"
        raise StateConflict(
            f"“{step.title}” was already {step.get_status_display().lower()} by {who} at "
            f"{step.completed_at:%Y-%m-%d %H:%M} UTC.",
            field="status",
        )


def _resolve(step: ChecklistStep, status: str, *, note: str, at: datetime, actor) -> None:
    step.status = status
    step.note = note
    step.completed_at = at
    step.completed_by = acting_user(actor)
    save_as(step, actor)


@transaction.atomic
def checklist_step_complete(
    *, step: ChecklistStep, actor, source: str, note: str = "", done_at: datetime | None = None
) -> ChecklistStep:
    """Tick the step: who, when (now, or a time it was done earlier) and an optional note."""
    incident, step = _lock_step(step)
    _check_open(incident)
    _check_pending(step)
    note = clean_text(note, field="note", limit=NOTE_TEXT)
    now = timezone.now()
    at = when_happened(done_at, now, field="done_at", not_before=incident.declared_at)
    _resolve(step, ChecklistStep.Status.DONE, note=note, at=at, actor=actor)
    late = " (after its time-box)" if step.was_late() else ""
    summary = f"Checklist: “{step.title}” done{late}."
    if note:
        summary += f" {note}"
    timeline_record(
        incident,
        kind=CHECKLIST,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=at,
        details={"step": step.pk, "status": step.status, "late": bool(late)},
    )
    return step


@transaction.atomic
def checklist_step_skip(*, step: ChecklistStep, reason: str, actor, source: str) -> ChecklistStep:
    """Skip the step, saying why (it does not apply, someone else covers it)."""
    incident, step = _lock_step(step)
    _check_open(incident)
    _check_pending(step)
    reason = clean_text(
        reason, field="reason", limit=NOTE_TEXT, required="Say why the step is skipped."
    )
    _resolve(step, ChecklistStep.Status.SKIPPED, note=reason, at=timezone.now(), actor=actor)
    timeline_record(
        incident,
        kind=CHECKLIST,
        summary=f"Checklist: “{step.title}” skipped: {reason}",
        actor=actor,
        source=source,
        occurred_at=step.completed_at,
        details={"step": step.pk, "status": step.status},
    )
    return step


@transaction.atomic
def checklist_step_reopen(
    *, step: ChecklistStep, actor, source: str, reason: str = ""
) -> ChecklistStep:
    """Put a ticked or skipped step back on the list (ticked by mistake, undone since)."""
    incident, step = _lock_step(step)
    _check_open(incident)
    if step.status == ChecklistStep.Status.PENDING:
        raise StateConflict(f"“{step.title}” is still to do.", field="status")
    reason = clean_text(reason, field="reason", limit=NOTE_TEXT)
    was = step.get_status_display().lower()
    step.status = ChecklistStep.Status.PENDING
    step.completed_at = None
    step.completed_by = None
    step.note = ""
    save_as(step, actor)
    summary = f"Checklist: “{step.title}” reopened (was {was})."
    if reason:
        summary += f" {reason}"
    timeline_record(
        incident,
        kind=CHECKLIST,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=timezone.now(),
        details={"step": step.pk, "status": step.status},
    )
    return step


@transaction.atomic
def checklist_step_add(
    *,
    incident: Incident,
    title: str,
    phase: str,
    actor,
    source: str,
    required: bool = False,
    due_within: int | None = None,
    guidance: str = "",
    runbook_url: str = "",
) -> ChecklistStep:
    """Add a step of the commander's own to the incident's checklist."""
    incident = lock_incident(incident)
    _check_open(incident)
    title = clean_text(title, field="title", limit=TITLE_TEXT, required="A step needs a title.")
    guidance = clean_text(guidance, field="guidance", limit=GUIDANCE_TEXT)
    if phase not in Phase.values:
        raise DomainError(
            f"Unknown phase {phase!r} (one of: {', '.join(Phase.values)}).", field="phase"
        )
    if due_within is not None and not 1 <= due_within <= MAX_DUE_MINUTES:
        raise DomainError(
            f"A time-box is 1 to {MAX_DUE_MINUTES} minutes.", field="due_within_minutes"
        )
    now = timezone.now()
    last = (
        ChecklistStep.objects.filter(incident=incident, phase=phase)
        .order_by("-position")
        .values_list("position", flat=True)
        .first()
    )
    step = ChecklistStep(
        incident=incident,
        phase=phase,
        position=(last or 0) + 1,
        title=title,
        guidance=guidance,
        runbook_url=runbook_url,
        required=required,
        due_within=due_within,
        started_at=now,
        due_at=due_at(now, due_within),
    )
    save_as(step, actor)
    timeline_record(
        incident,
        kind=CHECKLIST,
        summary=f"Checklist: “{title}” added to {Phase(phase).label}.",
        actor=actor,
        source=source,
        occurred_at=now,
        details={"step": step.pk, "status": step.status},
    )
    return step


# --- the close guard and the review ---------------------------------------------------


def require_steps_before_close(request: extensions.CloseRequest) -> None:
    """Refuse to close an incident whose severity wants its required steps ticked or
    skipped first, naming the ones still open."""
    incident = request.incident
    demanded = CloseRequirement.objects.filter(
        severity_id=incident.severity_id, steps_before_close=True
    ).exists()
    if not demanded:
        return
    # A checklist is tens of steps: read them all, and name them in the phases' order.
    open_steps = sorted(
        unresolved_required(incident).values_list("phase", "position", "title"),
        key=lambda row: (PHASE_ORDER[row[0]], row[1]),
    )
    if not open_steps:
        return
    total = len(open_steps)
    named = "; ".join(f"“{title}”" for _, _, title in open_steps[:5])
    more = f" and {total - 5} more" if total > 5 else ""
    raise StateConflict(
        f"{incident.reference} is {incident.severity.key}: tick or skip its required "
        f"checklist steps before closing ({total} open: {named}{more}).",
        field="status",
    )


def review_gaps(drafting: extensions.ReviewDrafting) -> None:
    """A review's draft lists the steps skipped and those done late or never done."""
    steps = sorted(
        ChecklistStep.objects.filter(incident=drafting.incident).filter(
            Q(status=ChecklistStep.Status.SKIPPED) | Q(due_at__isnull=False)
        ),
        key=lambda step: (PHASE_ORDER[step.phase], step.position, step.pk),
    )
    gaps = []
    skipped = [step for step in steps if step.status == ChecklistStep.Status.SKIPPED]
    late = [step for step in steps if step.was_late()]
    # Still to do with its time-box run out (a week-long review step may not be due yet).
    now = timezone.now()
    missed = [step for step in steps if step.is_overdue(now)]
    for step in skipped:
        gaps.append(f"- Checklist step skipped: “{step.title}” — {step.note}")
    for step in late:
        over = step.completed_at - step.due_at
        gaps.append(
            f"- Checklist step done late: “{step.title}”, {short_duration(over)} after its "
            f"{_box(step)} time-box."
        )
    for step in missed:
        gaps.append(f"- Checklist step not done within its {_box(step)} time-box: “{step.title}”.")
    total = ChecklistStep.objects.filter(incident=drafting.incident).count()
    drafting.facts["checklist"] = {
        "steps": total,
        "skipped": [step.title for step in skipped],
        "late": [step.title for step in late],
        "not_done": [step.title for step in missed],
    }
    drafting.gaps.extend(gaps)


def _box(step: ChecklistStep) -> str:
    return short_duration(timedelta(minutes=step.due_within))
