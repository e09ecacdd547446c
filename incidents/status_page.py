"""What the public status page shows: only production, declared, non-confidential
incidents and their public updates — one query helper for the page, JSON and feed."""

from datetime import timedelta

from django.db.models import Prefetch
from django.utils import timezone

from .models import OPEN_STATUSES, Audience, Incident, Service, Status, StatusUpdate

# Worst first; what a service shows while an open incident of that severity touches it.
CONDITIONS = ["major_outage", "partial_outage", "degraded_performance", "operational"]
CONDITION_LABELS = {
    "major_outage": "Major outage",
    "partial_outage": "Partial outage",
    "degraded_performance": "Degraded performance",
    "operational": "Operational",
}
HISTORY_DAYS = 14


def condition_for(severity) -> str:
    return CONDITIONS[min(severity.rank, 3) - 1]


def public_incidents():
    """Incidents customers may see, with their public updates prefetched."""
    updates = StatusUpdate.objects.filter(audience=Audience.PUBLIC).order_by("-number")
    return (
        Incident.objects.filter(confidential=False, environment="production")
        .exclude(status__in=[Status.TRIAGE, Status.CANCELLED])
        .select_related("severity")
        .prefetch_related(
            Prefetch("updates", queryset=updates, to_attr="public_updates"),
            Prefetch("services", queryset=Service.objects.filter(public=True)),
        )
    )


def status_overview(now=None) -> dict:
    now = now or timezone.now()
    incidents = public_incidents()
    open_incidents = list(incidents.filter(status__in=OPEN_STATUSES).order_by("severity__rank"))
    recent = list(
        incidents.filter(resolved_at__gte=now - timedelta(days=HISTORY_DAYS)).order_by(
            "-resolved_at"
        )
    )
    services = list(Service.objects.filter(public=True).order_by("name"))
    condition = {service.pk: "operational" for service in services}
    for incident in open_incidents:
        for service in incident.services.all():
            worse = condition_for(incident.severity)
            if CONDITIONS.index(worse) < CONDITIONS.index(condition[service.pk]):
                condition[service.pk] = worse
    overall = min(condition.values(), key=CONDITIONS.index, default="operational")
    return {
        "generated_at": now,
        "overall": overall,
        "overall_label": CONDITION_LABELS[overall],
        "services": [
            {
                "name": service.name,
                "slug": service.slug,
                "condition": condition[service.pk],
                "condition_label": CONDITION_LABELS[condition[service.pk]],
            }
            for service in services
        ],
        "open_incidents": open_incidents,
        "recent_incidents": recent,
    }


def incident_as_json(incident) -> dict:
    return {
        "reference": incident.reference,
        "title": incident.title,
        "status": incident.status,
        "impact": condition_for(incident.severity),
        "services": [service.slug for service in incident.services.all()],
        "declared_at": incident.declared_at,
        "resolved_at": incident.resolved_at,
        "updates": [
            {
                "number": update.number,
                "status": update.status,
                "summary": update.summary,
                "published_at": update.published_at,
                "next_update_at": update.next_update_at,
            }
            for update in incident.public_updates
        ],
    }
