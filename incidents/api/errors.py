"""One error shape for every 4xx: {"type": ..., "errors": [{"code", "detail", "attr"}]}.

drf-standardized-errors formats DRF's own errors; domain errors from the services are
mapped here: a refused value is a 400 naming the field, a clash with the incident's
state (an illegal transition, already acknowledged) is a 409.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views import defaults
from drf_standardized_errors.handler import ExceptionHandler
from drf_standardized_errors.openapi_serializers import ClientErrorEnum
from rest_framework import exceptions, serializers, status

from incidents.errors import DomainError, StateConflict


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request."
    default_code = "idempotency_key_reused"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than the limit of {limit:,} bytes.")


class SitrepExceptionHandler(ExceptionHandler):
    def convert_known_exceptions(self, exc):
        if isinstance(exc, RequestDataTooBig):
            # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE before reading it.
            return RequestTooLarge()
        if isinstance(exc, StateConflict):
            return Conflict(detail=exc.message)
        if isinstance(exc, DomainError):
            return exceptions.ValidationError({exc.field or "non_field_errors": [exc.message]})
        return super().convert_known_exceptions(exc)


class _Error(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorResponse409Serializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = _Error(many=True)


class ErrorResponse413Serializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = _Error(many=True)


class ErrorResponse422Serializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = _Error(many=True)


# Django's error views, for what DRF's own handler does not answer (a URL no view
# matched, a PermissionDenied outside the API's views, a crash): under /api/ in the API's
# error shape, elsewhere the styled pages (templates/404.html, 403.html, 500.html).


def _api_error(status: int, kind: str, code: str, detail: str) -> JsonResponse:
    error = {"code": code, "detail": detail, "attr": None}
    return JsonResponse({"type": kind, "errors": [error]}, status=status)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception):
    """404: the API's error shape under /api/, the styled page elsewhere."""
    if _is_api(request):
        return _api_error(404, "client_error", "not_found", "No such endpoint or record.")
    return defaults.page_not_found(request, exception)


def permission_denied(request, exception):
    """403: the API's error shape under /api/, the styled page elsewhere."""
    if _is_api(request):
        detail = "You do not have permission to perform this action."
        return _api_error(403, "client_error", "permission_denied", detail)
    return defaults.permission_denied(request, exception)


def server_error(request):
    """500: the API's error shape under /api/, the styled page elsewhere. The page is
    static (templates/500.html): it must render when the database is what failed."""
    if _is_api(request):
        detail = "Something went wrong on our side; it has been logged."
        return _api_error(500, "server_error", "error", detail)
    return defaults.server_error(request)
