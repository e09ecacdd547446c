"""What Sitrep already knows about an incident, written into its review so nobody retypes
it: the facts (severity, services, times, roles) and first drafts of the factual sections."""

from datetime import datetime

from incidents import extensions, metrics
from incidents.formatting import short_duration
from incidents.models import Incident, TimelineEvent

from .vocabulary import Kind

# Events that usually mark the story's turning points; the writer can change the marks.
KEY_KINDS = frozenset(
    {
        TimelineEvent.Kind.DECLARED,
        TimelineEvent.Kind.STATUS_CHANGE,
        TimelineEvent.Kind.SEVERITY_CHANGE,
        TimelineEvent.Kind.DECISION,
    }
)
# The review's own steps are on the incident timeline too, but they are not the incident.
SKIPPED_KINDS = frozenset({Kind.REVIEW})

TIME_FIELDS = tuple(field for field, _ in metrics.RESPONSE_MILESTONES)


def incident_facts(incident: Incident) -> dict:
    """Return the incident's facts as JSON-ready data, with what the other apps add
    (extensions.review_drafting): a key each, and `gaps`, their lines for the detection
    and response gaps."""
    facts = _core_facts(incident)
    drafting = extensions.ReviewDrafting(incident=incident, facts={}, gaps=[])
    extensions.review_drafting.run(drafting)
    return {**drafting.facts, **facts, "gaps": drafting.gaps}


def _core_facts(incident: Incident) -> dict:
    times = metrics.milestone_times(incident, TIME_FIELDS)
    return {
        "reference": incident.reference,
        "title": incident.title,
        "severity": incident.severity.key,
        "severity_label": incident.severity.label,
        "type": incident.incident_type.name,
        "environment": incident.get_environment_display(),
        "services": [service.name for service in incident.services.all()],
        "confidential": incident.confidential,
        "detection_source": incident.get_detection_source_display(),
        "customer_impact": incident.customer_impact,
        "estimated_users_affected": incident.estimated_users_affected,
        "acknowledge_within": int(incident.severity.acknowledge_within.total_seconds()),
        "times": {name: value.isoformat() if value else None for name, value in times.items()},
        # In whole seconds (JSON has no durations); which milestones: metrics.RESPONSE_TIMES.
        "durations": {
            key: None if length is None else int(length.total_seconds())
            for key, length in metrics.response_times(times).items()
        },
        "roles": [
            {
                "role": assignment.role,
                "role_label": assignment.get_role_display(),
                "user": assignment.user.get_username(),
                "name": assignment.user.get_full_name() or assignment.user.get_username(),
                "assigned_at": assignment.assigned_at.isoformat(),
                "relieved_at": assignment.relieved_at.isoformat()
                if assignment.relieved_at
                else None,
            }
            for assignment in incident.roles.select_related("user")
        ],
    }


def _when(facts: dict, name: str) -> str:
    value = facts["times"].get(name)
    return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M} UTC" if value else "not recorded"


def draft_sections(facts: dict, summary: str) -> dict[str, str]:
    """Return first drafts of the sections the facts can write: executive summary,
    impact, and detection and response gaps. The rest is for people."""
    services = ", ".join(facts["services"]) or "no listed service"
    durations = facts["durations"]
    lasted = short_duration(durations["resolve"] or durations["mitigate"])
    executive = (
        f"{facts['title']}: a {facts['severity']} ({facts['severity_label'].lower()}) "
        f"{facts['type'].lower()} in {facts['environment'].lower()} affecting {services}. "
        f"Impact began {_when(facts, 'started_at')} and lasted {lasted}."
    )
    if summary.strip():
        executive = f"{executive}\n\n{summary.strip()}"

    impact = [f"- Services: {services}", f"- Duration of impact: {lasted}"]
    if facts["estimated_users_affected"] is not None:
        impact.append(f"- Estimated users affected: {facts['estimated_users_affected']:,}")
    if facts["customer_impact"].strip():
        impact.append(f"\n{facts['customer_impact'].strip()}")

    ack_target = short_duration(facts["acknowledge_within"])
    acknowledged = durations["acknowledge"]
    if acknowledged is None:
        ack_line = "- Acknowledged: not recorded."
    else:
        verdict = "within" if acknowledged <= facts["acknowledge_within"] else "outside"
        ack_line = (
            f"- Acknowledged {short_duration(acknowledged)} after it was declared, {verdict} "
            f"the {facts['severity']} response time of {ack_target}."
        )
    gaps = [
        f"- Detected by {facts['detection_source'].lower()} "
        f"{short_duration(durations['detect'])} after the impact began.",
        ack_line,
        f"- Mitigated {short_duration(durations['mitigate'])} and resolved "
        f"{short_duration(durations['resolve'])} after the impact began.",
        *facts.get("gaps", ()),
    ]
    return {
        "executive_summary": executive,
        "impact": "\n".join(impact),
        "detection_gaps": "\n".join(gaps),
    }
