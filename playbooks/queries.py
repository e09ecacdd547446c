"""Reads of the checklists: progress per phase, overdue steps, the list's counts, and who
may see which steps (those of the incidents they may see)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from incidents.models import Incident
from incidents.queries import incident_list_visible_to

from .models import PHASE_ORDER, WORKED_STATUSES, ChecklistStep, Phase

PENDING = ChecklistStep.Status.PENDING
DONE = ChecklistStep.Status.DONE
SKIPPED = ChecklistStep.Status.SKIPPED


def checklist_step_list_visible_to(user, queryset: QuerySet | None = None) -> QuerySet:
    """Return the checklist steps of the incidents `user` may see."""
    queryset = ChecklistStep.objects.all() if queryset is None else queryset
    return queryset.filter(incident__in=incident_list_visible_to(user).values("pk"))


def unresolved_required(incident: Incident) -> QuerySet:
    """The incident's required steps neither ticked nor skipped, in checklist order."""
    return ChecklistStep.objects.filter(incident=incident, required=True, status=PENDING)


def overdue(queryset: QuerySet, now: datetime) -> QuerySet:
    """Pending time-boxed steps past their time (the partial index checklist_pending_due)."""
    return queryset.filter(status=PENDING, due_at__isnull=False, due_at__lt=now)


@dataclass
class PhaseProgress:
    phase: str
    label: str
    steps: list[ChecklistStep] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def done(self) -> int:
        return sum(step.status == DONE for step in self.steps)

    @property
    def skipped(self) -> int:
        return sum(step.status == SKIPPED for step in self.steps)

    @property
    def resolved(self) -> int:
        return self.done + self.skipped

    @property
    def percent(self) -> int:
        return round(100 * self.resolved / self.total) if self.total else 0


@dataclass
class Checklist:
    """An incident's checklist, grouped by phase in the reference's order."""

    phases: list[PhaseProgress]
    overdue: list[ChecklistStep]

    @property
    def steps(self) -> list[ChecklistStep]:
        return [step for phase in self.phases for step in phase.steps]

    @property
    def total(self) -> int:
        return sum(phase.total for phase in self.phases)

    @property
    def resolved(self) -> int:
        return sum(phase.resolved for phase in self.phases)

    @property
    def required_open(self) -> int:
        return sum(step.required and step.status == PENDING for step in self.steps)


def checklist_for(incident: Incident, now: datetime) -> Checklist:
    """Return the incident's checklist (one query), phases in order, empty ones left out."""
    steps = ChecklistStep.objects.filter(incident=incident).select_related(
        "playbook", "completed_by"
    )
    by_phase = {phase: PhaseProgress(phase, label) for phase, label in Phase.choices}
    ordered = sorted(
        steps, key=lambda step: (PHASE_ORDER.get(step.phase, 99), step.position, step.pk)
    )
    for step in ordered:
        by_phase[step.phase].steps.append(step)
    return Checklist(
        phases=[phase for phase in by_phase.values() if phase.steps],
        overdue=[step for step in ordered if step.is_overdue(now)],
    )


def _count(**conditions) -> Coalesce:
    steps = (
        ChecklistStep.objects.filter(incident=OuterRef("pk"), **conditions)
        .order_by()
        .values("incident")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(steps, output_field=IntegerField()), 0)


def with_checklist_counts(queryset: QuerySet, now: datetime) -> QuerySet:
    """Annotate incidents with their steps: all, resolved (ticked or skipped) and overdue
    (subqueries on the checklist_incident_status index, computed for the page's rows)."""
    return queryset.annotate(
        checklist_total=_count(),
        checklist_resolved=_count(status__in=[DONE, SKIPPED]),
        checklist_overdue=_count(status=PENDING, due_at__lt=now),
    )


def overdue_steps_visible_to(user, now: datetime, limit: int) -> list[ChecklistStep]:
    """The soonest-overdue steps of open incidents `user` may see (the dashboard)."""
    steps = overdue(checklist_step_list_visible_to(user), now).filter(
        incident__status__in=WORKED_STATUSES
    )
    return list(steps.select_related("incident").order_by("due_at", "pk")[:limit])
