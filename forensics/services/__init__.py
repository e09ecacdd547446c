"""Every write of the forensics app, one module per concern: evidence and its custody,
the locker's verification, the breach notification clock. Import from here."""

from .breach import (
    ASSESSMENT_FIELDS,
    breach_assess,
    breach_record_regulator_notified,
    breach_record_subjects_notified,
    clock_origin,
    deadline_hours,
    is_breach_type,
    notification_timing,
    since_start,
    start_clock_on_confidential,
    start_clock_on_declared,
    utc,
)
from .evidence import (
    EvidenceTooLarge,
    EvidenceUnavailable,
    address_of,
    evidence_export,
    evidence_open,
    evidence_record_view,
    evidence_register,
    evidence_upload,
)
from .integrity import Finding, evidence_verify, stored_items

__all__ = [
    "ASSESSMENT_FIELDS",
    "EvidenceTooLarge",
    "EvidenceUnavailable",
    "Finding",
    "address_of",
    "breach_assess",
    "breach_record_regulator_notified",
    "breach_record_subjects_notified",
    "clock_origin",
    "deadline_hours",
    "evidence_export",
    "evidence_open",
    "evidence_record_view",
    "evidence_register",
    "evidence_upload",
    "evidence_verify",
    "is_breach_type",
    "notification_timing",
    "since_start",
    "start_clock_on_confidential",
    "start_clock_on_declared",
    "stored_items",
    "utc",
]
