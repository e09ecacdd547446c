"""Demo forensics: the breach assessments of the security and data incidents of the past
quarter settled (notified in time, once late, or not needed), and a live security
incident whose regulator deadline is ticking, with evidence in the locker (a log file)
and held elsewhere (a packet capture in a bucket)."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from forensics import services
from forensics.models import BreachAssessment, EvidenceItem
from incidents import notifications
from incidents import services as incidents
from incidents.models import OPEN_STATUSES, IncidentType, Role, Severity, Source

AUTH_LOG = b"""\
Dec  3 02:14:07 bastion-1 sshd[4121]: Accepted publickey for svc-export from 198.51.100.23
Dec  3 02:14:09 bastion-1 sudo: svc-export : TTY=pts/0 ; COMMAND=/usr/bin/psql -c \\copy customers
Dec  3 02:16:51 bastion-1 sshd[4121]: Received disconnect from 198.51.100.23: disconnected by user
"""


def _settle_history(people) -> int:
    """Give each finished incident's clock the outcome a quarter of practice would."""
    settled = 0
    finished = (
        BreachAssessment.objects.exclude(incident__status__in=OPEN_STATUSES)
        .filter(assessed_at__isnull=True, regulator_notified_at__isnull=True)
        .select_related("incident__incident_type")
        .order_by("pk")
    )
    for number, assessment in enumerate(finished):
        incident, start = assessment.incident, assessment.clock_started_at
        # A security incident found to be a false alarm (cancelled) breached nothing.
        security = incident.incident_type.slug == "security" and incident.status != "cancelled"
        actor = people["carol"] if security else people["alice"]
        write = {"incident": incident, "actor": actor, "source": Source.ADMIN}
        services.breach_assess(
            **write,
            personal_data_affected=security,
            regulator_notification_required=security,
            assessment_notes="Customer contact details were exposed."
            if security
            else "No personal data involved.",
            occurred_at=start + timedelta(hours=3),
        )
        if security:
            # One of them late, as happens: the review says by how much.
            hours = 80 if number == 0 else 30
            at = min(start + timedelta(hours=hours), timezone.now() - timedelta(minutes=5))
            services.breach_record_regulator_notified(
                **write, notified_at=at, reference=f"DPA-{start:%Y}-{1000 + number}"
            )
        settled += 1
    return settled


def _live_incident(people):
    """A security incident detected 30 hours ago: its deadline is 42 hours away."""
    now = timezone.now()
    incident = incidents.incident_declare(
        title="Customer records exported through a stolen admin session",
        severity=Severity.objects.get(key="SEV2"),
        incident_type=IncidentType.objects.get(slug="security"),
        summary="An admin session token was used from an unknown address to export the "
        "customer table.",
        started_at=now - timedelta(hours=31),
        detected_at=now - timedelta(hours=30),
        declared_at=now - timedelta(hours=29),
        commander=people["alice"],
        actor=people["alice"],
        source=Source.ADMIN,
    )
    incidents.incident_acknowledge(
        incident=incident,
        actor=people["alice"],
        occurred_at=now - timedelta(hours=29) + timedelta(minutes=4),
        source=Source.ADMIN,
    )
    incidents.role_assign(
        incident=incident,
        role=Role.SECURITY_LEAD,
        user=people["carol"],
        actor=people["alice"],
        occurred_at=now - timedelta(hours=29) + timedelta(minutes=5),
        source=Source.ADMIN,
    )
    return incident


def seed_forensics(stdout) -> None:
    if EvidenceItem.objects.exists():
        return
    people = {user.username: user for user in get_user_model().objects.all()}
    if not {"alice", "carol"} <= set(people):
        return
    settled = _settle_history(people)
    # Quietly: the demo's stakeholders are not told of a made-up breach.
    with notifications.muted():
        incident = _live_incident(people)
    carol, now = people["carol"], timezone.now()
    services.evidence_upload(
        incident=incident,
        kind="system_logs",
        file=ContentFile(AUTH_LOG, name="bastion-1-auth.log"),
        description="/var/log/auth.log of bastion-1 around the export, copied read-only.",
        collected_by=carol,
        collected_at=now - timedelta(hours=28),
        actor=carol,
        source=Source.ADMIN,
    )
    services.evidence_register(
        incident=incident,
        kind="network_capture",
        external_location="s3://evidence-vault/edge-fw-1/2026-12-03T0200Z.pcapng (object lock)",
        description="Edge firewall capture, 02:00-03:00 UTC, 3.1 GB.",
        sha256="9f2c1a7b3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b",
        size=3_328_599_654,
        collected_by=carol,
        collected_at=now - timedelta(hours=27),
        actor=carol,
        source=Source.ADMIN,
    )
    services.breach_assess(
        incident=incident,
        personal_data_affected=True,
        regulator_notification_required=True,
        assessment_notes="Names and email addresses of about 1,240 customers; no payment data.",
        occurred_at=now - timedelta(hours=26),
        actor=carol,
        source=Source.ADMIN,
    )
    stdout.write(
        f"Forensics: {settled} past breach assessments settled; {incident.reference} has "
        "evidence and a regulator deadline 42 hours away."
    )
