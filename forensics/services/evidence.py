"""Evidence in, and every access to it: uploads hashed as they are written, items held
elsewhere, and the custody record of each view, download and export."""

import hashlib
import ipaddress
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.lockout import client_address
from incidents.errors import DomainError, StateConflict
from incidents.history import bulk_create_with_history
from incidents.models import Incident
from incidents.queries import user_may_see_incident
from incidents.services import (
    LONG_TEXT,
    UNPRINTABLE,
    acting_user,
    check_may_see,
    clean_text,
    lock_incident,
    save_as,
    timeline_record,
    when_happened,
)

from ..models import CustodyRecord, EvidenceItem
from ..storage import evidence_storage
from ..vocabulary import Kind

Action = CustodyRecord.Action
Integrity = EvidenceItem.Integrity

# What is read and written at a time: a memory dump of many gigabytes passes through in
# pieces this size, never whole.
CHUNK_SIZE = 64 * 1024
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
LOCATION_LIMIT = EvidenceItem._meta.get_field("external_location").max_length
FILENAME_LIMIT = EvidenceItem._meta.get_field("original_filename").max_length
DETAIL_LIMIT = CustodyRecord._meta.get_field("detail").max_length


class EvidenceTooLarge(DomainError):
    """An upload over EVIDENCE_MAX_UPLOAD_BYTES (the API answers 413)."""

    def __init__(self):
        limit = settings.EVIDENCE_MAX_UPLOAD_BYTES
        super().__init__(f"The file is larger than the limit of {limit:,} bytes.", field="file")


class EvidenceUnavailable(StateConflict):
    """The item has no file to hand out: held elsewhere, or gone from the locker."""


def address_of(request) -> str | None:
    """Return the client's address as the API throttle and the sign-in lockout see it
    (NUM_PROXIES), or None when that is not an IP address (a proxy header of garbage)."""
    try:
        return str(ipaddress.ip_address((client_address(request) or "").strip()))
    except ValueError:
        return None


def original_name(name: str | None) -> str:
    """Return the client's file name as data: its last path part, printable, bounded."""
    base = os.path.basename((name or "").replace("\\", "/"))
    return UNPRINTABLE.sub("", base).strip()[-FILENAME_LIMIT:]


# --- custody ----------------------------------------------------------------------------


def _custody(
    item: EvidenceItem, action: str, *, actor, source: str, address: str | None, detail: str = ""
) -> CustodyRecord:
    user = acting_user(actor)
    return CustodyRecord(
        evidence=item,
        action=action,
        actor=user,
        actor_name=user.get_username() if user is not None else "",
        address=address,
        source=source,
        detail=detail[:DETAIL_LIMIT],
    )


def _check_may_read(item: EvidenceItem, actor) -> None:
    user = acting_user(actor)
    if user is not None and not user_may_see_incident(user, item.incident):
        # Said as the API and pages say it: the item is not there for them.
        raise DomainError(f"No evidence item #{item.pk} that you may see.", field="evidence")


@transaction.atomic
def evidence_record_view(
    *, item: EvidenceItem, actor, source: str, address: str | None, detail: str = ""
) -> CustodyRecord:
    """Record that `actor` opened the item's record (its admin page, its API detail)."""
    _check_may_read(item, actor)
    record = _custody(
        item, Action.VIEWED, actor=actor, source=source, address=address, detail=detail
    )
    save_as(record, actor)
    return record


def evidence_open(*, item: EvidenceItem, actor, source: str, address: str | None):
    """Open the item's file for download and record the download first: a file is never
    handed out without its custody record. The caller closes the file."""
    _check_may_read(item, actor)
    if not item.is_stored:
        raise EvidenceUnavailable(
            f"Evidence #{item.pk} is held elsewhere: {item.external_location}", field="evidence"
        )
    try:
        handle = evidence_storage().open(item.file.name, "rb")
    except OSError:
        raise EvidenceUnavailable(
            f"The file of evidence #{item.pk} is missing from the locker (verify_evidence "
            "reports it).",
            field="evidence",
        ) from None
    try:
        with transaction.atomic():
            detail = f"{item.download_name}, {item.size:,} bytes, integrity {item.integrity}"
            record = _custody(
                item, Action.DOWNLOADED, actor=actor, source=source, address=address, detail=detail
            )
            save_as(record, actor)
    except BaseException:
        handle.close()
        raise
    return handle


