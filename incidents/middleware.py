"""Refusals that hold for every page, admin and API alike."""

from django.core.exceptions import TooManyFieldsSent
from django.http import HttpResponseBadRequest, JsonResponse

NUL = "\x00"


class RefuseNulMiddleware:
    """Answer 400 to a request whose path or query string holds a NUL character, and
    drop cookies that hold one.

    No filter, search or lookup has a use for one, and PostgreSQL refuses it in a query
    with an error (a 500), so it is turned away once here, before any view reads it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # A cookie holding a NUL is no cookie of ours (the session key would reach the
        # database with it): treat it as absent, so its owner is merely signed out.
        request.COOKIES = {
            name: value for name, value in request.COOKIES.items() if NUL not in name + value
        }
        try:
            offending = _first_with_nul(request)
        except TooManyFieldsSent as error:
            return _refuse(request, "too_many_fields", str(error))
        if offending is None:
            return self.get_response(request)
        detail = f"Null characters are not allowed ({offending})."
        return _refuse(request, "null_characters_not_allowed", detail)


def _first_with_nul(request) -> str | None:
    """Return where the first NUL is (the path, or a query parameter), or None."""
    if NUL in request.path:
        return "in the path"
    for name, values in request.GET.lists():
        if NUL in name or any(NUL in value for value in values):
            return f"in {name.replace(NUL, '')!r}"
    return None


def _refuse(request, code: str, detail: str):
    """A 400 in the API's error shape under /api/, plain text elsewhere."""
    if request.path.startswith("/api/"):
        # attr is null: the schema documents this error on every operation that way.
        error = {"code": code, "detail": detail, "attr": None}
        return JsonResponse({"type": "validation_error", "errors": [error]}, status=400)
    return HttpResponseBadRequest(detail, content_type="text/plain; charset=utf-8")
