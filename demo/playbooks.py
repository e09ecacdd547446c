"""Demo checklists: the playbooks start by themselves when the demo declares; this works
them as a response would — a closed incident's required steps all ticked or skipped
(a few after their time-box, so reviews show gaps), an open one part-way through."""

from datetime import datetime, timedelta

from incidents.models import Source
from playbooks import services
from playbooks.models import ChecklistStep

SKIP_REASONS = [
    "Not needed: two responders in one room.",
    "The vendor's status page already covered it.",
    "Covered by the rollback.",
]


def work_checklist(incident, actor, rng, *, until: datetime, all_required: bool) -> None:
    """Tick (or skip) the incident's steps between its declaration and `until`: every
    required one when `all_required` (it is about to close), else the early phases.
    A triage candidate has no checklist yet."""
    if incident.declared_at is None:
        return
    steps = ChecklistStep.objects.filter(incident=incident, status="pending").order_by(
        "due_at", "pk"
    )
    span = max((until - incident.declared_at).total_seconds(), 60)
    for step in steps:
        if not all_required and step.phase not in ("detection", "communication"):
            continue
        if not step.required and rng.random() < 0.5:
            services.checklist_step_skip(
                step=step, reason=rng.choice(SKIP_REASONS), actor=actor, source=Source.ADMIN
            )
            continue
        # Mostly within the time-box; one in six late.
        box = (step.due_within or 60) * 60
        seconds = box * (rng.uniform(1.05, 1.6) if rng.random() < 1 / 6 else rng.uniform(0.2, 0.9))
        done_at = incident.declared_at + timedelta(seconds=min(seconds, span))
        services.checklist_step_complete(
            step=step, done_at=min(done_at, until), actor=actor, source=Source.ADMIN
        )
