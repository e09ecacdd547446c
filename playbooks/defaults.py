"""The reference documents' response checklists as the default playbooks, loaded by a
migration (and by tests after a flush). Time-boxes follow the reference's phase windows:
an outage's first actions in 15 minutes and its investigation within the hour; a
security incident's isolation and preservation in 30 minutes, assessment within 2 hours
and containment within 24; a first communication within 30 minutes; the review within
a week. Commanders edit them in the admin; running incidents keep their copies."""

HOUR = 60
DAY = 24 * HOUR

# slug, name, incident type slug, from severity, description,
# steps: (phase, title, required, due within minutes or None, guidance)
PLAYBOOKS = [
    (
        "outage",
        "Service outage",
        "outage",
        "SEV4",
        "Restore a service that is down or failing for its users.",
        [
            (
                "detection",
                "Confirm the scope and the user impact",
                True,
                15,
                "Which services, regions and customers are affected, and since when.",
            ),
            ("detection", "Confirm the severity against the severity table", True, 15, ""),
            ("detection", "Staff the response: commander, technical lead, scribe", True, 15, ""),
            ("detection", "Open the incident channel and bridge", False, 15, ""),
            (
                "investigation",
                "Gather metrics and logs from the failing components",
                True,
                HOUR,
                "",
            ),
            ("investigation", "State a root-cause hypothesis on the timeline", True, HOUR, ""),
            ("investigation", "Pull in the owning teams the hypothesis points to", False, HOUR, ""),
            (
                "containment",
                "Apply the fix or mitigation (roll back, fail over, scale)",
                True,
                None,
                "Prefer the reversible action: roll back before rolling forward.",
            ),
            ("containment", "Verify the service works for users again", True, None, ""),
            ("containment", "Watch for secondary failures while traffic returns", False, None, ""),
            (
                "communication",
                "Post the first status update",
                True,
                30,
                "What is affected, what we are doing, when the next update comes.",
            ),
            ("communication", "Update the status page at the severity's cadence", True, None, ""),
            ("communication", "Announce the resolution to everyone who was told", True, None, ""),
            ("post_incident", "Schedule the post-incident review", True, 7 * DAY, ""),
            ("post_incident", "Record the follow-up work as action items", True, 7 * DAY, ""),
        ],
    ),
    (
        "security-breach",
        "Security breach",
        "security",
        "SEV4",
        "Contain an intrusion or compromise while keeping the evidence intact.",
        [
            (
                "detection",
                "Isolate the affected systems",
                True,
                30,
                "Cut network access rather than power off: memory is evidence.",
            ),
            (
                "detection",
                "Preserve logs and evidence before changing anything",
                True,
                30,
                "Copy logs, snapshots and captures to the evidence locker; note their hashes.",
            ),
            ("detection", "Tell the security team and management", True, 30, ""),
            ("detection", "Start forensic collection", True, 30, ""),
            ("investigation", "Assess the scope of the compromise", True, 2 * HOUR, ""),
            ("investigation", "Identify the attack vector", True, 2 * HOUR, ""),
            (
                "investigation",
                "Evaluate which data was exposed",
                True,
                2 * HOUR,
                "Personal data exposed starts the regulator notification clock.",
            ),
            (
                "investigation",
                "Decide the legal and regulatory implications with counsel",
                True,
                2 * HOUR,
                "",
            ),
            (
                "containment",
                "Put security controls in place (revoke, rotate, block)",
                True,
                DAY,
                "",
            ),
            ("containment", "Remove the attacker's foothold", True, DAY, ""),
            ("containment", "Restore systems from known-clean backups", True, DAY, ""),
            ("containment", "Patch the exploited weakness", True, DAY, ""),
            ("containment", "Strengthen monitoring and detection for a return", False, DAY, ""),
            ("communication", "Brief stakeholders on a need-to-know basis", True, 2 * HOUR, ""),
            ("communication", "Coordinate with external parties if needed", False, None, ""),
            ("post_incident", "Write the post-incident review", True, 7 * DAY, ""),
        ],
    ),
    (
        "data-breach",
        "Personal data breach",
        "data",
        "SEV4",
        "Contain a leak of data and meet the notification duties it brings.",
        [
            ("detection", "Contain the leak: isolate the affected systems", True, 30, ""),
            ("detection", "Preserve logs and data as evidence", True, 30, ""),
            ("detection", "Tell legal counsel now", True, 30, ""),
            (
                "investigation",
                "Classify the data affected (personal, health, payment)",
                True,
                2 * HOUR,
                "",
            ),
            ("investigation", "Count the people and records affected", True, 4 * HOUR, ""),
            ("investigation", "Record every access to the affected data", False, 4 * HOUR, ""),
            ("containment", "Close the path the data left by", True, DAY, ""),
            ("containment", "Confirm data at rest and in transit is encrypted", False, DAY, ""),
            (
                "communication",
                "Notify the regulator within 72 hours of detection",
                True,
                72 * HOUR,
                "Record the notification's time and reference on the breach clock.",
            ),
            (
                "communication",
                "Notify the people affected within the required time",
                True,
                None,
                "",
            ),
            ("post_incident", "Write the post-incident review", True, 7 * DAY, ""),
            ("post_incident", "Track the remediation to done", True, 7 * DAY, ""),
        ],
    ),
    (
        "performance",
        "Performance degradation",
        "performance",
        "SEV4",
        "Bring response times back within their objectives.",
        [
            ("detection", "Confirm the degradation against the baseline", True, 15, ""),
            ("detection", "Find which endpoints and users are slow", True, 15, ""),
            ("investigation", "Check recent deploys and configuration changes", True, HOUR, ""),
            (
                "investigation",
                "Profile the slow path (database, cache, dependencies)",
                True,
                4 * HOUR,
                "",
            ),
            (
                "containment",
                "Scale out or shed load (rate limits, circuit breakers)",
                True,
                HOUR,
                "",
            ),
            ("containment", "Serve cached responses for critical endpoints", False, None, ""),
            ("containment", "Load-test the fix before the full rollout", False, None, ""),
            ("communication", "Post the first status update", True, 30, ""),
            ("post_incident", "Write the post-incident review", False, 7 * DAY, ""),
        ],
    ),
]

