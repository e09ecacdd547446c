"""The download of an evidence file: signed-in staff with the view permission, on an
incident they may see (404 otherwise, as for the incident itself), and a custody record
written before the first byte goes out."""

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse
from django.views.decorators.http import require_GET

from incidents.models import Source

from .queries import evidence_list_visible_to
from .services import EvidenceUnavailable, address_of, evidence_open


def file_response(item, handle) -> FileResponse:
    """Stream the file as an attachment the browser must not render or guess at."""
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=item.download_name,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@staff_member_required
def download(request, pk: int):
    if not request.user.has_perm("forensics.view_evidenceitem"):
        raise PermissionDenied
    item = evidence_list_visible_to(request.user).select_related("incident").filter(pk=pk).first()
    if item is None:
        raise Http404("No such evidence item, or not visible to you.")
    try:
        handle = evidence_open(
            item=item, actor=request.user, source=Source.ADMIN, address=address_of(request)
        )
    except EvidenceUnavailable as error:
        return HttpResponse(error.message, status=409, content_type="text/plain; charset=utf-8")
    return file_response(item, handle)
