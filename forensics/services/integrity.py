"""Re-verifying the locker: every stored file hashed again and compared with the SHA-256
computed when it was uploaded. A change of an item's state (intact → mismatch or
missing, or back) goes on its incident's timeline and to the security group, once."""

import hashlib
from dataclasses import dataclass
from itertools import islice

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from incidents import notifications
from incidents.history import bulk_create_with_history, bulk_update_with_history
from incidents.services import acting_user, timeline_record_many

from ..models import CustodyRecord, EvidenceItem
from ..storage import evidence_storage
from ..vocabulary import Event, Kind
from .evidence import CHUNK_SIZE, _custody

Integrity = EvidenceItem.Integrity
# Items locked and written per transaction: the locks are held for one batch at a time.
BATCH = 200


@dataclass(frozen=True)
class Finding:
    """What one verification found about one stored item."""

    item: EvidenceItem
    state: str  # an Integrity value
    found_sha256: str  # what the stored file hashes to now ("" when it is missing)
    found_size: int | None
    previous: str  # the item's state before this check
    problem: str  # "" when intact, else what is wrong, said for people

    @property
    def is_ok(self) -> bool:
        return self.state == Integrity.OK

    @property
    def changed(self) -> bool:
        return self.state != self.previous


def hash_stored(name: str) -> tuple[str, int] | None:
    """Return (SHA-256, size) of a file in the locker, read in chunks; None if it cannot
    be read (gone, a folder, no permission)."""
    digest, size = hashlib.sha256(), 0
    try:
        with evidence_storage().open(name, "rb") as handle:
            for chunk in handle.chunks(CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return None
    return digest.hexdigest(), size


def _examine(item: EvidenceItem) -> tuple[str, str, int | None, str]:
    found = hash_stored(item.file.name)
    if found is None:
        return Integrity.MISSING, "", None, f"file {item.file.name} is missing from the locker"
    sha256, size = found
    if sha256 != item.sha256:
        return (
            Integrity.MISMATCH,
            sha256,
            size,
            f"file {item.file.name} hashes to {sha256} ({size:,} bytes), not {item.sha256} "
            f"({item.size:,} bytes) as uploaded",
        )
    return Integrity.OK, sha256, size, ""


def stored_items(reference: str | None = None) -> QuerySet:
    """Return the items whose files are in the locker (of one incident if named)."""
    items = EvidenceItem.objects.exclude(file="").select_related("incident").order_by("pk")
    return items.filter(incident__reference=reference) if reference else items


def evidence_verify(*, items: QuerySet, source: str, actor=None) -> list[Finding]:
    """Hash every stored file of `items` again; record on each item its state and when it
    was checked, a custody record of the check, and — for those whose state changed — a
    timeline event and one message to the security group. Return what was found."""
    findings: list[Finding] = []
    iterator = items.iterator(chunk_size=BATCH)
    while batch := list(islice(iterator, BATCH)):
        # Hashed before the transaction: reading gigabytes must not hold row locks.
        observed = {item.pk: _examine(item) for item in batch}
        findings += _record(observed, source=source, actor=actor)
    return findings


@transaction.atomic
def _record(observed: dict, *, source: str, actor) -> list[Finding]:
    now = timezone.now()
    # Locked and read again: of two verifications at once (the schedule and someone's
    # command), the second waits here and then sees the state the first wrote, so a
    # change is announced once.
    locked = list(
        EvidenceItem.objects.select_for_update(of=("self",))
        .select_related("incident")
        .filter(pk__in=observed)
        .order_by("pk")
    )
    findings, changed = [], []
    for item in locked:
        state, sha256, size, problem = observed[item.pk]
        finding = Finding(item, state, sha256, size, item.integrity, problem)
        findings.append(finding)
        item.last_verified_at = now
        if finding.changed:
            item.integrity = state
            changed.append(item)
    moved_pks = {item.pk for item in changed}
    unchanged = [item.pk for item in locked if item.pk not in moved_pks]
    # When an intact file was last checked is bookkeeping, like an API key's last use:
    # no history row for it (the custody record below is the record of the check).
    EvidenceItem.objects.filter(pk__in=unchanged).update(last_verified_at=now)
    user = acting_user(actor)
    if changed:
        bulk_update_with_history(
            changed, EvidenceItem, ["integrity", "last_verified_at"], default_user=user
        )
    bulk_create_with_history(
        [
            _custody(
                f.item,
                CustodyRecord.Action.VERIFIED
                if f.is_ok
                else CustodyRecord.Action.VERIFICATION_FAILED,
                actor=actor,
                source=source,
                address=None,
                detail="SHA-256 matches" if f.is_ok else f.problem,
            )
            for f in findings
        ],
        CustodyRecord,
        default_user=user,
    )
    moved = [f for f in findings if f.changed]
    if moved:
        timeline_record_many(
            (
                {
                    "incident": f.item.incident,
                    "kind": Kind.EVIDENCE,
                    "summary": f"Evidence #{f.item.pk} verification: {describe(f)}",
                    "occurred_at": now,
                    "details": {"evidence": f.item.pk, "integrity": f.state, "was": f.previous},
                }
                for f in moved
            ),
            actor=actor,
            source=source,
        )
        _tell_security(moved)
    return findings


def describe(finding: Finding) -> str:
    if finding.is_ok:
        return f"intact again (was {Integrity(finding.previous).label.lower()})"
    return f"{Integrity(finding.state).label.lower()}: {finding.problem}"


def _tell_security(moved: list[Finding]) -> None:
    """One message to the security group for the changes of a batch (they see every
    confidential incident); it names each incident, so only they may read it."""
    members = (
        get_user_model()
        .objects.filter(groups__name=settings.SECURITY_GROUP, is_active=True)
        .exclude(email="")
    )
    lines = [
        f"- {f.item.incident.reference} evidence #{f.item.pk} "
        f"({f.item.get_kind_display().lower()}): {describe(f)}\n  {settings.SITE_URL}"
        f"{reverse('admin:forensics_evidenceitem_change', args=[f.item.pk])}"
        for f in moved
    ]
    notifications.notify(
        None,
        Event.EVIDENCE_INTEGRITY,
        users=list(members),
        subject=f"Evidence integrity changed: {len(moved)} item(s)",
        message="The daily verification of the evidence locker found:\n\n" + "\n".join(lines),
        mentions={f.item.incident for f in moved},
    )
