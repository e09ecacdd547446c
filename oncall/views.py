"""The pages a link in a message opens, without signing in (the signed token is the key):
acknowledging a page, and verifying a contact method. A GET only shows what the link is
for and changes nothing — mail scanners and link previews fetch every link they see —;
the page's button POSTs, with the CSRF token, and that acts."""

from django.core import signing
from django.shortcuts import render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from incidents.errors import DomainError, StateConflict
from incidents.models import Source

from .models import ContactMethod, Page
from .services import contacts, paging

# The link is clicked from a message, outside the admin and the API: its changes come in
# over HTTP like the API's, and no new kind of source is needed for them.
LINK_SOURCE = Source.API


def _refusal_status(token: str, salt: str, exists) -> int:
    """400 for a link we never signed, 404 for one whose record is gone, 410 for one we
    signed that no longer works (expired, or its address changed)."""
    try:
        value = signing.loads(token, salt=salt)
    except signing.BadSignature:
        return 400
    return 410 if exists(value) else 404


def _refused(request, message: str, status: int):
    return render(
        request,
        "oncall/link_refused.html",
        {"message": message, "expired": status == 410},
        status=status,
    )


# --- acknowledging a page -------------------------------------------------------------


def _page_exists(value) -> bool:
    return isinstance(value, int) and Page.objects.filter(pk=value).exists()


def _acknowledged_by(page: Page):
    """Who acknowledged the page (its history row says; the admin lets a commander)."""
    record = (
        page.history.filter(acknowledged_at__isnull=False)
        .select_related("history_user")
        .order_by("history_date")
        .first()
    )
    return record.history_user if record is not None and record.history_user else page.user


def _page_context(page: Page, **extra) -> dict:
    incident = page.incident
    return {
        "page": page,
        "incident": incident,
        "severity": incident.severity.key,
        # The link reaches whoever holds it: a confidential incident keeps its title.
        "title": None if incident.confidential else incident.title,
        "paged": page.user.get_full_name() or page.user.get_username(),
        # …and what the page said of it (a commander's words when paged by hand).
        "why": page.get_reason_display()
        if incident.confidential
        else page.message or page.get_reason_display(),
        **extra,
    }


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def acknowledge(request, token: str):
    """Show what the page is about; acknowledge it when its button is pressed."""
    try:
        page = paging.page_from_token(token)
    except DomainError as error:
        status = _refusal_status(token, paging.ACK_SALT, _page_exists)
        return _refused(request, error.message, status)
    if request.method == "POST" and page.acknowledged_at is None:
        try:
            page = paging.page_acknowledge(
                page=page, actor=page.user, via="link", source=LINK_SOURCE
            )
        except StateConflict as error:
            page.refresh_from_db()
            if page.acknowledged_at is None:  # the incident changed under it: say why
                return _refused(request, error.message, 409)
        else:
            return render(request, "oncall/acknowledge.html", _page_context(page, done=True))
    if page.acknowledged_at is not None:
        context = _page_context(page, already=True, acknowledged_by=_acknowledged_by(page))
        return render(request, "oncall/acknowledge.html", context, status=409)
    return render(request, "oncall/acknowledge.html", _page_context(page))


# --- verifying a contact method -------------------------------------------------------


def _method_exists(value) -> bool:
    pk = value.get("method") if isinstance(value, dict) else None
    return isinstance(pk, int) and ContactMethod.objects.filter(pk=pk).exists()


def _method_context(method: ContactMethod, **extra) -> dict:
    return {
        "method": method,
        "owner": method.user.get_full_name() or method.user.get_username(),
        **extra,
    }


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def verify_contact(request, token: str):
    """Show which contact method the link verifies; verify it when its button is pressed."""
    try:
        method = contacts.contact_method_from_token(token)
    except DomainError as error:
        status = _refusal_status(token, contacts.VERIFY_SALT, _method_exists)
        return _refused(request, error.message, status)
    if request.method == "POST" and method.verified_at is None:
        try:
            method = contacts.contact_method_verify(token=token, source=LINK_SOURCE)
        except StateConflict:
            method.refresh_from_db()
        except DomainError as error:  # its address changed meanwhile
            status = _refusal_status(token, contacts.VERIFY_SALT, _method_exists)
            return _refused(request, error.message, status)
        else:
            return render(request, "oncall/verify_contact.html", _method_context(method, done=True))
    if method.verified_at is not None:
        context = _method_context(method, already=True)
        return render(request, "oncall/verify_contact.html", context, status=409)
    return render(request, "oncall/verify_contact.html", _method_context(method))


urlpatterns = [
    path("acknowledge/<str:token>/", acknowledge, name="acknowledge"),
    path("contacts/verify/<str:token>/", verify_contact, name="verify-contact"),
]