@transaction.atomic
def evidence_export(
    *, items: Iterable[EvidenceItem], actor, source: str, address: str | None, what: str
) -> list[CustodyRecord]:
    """Record that `items` were exported (their register entry and custody log) by `actor`:
    one custody record each, written together."""
    items = list(items)
    for item in items:
        _check_may_read(item, actor)
    records = [
        _custody(item, Action.EXPORTED, actor=actor, source=source, address=address, detail=what)
        for item in items
    ]
    user = acting_user(actor)
    return bulk_create_with_history(records, CustodyRecord, default_user=user) if records else []


# --- collecting -----------------------------------------------------------------------


class _Hashing:
    """The upload as the storage reads it: its chunks, hashed and counted on their way to
    the disk, so the file is read once and never whole. Not a temporary file to the
    storage (no temporary_file_path), which would otherwise move it without reading it."""

    def __init__(self, uploaded, limit: int):
        self._uploaded = uploaded
        self._limit = limit
        self.name = uploaded.name
        self.sha256 = hashlib.sha256()
        self.size = 0

    def chunks(self, chunk_size=None) -> Iterator[bytes]:
        for chunk in self._uploaded.chunks(CHUNK_SIZE):
            self.size += len(chunk)
            if self.size > self._limit:
                raise EvidenceTooLarge()  # a client that under-declared its size
            self.sha256.update(chunk)
            yield chunk


def _check_common(
    *, incident: Incident, kind: str, description: str, collected_by, collected_at, actor
) -> dict:
    user = acting_user(actor)
    if user is not None and not user_may_see_incident(user, incident):
        raise DomainError(f"No incident {incident.reference} that you may see.", field="incident")
    if kind not in EvidenceItem.Kind.values:
        allowed = ", ".join(EvidenceItem.Kind.values)
        raise DomainError(f"Unknown kind {kind!r}; use one of {allowed}.", field="kind")
    description = clean_text(
        description, field="description", limit=LONG_TEXT, required="Say what the evidence is."
    )
    collected_by = collected_by or user
    if collected_by is not None:
        if not collected_by.is_active:
            raise DomainError(
                f"{collected_by.get_username()} is not an active user.", field="collected_by"
            )
        check_may_see(collected_by, incident, "collected_by")
    now = timezone.now()
    collected_at = when_happened(collected_at, now, field="collected_at")
    return {
        "incident": incident,
        "kind": kind,
        "description": description,
        "collected_by": collected_by,
        "collected_at": collected_at,
        "created_by": user,
    }


def _on_timeline(item: EvidenceItem, summary: str, actor, source: str) -> None:
    timeline_record(
        item.incident,
        kind=Kind.EVIDENCE,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=timezone.now(),
        details={"evidence": item.pk, "sha256": item.sha256, "size": item.size},
    )


