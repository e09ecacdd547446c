"""Uploading evidence: stored under a name of our choosing, outside anything served,
hashed and measured as it is written — in chunks, so a file larger than memory is never
read whole — and refused whole when it breaks a rule."""

import hashlib
import os
import stat
import tracemalloc

import pytest
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from forensics import services
from forensics.models import CustodyRecord, EvidenceItem
from forensics.services.evidence import CHUNK_SIZE
from forensics.storage import evidence_storage
from incidents.errors import DomainError
from incidents.models import Source

from .conftest import uploaded

pytestmark = pytest.mark.django_db


def locker_files(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root)
        for name in names
    )


def test_an_upload_is_stored_with_the_size_and_sha256_of_its_bytes(breach, upload, evidence_root):
    content = b"Jan 01 00:00:01 bastion sshd[411]: Accepted password for root\n" * 10
    item = upload(breach, content, name="auth.log")

    assert item.size == len(content)
    assert item.sha256 == hashlib.sha256(content).hexdigest()
    assert item.integrity == EvidenceItem.Integrity.OK
    assert item.original_filename == "auth.log"
    with evidence_storage().open(item.file.name, "rb") as stored:
        assert stored.read() == content
    assert locker_files(evidence_root) == [item.file.name]


def test_the_stored_name_is_the_servers_and_the_clients_path_is_only_data(breach, upload):
    item = upload(breach, name="../../../etc/cron.d/evil")

    folder, name = item.file.name.split("/")
    assert folder == breach.reference
    assert len(name) == 32 and "evil" not in name  # a random hex name
    assert item.original_filename == "evil"
    assert item.download_name == "evil"


def test_a_windows_path_and_control_characters_are_dropped_from_the_name(breach, upload):
    item = upload(breach, name="C:\\Users\\eve\\dump\x07.pcap")

    assert item.original_filename == "dump.pcap"


def test_the_stored_file_is_readable_by_this_process_alone(breach, upload, evidence_root):
    item = upload(breach)

    mode = os.stat(evidence_storage().path(item.file.name)).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(evidence_root / breach.reference).st_mode) == 0o700


def test_the_locker_gives_no_url_for_its_files(breach, upload):
    item = upload(breach)

    with pytest.raises(ValueError, match="never served by URL"):
        item.file.url  # noqa: B018


def big_upload(settings, size: int) -> tuple[TemporaryUploadedFile, bytes]:
    """A file spooled to disk, as Django keeps an upload over FILE_UPLOAD_MAX_MEMORY_SIZE."""
    content = os.urandom(size)
    spooled = TemporaryUploadedFile("memory.dmp", "application/octet-stream", size, None)
    spooled.write(content)
    spooled.seek(0)
    return spooled, content


