"""Custody: every view of an item's record, every download and every export writes an
append-only record of who, when, from which address and what — in the admin, the
download view and the API alike. Lists show the register, not the evidence, and are not
custody events."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from forensics.models import CustodyRecord, EvidenceItem
from incidents.models import Source

pytestmark = pytest.mark.django_db
Action = CustodyRecord.Action
CLIENT = "198.51.100.4"


@pytest.fixture
def item(breach, upload):
    return upload(breach, b"GET /admin HTTP/1.1 403\n", name="access.log")


def accesses(item) -> list[tuple]:
    """The custody log after the upload: (action, who, address, source, detail)."""
    return [
        (record.action, record.actor_name, record.address, record.source, record.detail)
        for record in item.custody.exclude(action=Action.UPLOADED)
    ]


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_opening_the_record_page_in_the_admin_is_recorded(commander_client, item):
    url = reverse("admin:forensics_evidenceitem_change", args=[item.pk])
    response = commander_client.get(url, REMOTE_ADDR=CLIENT)

    assert response.status_code == 200
    assert accesses(item) == [(Action.VIEWED, "alice", CLIENT, Source.ADMIN, "record page")]
    # The page shows its own custody log, this view included.
    assert "Viewed" in response.content.decode()


def test_the_register_and_the_incident_page_are_not_custody_events(commander_client, item):
    changelist = commander_client.get(reverse("admin:forensics_evidenceitem_changelist"))
    incident_page = commander_client.get(
        reverse("admin:incidents_incident_change", args=[item.incident.pk])
    )
    war_room = commander_client.get(item.incident.get_absolute_url())

    for response in (changelist, incident_page, war_room):
        assert response.status_code == 200
        assert item.description in response.content.decode()
    assert accesses(item) == []


def test_a_download_streams_the_file_after_recording_it(commander_client, item):
    url = reverse("forensics:evidence-download", args=[item.pk])
    response = commander_client.get(url, REMOTE_ADDR=CLIENT)

    assert response.status_code == 200
    assert response.streaming
    assert body(response) == b"GET /admin HTTP/1.1 403\n"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="access.log"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    (record,) = accesses(item)
    assert record[:4] == (Action.DOWNLOADED, "alice", CLIENT, Source.ADMIN)


def test_a_download_by_api_is_recorded_with_its_source(client, commander, item):
    client.force_login(commander)
    response = client.get(f"/api/v1/evidence/{item.pk}/download/", REMOTE_ADDR=CLIENT)

    assert response.status_code == 200
    assert body(response) == b"GET /admin HTTP/1.1 403\n"
    assert accesses(item)[0][:4] == (Action.DOWNLOADED, "alice", CLIENT, Source.API)


def test_reading_the_api_detail_is_recorded(client, commander, item):
    client.force_login(commander)
    response = client.get(f"/api/v1/evidence/{item.pk}/", REMOTE_ADDR=CLIENT)

    assert response.status_code == 200
    assert response.json()["sha256"] == item.sha256
    assert accesses(item) == [(Action.VIEWED, "alice", CLIENT, Source.API, "API detail")]


def test_the_api_list_and_custody_log_are_not_custody_events(client, commander, item):
    client.force_login(commander)
    listed = client.get(f"/api/v1/incidents/{item.incident.reference}/evidence/")
    log = client.get(f"/api/v1/evidence/{item.pk}/custody/")

    assert [row["id"] for row in listed.json()["results"]] == [item.pk]
    assert [row["action"] for row in log.json()["results"]] == ["uploaded"]
    assert accesses(item) == []


def test_an_api_export_records_each_item_and_lists_its_custody(
    client, commander, item, breach, upload
):
    other = upload(breach, b"second", name="second.log")
    client.force_login(commander)
    response = client.get(
        f"/api/v1/incidents/{breach.reference}/evidence/export/", REMOTE_ADDR=CLIENT
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    for evidence in (item, other):
        assert accesses(evidence) == [
            (Action.EXPORTED, "alice", CLIENT, Source.API, "register export (API)")
        ]
        mine = [row for row in rows if row["evidence"] == str(evidence.pk)]
        assert [row["row"] for row in mine] == ["item", "custody", "custody"]
        assert mine[0]["sha256"] == evidence.sha256
        # The export lists itself.
        assert [row["custody_action"] for row in mine[1:]] == ["uploaded", "exported"]


def test_an_admin_export_records_the_selected_items_only(commander_client, item, breach, upload):
    other = upload(breach, b"second", name="second.log")
    response = commander_client.post(
        reverse("admin:forensics_evidenceitem_changelist"),
        {"action": "export_register", "_selected_action": [item.pk]},
        REMOTE_ADDR=CLIENT,
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert accesses(item)[0][:4] == (Action.EXPORTED, "alice", CLIENT, Source.ADMIN)
    assert accesses(other) == []
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {row["evidence"] for row in rows} == {str(item.pk)}


def test_a_cell_a_spreadsheet_would_run_is_defused_in_the_export(client, commander, breach, upload):
    upload(breach, description='=HYPERLINK("http://evil.example","click")')
    client.force_login(commander)
    response = client.get(f"/api/v1/incidents/{breach.reference}/evidence/export/")

    (item_row,) = [
        r for r in csv.DictReader(io.StringIO(response.content.decode())) if r["row"] == "item"
    ]
    assert item_row["description"].startswith("'=HYPERLINK")


def test_the_address_is_the_one_the_throttle_and_lockout_count(client, commander, item, settings):
    # Behind one proxy of ours: the entry it appended, not whatever the client wrote first.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client.force_login(commander)
    client.get(
        f"/api/v1/evidence/{item.pk}/",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="1.2.3.4, 192.0.2.44",
    )

    assert accesses(item)[0][2] == "192.0.2.44"


def test_an_address_that_is_not_one_is_kept_as_none(client, commander, item, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client.force_login(commander)
    response = client.get(
        f"/api/v1/evidence/{item.pk}/", HTTP_X_FORWARDED_FOR="<script>, not-an-address"
    )

    assert response.status_code == 200
    assert accesses(item)[0][2] is None


def test_custody_records_cannot_be_changed_or_deleted_by_anyone(client, django_user_model, item):
    boss = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(boss)
    record = item.custody.get()
    change = reverse("admin:forensics_custodyrecord_change", args=[record.pk])
    delete = reverse("admin:forensics_custodyrecord_delete", args=[record.pk])

    page = client.get(change)
    assert page.status_code == 200
    assert "Save" not in page.content.decode()
    assert client.post(change, {"detail": "nothing happened"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:forensics_custodyrecord_add")).status_code == 403
    record.refresh_from_db()
    assert record.action == Action.UPLOADED


def test_evidence_items_cannot_be_changed_or_deleted_by_anyone(client, django_user_model, item):
    boss = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(boss)
    change = reverse("admin:forensics_evidenceitem_change", args=[item.pk])

    assert client.post(change, {"description": "nothing to see"}).status_code == 403
    delete = reverse("admin:forensics_evidenceitem_delete", args=[item.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert EvidenceItem.objects.get(pk=item.pk).description == item.description


def test_no_group_is_given_a_way_to_change_the_record(db):
    codenames = set(
        Permission.objects.filter(
            content_type__app_label="forensics", group__isnull=False
        ).values_list("codename", flat=True)
    )
    assert not codenames & {
        "change_evidenceitem",
        "delete_evidenceitem",
        "add_custodyrecord",
        "change_custodyrecord",
        "delete_custodyrecord",
        "delete_breachassessment",
    }


def test_each_custody_record_has_its_history_row(item, client, commander):
    client.force_login(commander)
    client.get(f"/api/v1/evidence/{item.pk}/")

    records = list(item.custody.all())
    assert CustodyRecord.history.filter(id__in=[r.pk for r in records]).count() == len(records)
