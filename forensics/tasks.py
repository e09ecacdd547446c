"""django-q2 task functions: thin, they call the watchdog and the verification."""

from incidents.models import Source

from . import deadlines, services


def warn_breach_deadlines() -> int:
    return deadlines.warn_breach_deadlines()


def verify_evidence() -> int:
    """Verify the whole locker; return how many items are not intact."""
    findings = services.evidence_verify(items=services.stored_items(), source=Source.SYSTEM)
    return sum(not finding.is_ok for finding in findings)
