"""What the forensics app tells a post-mortem being drafted (incidents.extensions
.review_drafting): the breach assessment and its deadline, the evidence register's
state, and the gaps they show (a late or missing notification, evidence that failed
verification)."""

from django.db.models import Count, Q
from django.utils import timezone

from incidents import extensions

from .models import BreachAssessment, EvidenceItem
from .services import deadline_hours, notification_timing, since_start, utc

Integrity = EvidenceItem.Integrity
BROKEN = (Integrity.MISMATCH, Integrity.MISSING)


def _iso(moment):
    return moment.isoformat() if moment else None


def breach_facts(assessment: BreachAssessment) -> dict:
    return {
        "personal_data_affected": assessment.personal_data_affected,
        "regulator_notification_required": assessment.regulator_notification_required,
        "assessment_notes": assessment.assessment_notes,
        "clock_started_at": _iso(assessment.clock_started_at),
        "deadline_hours": deadline_hours(assessment),
        "deadline_at": _iso(assessment.deadline_at),
        "regulator_notified_at": _iso(assessment.regulator_notified_at),
        "regulator_reference": assessment.regulator_reference,
        "data_subjects_notified_at": _iso(assessment.data_subjects_notified_at),
        "data_subjects_reference": assessment.data_subjects_reference,
        "warnings_sent": [
            stage
            for stage, field in (
                ("24h", "warned_24h_at"),
                ("6h", "warned_6h_at"),
                ("missed", "missed_at"),
            )
            if getattr(assessment, field)
        ],
    }


def breach_gaps(assessment: BreachAssessment, now=None) -> list[str]:
    """Return the review's lines on the breach notifications (Markdown list items)."""
    now = now or timezone.now()
    hours = deadline_hours(assessment)
    lines = []
    if assessment.personal_data_affected is None:
        lines.append(
            "- Breach assessment not recorded: whether personal data was affected is unknown."
        )
    notified = assessment.regulator_notified_at
    if notified is not None:
        lines.append(f"- Regulator notified {notification_timing(assessment, notified)}.")
    elif assessment.regulator_notification_required is False:
        lines.append("- Regulator notification assessed as not required.")
    elif assessment.deadline_at <= now:
        lines.append(
            f"- Regulator not notified: the {hours}-hour deadline passed at "
            f"{utc(assessment.deadline_at)}."
        )
    else:
        lines.append(
            f"- Regulator not notified yet: due by {utc(assessment.deadline_at)} "
            f"({hours} hours after the clock started)."
        )
    told = assessment.data_subjects_notified_at
    if told is not None:
        lines.append(f"- Data subjects notified {since_start(assessment, told)}.")
    elif assessment.personal_data_affected:
        lines.append("- Personal data was affected and the data subjects have not been notified.")
    return lines


def add_review_facts(drafting: extensions.ReviewDrafting) -> None:
    """Add the breach facts and the evidence register's state to a review's draft."""
    incident = drafting.incident
    counts = EvidenceItem.objects.filter(incident=incident).aggregate(
        items=Count("pk"), broken=Count("pk", filter=Q(integrity__in=BROKEN))
    )
    if counts["items"]:
        drafting.facts["evidence"] = counts
        for item in EvidenceItem.objects.filter(incident=incident, integrity__in=BROKEN):
            drafting.gaps.append(
                f"- Evidence #{item.pk} ({item.get_kind_display().lower()}) failed verification: "
                f"{item.get_integrity_display().lower()}."
            )
    assessment = (
        BreachAssessment.objects.filter(incident=incident).select_related("incident").first()
    )
    if assessment is not None:
        drafting.facts["breach"] = breach_facts(assessment)
        drafting.gaps.extend(breach_gaps(assessment))