def evidence_upload(
    *,
    incident: Incident,
    kind: str,
    file,
    description: str,
    actor,
    source: str,
    address: str | None = None,
    collected_by=None,
    collected_at: datetime | None = None,
    expected_sha256: str = "",
) -> EvidenceItem:
    """Put an uploaded file in the locker under a name of our choosing, computing its
    size and SHA-256 as it is written (one pass, in chunks); record the upload in its
    custody log and on the incident's timeline. With `expected_sha256` (the collector's
    hash), a file that hashes otherwise is refused: it is not what was collected."""
    expected = check_sha256(expected_sha256)
    fields = _check_common(
        incident=incident,
        kind=kind,
        description=description,
        collected_by=collected_by,
        collected_at=collected_at,
        actor=actor,
    )
    if file is None:
        raise DomainError("Choose the file to upload.", field="file")
    limit = settings.EVIDENCE_MAX_UPLOAD_BYTES
    if (file.size or 0) > limit:
        raise EvidenceTooLarge()
    filename = original_name(file.name)
    storage = evidence_storage()
    hashing = _Hashing(file, limit)
    # Written before the transaction: a large file is copied without the incident's row
    # locked all the while. If what follows fails, the file goes again.
    chosen = f"{incident.reference}/{uuid.uuid4().hex}"
    try:
        name = storage.save(chosen, hashing)
    except BaseException:
        storage.delete(chosen)
        raise
    try:
        computed = hashing.sha256.hexdigest()
        if expected and computed != expected:
            raise DomainError(
                f"The file hashes to {computed}, not {expected} as stated: it is not the "
                "file that was collected (or it was damaged on the way).",
                field="sha256",
            )
        return _record_upload(
            fields, name, filename, hashing, actor=actor, source=source, address=address
        )
    except BaseException:
        storage.delete(name)
        raise


@transaction.atomic
def _record_upload(fields, name, filename, hashing, *, actor, source, address) -> EvidenceItem:
    # The incident locked, as every write to it is: a reclassification racing the upload
    # is ordered before it or after it.
    fields["incident"] = lock_incident(fields["incident"])
    item = EvidenceItem(
        **fields,
        file=name,
        original_filename=filename,
        size=hashing.size,
        sha256=hashing.sha256.hexdigest(),
        integrity=Integrity.OK,
        last_verified_at=timezone.now(),
    )
    save_as(item, actor)
    detail = f"{filename or 'file'}: {item.size:,} bytes, SHA-256 {item.sha256}"
    record = _custody(
        item, Action.UPLOADED, actor=actor, source=source, address=address, detail=detail
    )
    save_as(record, actor)
    _on_timeline(
        item,
        f"Evidence #{item.pk} uploaded: {item.get_kind_display().lower()}, "
        f"{filename or 'a file'} ({item.size:,} bytes, SHA-256 {item.sha256[:12]}…)",
        actor,
        source,
    )
    return item


def check_sha256(value: str | None) -> str:
    """Return a stated SHA-256 in lower-case hex, "" for none; refuse anything else."""
    value = (value or "").strip().lower()
    if value and not SHA256_HEX.fullmatch(value):
        raise DomainError("Give the SHA-256 as 64 hexadecimal characters.", field="sha256")
    return value


@transaction.atomic
def evidence_register(
    *,
    incident: Incident,
    kind: str,
    external_location: str,
    description: str,
    actor,
    source: str,
    address: str | None = None,
    sha256: str = "",
    size: int | None = None,
    collected_by=None,
    collected_at: datetime | None = None,
) -> EvidenceItem:
    """Record an item held elsewhere (a disk image in a bucket, a laptop in a safe), with
    the hash its collector states; Sitrep cannot check it, and says so."""
    fields = _check_common(
        incident=incident,
        kind=kind,
        description=description,
        collected_by=collected_by,
        collected_at=collected_at,
        actor=actor,
    )
    location = clean_text(
        external_location,
        field="external_location",
        limit=LOCATION_LIMIT,
        required="Say where the item is held.",
    )
    if size is not None and (not isinstance(size, int) or size < 0):
        raise DomainError("Give the size in bytes, 0 or more.", field="size")
    fields["incident"] = lock_incident(incident)
    item = EvidenceItem(
        **fields,
        external_location=location,
        sha256=check_sha256(sha256),
        size=size,
        integrity=Integrity.EXTERNAL,
    )
    save_as(item, actor)
    stated = f", stated SHA-256 {item.sha256}" if item.sha256 else ""
    record = _custody(
        item,
        Action.REGISTERED,
        actor=actor,
        source=source,
        address=address,
        detail=f"held at {location}{stated}",
    )
    save_as(record, actor)
    _on_timeline(
        item,
        f"Evidence #{item.pk} registered: {item.get_kind_display().lower()}, held elsewhere",
        actor,
        source,
    )
    return item
