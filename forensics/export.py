"""The evidence register and its custody log as CSV: a row per item, then a row per
custody record of it (the export's own records included), for the admin and the API."""

import csv
import io
from collections.abc import Iterable, Iterator

from django.db.models import Prefetch
from django.http import HttpResponse

from .models import CustodyRecord, EvidenceItem

COLUMNS = [
    "row",
    "evidence",
    "incident",
    "kind",
    "description",
    "file_name",
    "external_location",
    "size",
    "sha256",
    "integrity",
    "last_verified_at",
    "collected_by",
    "collected_at",
    "custody_action",
    "custody_at",
    "custody_by",
    "custody_address",
    "custody_source",
    "custody_detail",
]


def _iso(moment) -> str:
    return moment.isoformat() if moment else ""


def with_custody(items) -> list[EvidenceItem]:
    """Load `items` (a queryset) with what the export prints, custody oldest first."""
    return list(
        items.select_related("incident", "collected_by").prefetch_related(
            Prefetch("custody", queryset=CustodyRecord.objects.order_by("at", "id"))
        )
    )


def rows(items: Iterable[EvidenceItem]) -> Iterator[list]:
    for item in items:
        yield [
            "item",
            item.pk,
            item.incident.reference,
            item.kind,
            item.description,
            item.original_filename,
            item.external_location,
            "" if item.size is None else item.size,
            item.sha256,
            item.integrity,
            _iso(item.last_verified_at),
            item.collected_by.get_username() if item.collected_by else "",
            _iso(item.collected_at),
            *[""] * 6,
        ]
        for record in item.custody.all():
            yield [
                "custody",
                item.pk,
                item.incident.reference,
                *[""] * 10,
                record.action,
                _iso(record.at),
                record.actor_name,
                record.address or "",
                record.source,
                record.detail,
            ]


def _defused(cell):
    # A cell a spreadsheet would run as a formula (a description starting "=HYPERLINK(")
    # is written with a leading apostrophe.
    return f"'{cell}" if isinstance(cell, str) and cell[:1] in "=+-@\t\r" else cell


def register_csv(items: Iterable[EvidenceItem]) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream)
    writer.writerow(COLUMNS)
    for row in rows(items):
        writer.writerow([_defused(cell) for cell in row])
    return stream.getvalue()


def csv_response(items: Iterable[EvidenceItem], filename: str) -> HttpResponse:
    response = HttpResponse(register_csv(items), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
