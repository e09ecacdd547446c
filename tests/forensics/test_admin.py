"""The forensics admin: evidence added through the services (upload or held elsewhere),
refusals that keep what was typed, the panels on the incident page, and the breach
assessment's form recording the assessment and the notifications through the services."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from forensics.models import BreachAssessment, CustodyRecord, EvidenceItem
from incidents.models import Source

pytestmark = pytest.mark.django_db
ADD = reverse("admin:forensics_evidenceitem_add")
CHANGELIST = reverse("admin:forensics_evidenceitem_changelist")
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def add_form(incident, **fields):
    return {
        "incident": incident.pk,
        "kind": "application_logs",
        "description": "API gateway logs 02:00-03:00",
        "file": "",
        "external_location": "",
        "stated_sha256": "",
        "stated_size": "",
        "collected_by": "",
        "collected_at_0": "",
        "collected_at_1": "",
        **fields,
    }


def test_an_upload_in_the_admin_goes_through_the_service(commander_client, breach, commander):
    content = b"2026-12-04T02:00:01Z GET /v1/customers 200\n"
    response = commander_client.post(
        ADD,
        add_form(breach, file=SimpleUploadedFile("gateway.log", content)),
        REMOTE_ADDR="192.0.2.9",
    )

    assert response.status_code == 302
    item = EvidenceItem.objects.get()
    assert item.sha256 == hashlib.sha256(content).hexdigest()
    assert (item.collected_by, item.created_by) == (commander, commander)
    record = item.custody.get()
    assert (record.action, record.address, record.source) == ("uploaded", "192.0.2.9", "admin")


def test_an_item_held_elsewhere_is_registered_from_the_admin(commander_client, breach):
    response = commander_client.post(
        ADD,
        add_form(
            breach,
            kind="memory_dump",
            external_location="Safe 2, bag 4711",
            stated_sha256="a" * 64,
            stated_size="17179869184",
        ),
    )

    assert response.status_code == 302
    item = EvidenceItem.objects.get()
    assert (item.external_location, item.sha256, item.size) == ("Safe 2, bag 4711", "a" * 64, 2**34)
    assert item.integrity == EvidenceItem.Integrity.EXTERNAL


def test_both_a_file_and_a_location_is_refused_with_what_was_typed_kept(commander_client, breach):
    response = commander_client.post(
        ADD,
        add_form(
            breach,
            file=SimpleUploadedFile("a.log", b"x"),
            external_location="Safe 2",
            description="Typed with care",
        ),
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "Upload a file or give where the item is held, not both." in body
    assert "Typed with care" in body
    assert not EvidenceItem.objects.exists()


def test_a_service_refusal_keeps_what_was_typed(commander_client, breach, evidence_root):
    response = commander_client.post(
        ADD,
        add_form(
            breach,
            file=SimpleUploadedFile("a.log", b"what arrived"),
            stated_sha256=hashlib.sha256(b"what was collected").hexdigest(),
            description="Typed with care",
        ),
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "not the file that was collected" in body
    assert "Typed with care" in body
    assert not EvidenceItem.objects.exists()
    assert not [path for path in evidence_root.rglob("*") if path.is_file()]


def test_the_add_form_offers_only_incidents_the_user_may_see(client, outsider, breach):
    client.force_login(outsider)
    response = client.post(ADD, add_form(breach, external_location="Safe 2"))

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not EvidenceItem.objects.exists()


def test_the_record_page_shows_the_item_and_its_custody_with_a_download_link(
    commander_client, breach, upload
):
    item = upload(breach, b"abc", name="auth.log")
    body = commander_client.get(
        reverse("admin:forensics_evidenceitem_change", args=[item.pk])
    ).content.decode()

    assert item.sha256 in body
    assert reverse("forensics:evidence-download", args=[item.pk]) in body
    assert item.file.name in body  # where it is stored, said
    assert "Uploaded" in body and "Viewed" in body


def test_the_register_lists_items_with_their_integrity(commander_client, breach, upload):
    item = upload(breach)
    body = commander_client.get(CHANGELIST).content.decode()

    assert f"{item.sha256[:12]}…" in body
    assert "Intact" in body
    assert reverse("forensics:evidence-download", args=[item.pk]) in body


def test_the_register_filters_by_incident_from_the_panel_link(
    commander_client, breach, upload, declare
):
    upload(breach, description="mine")
    upload(declare(), description="someone else's")
    response = commander_client.get(CHANGELIST, {"incident": breach.pk})

    assert [item.description for item in response.context["cl"].result_list] == ["mine"]


def test_the_incident_page_has_an_evidence_panel_with_downloads_and_an_add_link(
    commander_client, breach, upload
):
    item = upload(breach, description="auth.log from the bastion")
    body = commander_client.get(breach.get_absolute_url()).content.decode()

    assert "auth.log from the bastion" in body
    assert reverse("forensics:evidence-download", args=[item.pk]) in body
    assert f"{ADD}?incident={breach.pk}" in body


def test_an_incident_without_evidence_offers_to_add_some(commander_client, declare):
    incident = declare()
    body = commander_client.get(incident.get_absolute_url()).content.decode()

    assert "No evidence collected." in body
    assert f"{ADD}?incident={incident.pk}" in body


def test_the_incident_page_shows_the_breach_countdown(commander_client, declare, security_type):
    with time_machine.travel(T0, tick=False):
        incident = declare(incident_type=security_type, detected_at=T0, started_at=T0)
    with time_machine.travel(T0 + 30 * HOUR + 48 * timedelta(minutes=1), tick=False):
        body = commander_client.get(incident.get_absolute_url()).content.decode()

    assert "Regulator notification due in 41h 12m (by 2026-12-07 09:00 UTC)" in body
    assert "not assessed yet" in body
    assessment = BreachAssessment.objects.get(incident=incident)
    assert reverse("admin:forensics_breachassessment_change", args=[assessment.pk]) in body


def test_the_countdown_says_overdue_and_notified(
    commander_client, declare, security_type, commander
):
    from forensics import services

    with time_machine.travel(T0, tick=False):
        incident = declare(incident_type=security_type, detected_at=T0, started_at=T0)
    with time_machine.travel(T0 + 75 * HOUR, tick=False):
        overdue = commander_client.get(incident.get_absolute_url()).content.decode()
        services.breach_record_regulator_notified(
            incident=incident, reference="ICO-9", actor=commander, source=Source.ADMIN
        )
        notified = commander_client.get(incident.get_absolute_url()).content.decode()

    assert "Regulator notification overdue by 3h 00m (was due 2026-12-07 09:00 UTC)" in overdue
    assert "3d 3h after detection, 3h 00m after the 72-hour deadline" in notified
    assert "ICO-9" in notified


def test_an_outage_has_no_breach_panel(commander_client, declare):
    body = commander_client.get(declare().get_absolute_url()).content.decode()

    assert "Breach notification" not in body


def change_url(assessment):
    return reverse("admin:forensics_breachassessment_change", args=[assessment.pk])


def breach_form(commander_client, assessment, **changes):
    from tests.forms import form_data

    page = commander_client.get(change_url(assessment))
    data = form_data(page.content.decode(), "breachassessment_form")
    data.update(changes)
    return data


def test_a_notification_time_refused_is_said_beside_its_field(commander_client, breach):
    assessment = breach.breach_assessment
    data = breach_form(
        commander_client,
        assessment,
        regulator_notified_at_0="2020-01-01",
        regulator_notified_at_1="10:00:00",
    )
    response = commander_client.post(change_url(assessment), data)

    assert response.context["adminform"].form.errors["regulator_notified_at"] == [
        "Cannot be more than 365 days ago."
    ]


def test_the_breach_form_records_the_assessment_and_the_notification(
    commander_client, breach, commander
):
    assessment = breach.breach_assessment
    data = breach_form(
        commander_client,
        assessment,
        personal_data_affected="true",
        regulator_notification_required="true",
        regulator_notified_at_0=f"{breach.detected_at + timedelta(minutes=1):%Y-%m-%d}",
        regulator_notified_at_1=f"{breach.detected_at + timedelta(minutes=1):%H:%M:%S}",
        regulator_reference="ICO-42",
    )
    with time_machine.travel(breach.detected_at + HOUR):
        response = commander_client.post(change_url(assessment), data)

    assert response.status_code == 302
    assessment.refresh_from_db()
    assert assessment.personal_data_affected is True
    assert assessment.assessed_by == commander
    assert assessment.regulator_reference == "ICO-42"
    summaries = list(
        breach.timeline.filter(kind="breach").order_by("id").values_list("summary", flat=True)
    )
    assert summaries[-2].startswith("Breach assessed: personal data affected: yes")
    assert summaries[-1].startswith("Regulator notified (reference ICO-42)")


def test_a_reference_without_a_time_is_refused_with_what_was_typed_kept(commander_client, breach):
    assessment = breach.breach_assessment
    data = breach_form(commander_client, assessment, regulator_reference="ICO-42")
    response = commander_client.post(change_url(assessment), data)

    assert response.status_code == 200
    body = response.content.decode()
    assert "Give when the regulator were notified." in body
    assert 'value="ICO-42"' in body
    assessment.refresh_from_db()
    assert assessment.regulator_reference == ""


def test_a_recorded_notification_cannot_be_cleared(commander_client, breach, commander):
    from forensics import services

    services.breach_record_regulator_notified(
        incident=breach, reference="ICO-1", actor=commander, source=Source.ADMIN
    )
    assessment = breach.breach_assessment
    data = breach_form(
        commander_client, assessment, regulator_notified_at_0="", regulator_notified_at_1=""
    )
    response = commander_client.post(change_url(assessment), data)

    assert "stays recorded" in response.content.decode()
    assert BreachAssessment.objects.get(pk=assessment.pk).regulator_notified_at is not None


def test_assessing_from_the_add_page_starts_the_clock_of_any_incident(commander_client, declare):
    incident = declare()
    add = reverse("admin:forensics_breachassessment_add")
    page = commander_client.get(add, {"incident": incident.pk})
    assert page.status_code == 200
    response = commander_client.post(
        add,
        {
            "incident": incident.pk,
            "personal_data_affected": "false",
            "regulator_notification_required": "false",
            "assessment_notes": "Only service metrics.",
        },
    )

    assert response.status_code == 302
    assessment = BreachAssessment.objects.get(incident=incident)
    assert assessment.regulator_notification_required is False
    assert assessment.assessment_notes == "Only service metrics."


def test_breach_assessments_are_never_deleted(client, django_user_model, breach):
    boss = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(boss)
    url = reverse("admin:forensics_breachassessment_delete", args=[breach.breach_assessment.pk])

    assert client.post(url, {"post": "yes"}).status_code == 403


def test_the_breach_list_shows_the_short_countdown(commander_client, breach):
    body = commander_client.get(reverse("admin:forensics_breachassessment_changelist")).content
    assert "due in" in body.decode()


def test_the_custody_list_is_read_only_and_filters_by_item(commander_client, breach, upload):
    item = upload(breach)
    other = upload(breach)
    response = commander_client.get(
        reverse("admin:forensics_custodyrecord_changelist"), {"evidence": item.pk}
    )

    assert response.status_code == 200
    shown = [record.evidence_id for record in response.context["cl"].result_list]
    assert shown == [item.pk]
    assert CustodyRecord.objects.filter(evidence=other).exists()