def test_a_file_larger_than_memory_allows_is_hashed_in_chunks_while_it_is_stored(
    breach, commander, settings, monkeypatch
):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
    spooled, content = big_upload(settings, 6 * 1024 * 1024 + 123)
    reads = []
    original_read = spooled.file.read

    def read(size=-1):
        data = original_read(size)
        reads.append(len(data))
        return data

    monkeypatch.setattr(spooled.file, "read", read)
    tracemalloc.start()
    try:
        item = services.evidence_upload(
            incident=breach,
            kind="memory_dump",
            file=spooled,
            description="Memory of web-3",
            actor=commander,
            source=Source.API,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert item.size == len(content)
    assert item.sha256 == hashlib.sha256(content).hexdigest()
    # Read once, a chunk at a time, and never held whole: the peak stays far below the file.
    assert sum(reads) == len(content)
    assert max(reads) <= CHUNK_SIZE
    assert peak < len(content) / 4
    # Copied through the hashing reader, not moved in from the spool unread.
    assert os.path.exists(spooled.temporary_file_path())


def test_an_upload_over_the_limit_is_refused_and_nothing_is_kept(
    breach, upload, settings, evidence_root
):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 10

    with pytest.raises(services.EvidenceTooLarge, match="limit of 10 bytes"):
        upload(breach, b"x" * 11)

    assert not EvidenceItem.objects.exists()
    assert locker_files(evidence_root) == []


def test_a_file_longer_than_it_said_is_cut_off_at_the_limit_and_not_kept(
    breach, commander, settings, evidence_root
):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 100
    lying = uploaded(b"y" * 500)
    lying.size = 50  # what the client declared

    with pytest.raises(services.EvidenceTooLarge):
        services.evidence_upload(
            incident=breach,
            kind="other",
            file=lying,
            description="x",
            actor=commander,
            source=Source.API,
        )

    assert locker_files(evidence_root) == []


def test_a_file_that_hashes_otherwise_than_its_collector_said_is_refused(
    breach, upload, evidence_root
):
    stated = hashlib.sha256(b"what was collected").hexdigest()

    with pytest.raises(DomainError, match="not the file that was collected") as refused:
        upload(breach, b"what arrived", expected_sha256=stated)

    assert refused.value.field == "sha256"
    assert locker_files(evidence_root) == []
    item = upload(breach, b"what was collected", expected_sha256=stated.upper())
    assert item.sha256 == stated


def test_a_failure_after_the_file_is_written_takes_the_file_away(
    breach, upload, evidence_root, monkeypatch
):
    from forensics.services import evidence

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(evidence, "timeline_record", broken)
    with pytest.raises(RuntimeError):
        upload(breach)

    assert not EvidenceItem.objects.exists()
    assert locker_files(evidence_root) == []


def test_the_upload_is_the_first_custody_record_and_a_timeline_event(breach, upload, commander):
    item = upload(breach, b"abc", name="auth.log")

    (record,) = item.custody.all()
    assert record.action == CustodyRecord.Action.UPLOADED
    assert (record.actor, record.actor_name, record.address) == (commander, "alice", "203.0.113.7")
    assert item.sha256 in record.detail
    event = breach.timeline.get(kind="evidence")
    assert f"Evidence #{item.pk} uploaded" in event.summary
    assert event.details["sha256"] == item.sha256


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"kind": "rumours"}, "kind"),
        ({"description": "   "}, "description"),
        ({"collected_at": timezone.now() + timezone.timedelta(hours=1)}, "collected_at"),
    ],
)
def test_bad_details_are_refused_before_anything_is_stored(
    breach, upload, evidence_root, fields, field
):
    with pytest.raises(DomainError) as refused:
        upload(breach, **fields)

    assert refused.value.field == field
    assert locker_files(evidence_root) == []


def test_nobody_uploads_to_a_confidential_incident_they_may_not_see(breach, upload, outsider):
    with pytest.raises(DomainError, match="that you may see"):
        upload(breach, actor=outsider)


def test_the_collector_must_be_allowed_to_see_a_confidential_incident(breach, upload, outsider):
    with pytest.raises(DomainError, match="may not see confidential") as refused:
        upload(breach, collected_by=outsider)

    assert refused.value.field == "collected_by"


def test_an_item_held_elsewhere_is_registered_with_its_stated_hash(breach, commander):
    stated = "AB" * 32
    item = services.evidence_register(
        incident=breach,
        kind="memory_dump",
        external_location="s3://forensics/INC/web-3.lime",
        description="LiME image of web-3",
        sha256=stated,
        size=8 * 2**30,
        actor=commander,
        source=Source.API,
    )

    assert not item.is_stored
    assert item.sha256 == stated.lower()
    assert item.integrity == EvidenceItem.Integrity.EXTERNAL
    assert item.custody.get().action == CustodyRecord.Action.REGISTERED


def test_a_stated_hash_must_be_sha256_hex(breach, commander):
    with pytest.raises(DomainError, match="64 hexadecimal") as refused:
        services.evidence_register(
            incident=breach,
            kind="other",
            external_location="safe 2",
            description="laptop",
            sha256="md5:abc",
            actor=commander,
            source=Source.API,
        )
    assert refused.value.field == "sha256"


def test_an_item_has_a_file_or_a_location_never_both_nor_neither(breach):
    common = {
        "incident": breach,
        "kind": "other",
        "description": "x",
        "collected_at": timezone.now(),
        "integrity": "external",
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        EvidenceItem.objects.create(
            **common, file="x/y", external_location="safe", size=1, sha256="0" * 64
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        EvidenceItem.objects.create(**common)


def test_a_stored_file_always_has_its_hash(breach):
    with pytest.raises(IntegrityError):
        EvidenceItem.objects.create(
            incident=breach,
            kind="other",
            description="x",
            collected_at=timezone.now(),
            integrity="ok",
            file="x/y",
        )