# Severities whose incidents close only once every required step is ticked or skipped.
CLOSE_REQUIREMENTS = {"SEV1": True, "SEV2": True, "SEV3": False, "SEV4": False}


def load_defaults(apps) -> None:
    """Add the default playbooks and close requirements that are missing (never changes
    one a commander edited)."""
    Severity = apps.get_model("incidents", "Severity")
    IncidentType = apps.get_model("incidents", "IncidentType")
    Playbook = apps.get_model("playbooks", "Playbook")
    PlaybookStep = apps.get_model("playbooks", "PlaybookStep")
    CloseRequirement = apps.get_model("playbooks", "CloseRequirement")
    severities = {severity.key: severity for severity in Severity.objects.all()}
    types = {kind.slug: kind for kind in IncidentType.objects.all()}
    for slug, name, type_slug, severity_key, description, steps in PLAYBOOKS:
        if type_slug not in types or severity_key not in severities:
            continue
        if Playbook.objects.filter(slug=slug).exists():
            continue
        playbook = Playbook.objects.create(
            slug=slug,
            name=name,
            incident_type=types[type_slug],
            min_severity=severities[severity_key],
            description=description,
        )
        positions: dict[str, int] = {}
        rows = []
        for phase, title, required, due_within, guidance in steps:
            positions[phase] = positions.get(phase, 0) + 1
            rows.append(
                PlaybookStep(
                    playbook=playbook,
                    phase=phase,
                    position=positions[phase],
                    title=title,
                    required=required,
                    due_within=due_within,
                    guidance=guidance,
                )
            )
        PlaybookStep.objects.bulk_create(rows)
    for key, required in CLOSE_REQUIREMENTS.items():
        if key in severities:
            CloseRequirement.objects.get_or_create(
                severity=severities[key], defaults={"steps_before_close": required}
            )
