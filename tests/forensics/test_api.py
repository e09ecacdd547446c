"""The forensics API: the evidence register of an incident (list, upload, register), an
item, its download and custody log, the export; the breach assessment and the record of
notifications. Bad input is a 4xx naming the field, with nothing written."""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from forensics.models import BreachAssessment, CustodyRecord, EvidenceItem
from incidents import services as incidents
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(commander):
    client = APIClient()
    _, key = incidents.api_key_create(user=commander, name="forensics")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def evidence_url(incident, tail=""):
    return f"/api/v1/incidents/{incident.reference}/evidence/{tail}"


def test_a_multipart_upload_is_hashed_and_answered_with_the_item(api, breach, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # the upload is spooled to disk
    content = bytes(range(256)) * 1024  # 256 KiB
    response = api.post(
        evidence_url(breach),
        {
            "kind": "network_capture",
            "description": "tcpdump on the edge",
            "file": SimpleUploadedFile("edge.pcap", content),
        },
        format="multipart",
        REMOTE_ADDR="203.0.113.50",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["size"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["stored"] is True and body["file_name"] == "edge.pcap"
    assert body["download"] == f"/api/v1/evidence/{body['id']}/download/"
    assert response["Location"] == f"/api/v1/evidence/{body['id']}/"
    record = CustodyRecord.objects.get(evidence_id=body["id"])
    assert (record.action, record.source, record.address) == ("uploaded", "api", "203.0.113.50")


def test_a_json_body_registers_an_item_held_elsewhere(api, breach):
    response = api.post(
        evidence_url(breach),
        {
            "kind": "memory_dump",
            "description": "LiME image of web-3",
            "external_location": "s3://vault/web-3.lime",
            "sha256": "b" * 64,
            "size": 8589934592,
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["integrity"] == "external"
    assert response.json()["download"] is None


@pytest.mark.parametrize(
    "body, fmt, attr",
    [
        ({"kind": "logs", "description": "x", "external_location": "safe"}, "json", "kind"),
        ({"kind": "other", "description": "x"}, "json", "external_location"),
        ({"kind": "other", "description": "x"}, "multipart", "file"),
        (
            {"kind": "other", "description": "x", "external_location": "s", "sha256": "zz"},
            "json",
            "sha256",
        ),
        (
            {
                "kind": "other",
                "description": "x",
                "external_location": "safe",
                "collected_by": "nobody",
            },
            "json",
            "collected_by",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, breach, body, fmt, attr):
    response = api.post(evidence_url(breach), body, format=fmt)

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr
    assert not EvidenceItem.objects.exists()


def test_an_upload_over_the_limit_is_a_413(api, breach, settings):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1000
    response = api.post(
        evidence_url(breach),
        {"kind": "other", "description": "x", "file": SimpleUploadedFile("a", b"x" * 1001)},
        format="multipart",
    )

    assert response.status_code == 413
    assert "limit of 1,000 bytes" in response.json()["errors"][0]["detail"]
    assert not EvidenceItem.objects.exists()


def test_a_body_declared_too_large_is_refused_before_it_is_read(api, breach, settings):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1000
    response = api.generic(
        "POST",
        evidence_url(breach),
        data=b"--x\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(5 * 1024 * 1024),
    )

    assert response.status_code == 413


def test_the_list_and_the_detail(api, breach, upload):
    item = upload(breach)

    listed = api.get(evidence_url(breach)).json()
    assert listed["count"] == 1
    assert listed["results"][0]["sha256"] == item.sha256
    detail = api.get(f"/api/v1/evidence/{item.pk}/").json()
    assert detail["incident"] == breach.reference
    assert detail["collected_by"] == "alice"


def test_a_download_of_a_file_gone_from_the_locker_is_a_409(api, breach, upload):
    from forensics.storage import evidence_storage

    item = upload(breach)
    evidence_storage().delete(item.file.name)
    response = api.get(f"/api/v1/evidence/{item.pk}/download/")

    assert response.status_code == 409
    assert "missing from the locker" in response.json()["errors"][0]["detail"]
    assert not item.custody.filter(action="downloaded").exists()


def test_a_download_of_an_item_held_elsewhere_is_a_409(api, breach, commander):
    from forensics import services

    item = services.evidence_register(
        incident=breach,
        kind="other",
        external_location="safe",
        description="x",
        actor=commander,
        source="api",
    )

    assert api.get(f"/api/v1/evidence/{item.pk}/download/").status_code == 409


def test_a_client_asking_only_for_bytes_gets_them(api, breach, upload):
    item = upload(breach, b"raw")
    response = api.get(
        f"/api/v1/evidence/{item.pk}/download/", HTTP_ACCEPT="application/octet-stream"
    )

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"raw"
    missing = api.get("/api/v1/evidence/999999/download/", HTTP_ACCEPT="application/octet-stream")
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/json"


def test_the_custody_log(api, breach, upload):
    item = upload(breach)
    api.get(f"/api/v1/evidence/{item.pk}/")

    log = api.get(f"/api/v1/evidence/{item.pk}/custody/").json()["results"]
    assert [(row["action"], row["actor"]) for row in log] == [
        ("uploaded", "alice"),
        ("viewed", "alice"),
    ]
    assert log[0]["address"] == "203.0.113.7"


def test_reading_needs_the_permission_and_writing_too(breach, upload, django_user_model):
    item = upload(breach)
    stakeholder = make_user(django_user_model, "sam", "Stakeholders")
    client = APIClient()
    client.force_authenticate(stakeholder)

    assert client.get(f"/api/v1/evidence/{item.pk}/").status_code == 403
    assert client.get(f"/api/v1/evidence/{item.pk}/download/").status_code == 403
    assert APIClient().get(f"/api/v1/evidence/{item.pk}/").status_code == 401


# --- breach -------------------------------------------------------------------------------


def test_the_breach_assessment_with_its_countdown(api, breach):
    body = api.get(f"/api/v1/incidents/{breach.reference}/breach/").json()

    assert body["state"] == "due"
    assert 71 * 3600 < body["seconds_left"] <= 72 * 3600
    assert body["regulator_notification_required"] is None


def test_an_incident_without_one_is_a_404_until_assessed(api, declare):
    incident = declare()
    url = f"/api/v1/incidents/{incident.reference}/breach/"

    assert api.get(url).status_code == 404
    response = api.patch(url, {"personal_data_affected": False}, format="json")
    assert response.status_code == 200
    assert api.get(url).json()["personal_data_affected"] is False


def test_patching_the_assessment(api, breach):
    response = api.patch(
        f"/api/v1/incidents/{breach.reference}/breach/",
        {
            "personal_data_affected": True,
            "regulator_notification_required": False,
            "assessment_notes": "Hashed passwords only; counsel says no notification.",
        },
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["state"] == "not_required"
    assert response.json()["seconds_left"] is None
    assert response.json()["assessed_by"] == "alice"


def test_recording_the_notifications(api, breach):
    regulator = api.post(
        f"/api/v1/incidents/{breach.reference}/breach/regulator-notified/",
        {"reference": "ICO-5"},
        format="json",
    )
    subjects = api.post(
        f"/api/v1/incidents/{breach.reference}/breach/data-subjects-notified/",
        {"notes": "Email to 1,200 customers"},
        format="json",
    )

    assert regulator.status_code == subjects.status_code == 200
    body = subjects.json()
    assert body["state"] == "notified"
    assert body["regulator_reference"] == "ICO-5"
    assert body["data_subjects_notes"] == "Email to 1,200 customers"


def test_a_notification_in_the_future_is_a_400(api, breach):
    from django.utils import timezone

    response = api.post(
        f"/api/v1/incidents/{breach.reference}/breach/regulator-notified/",
        {"notified_at": (timezone.now() + timedelta(hours=2)).isoformat()},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "notified_at"
    assert BreachAssessment.objects.get(incident=breach).regulator_notified_at is None


def test_the_schema_describes_the_endpoints(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]

    upload = paths["/api/v1/incidents/{reference}/evidence/"]["post"]
    assert set(upload["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    download = paths["/api/v1/evidence/{id}/download/"]["get"]
    assert "application/octet-stream" in download["responses"]["200"]["content"]
    assert "413" in upload["responses"]
    export = paths["/api/v1/incidents/{reference}/evidence/export/"]["get"]
    assert "text/csv" in export["responses"]["200"]["content"]
