"""How a monitoring system proves it is the source it says: its secret as a bearer
token (Alertmanager, scripts), or an HMAC-SHA256 of the body under that secret (Grafana,
which signs `"<timestamp>:" + body` when its timestamp header is set)."""

import math
import time

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .. import secrets
from ..models import AlertSource


class SourceDisabled(exceptions.PermissionDenied):
    default_detail = "This alert source is disabled."
    default_code = "source_disabled"


class AlertSourceAuthentication(authentication.BaseAuthentication):
    """Sets `request.auth` to the AlertSource; `request.user` stays anonymous."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return AnonymousUser(), self._by_token(token.strip())
        return AnonymousUser(), self._by_signature(request)

    def authenticate_header(self, request):
        return 'Bearer realm="alert sources"'

    def _by_token(self, token: str) -> AlertSource:
        source_id = secrets.source_id_in(token)
        source = AlertSource.objects.filter(pk=source_id).first() if source_id else None
        if source is None or not secrets.token_matches(source, token):
            raise exceptions.AuthenticationFailed("Unknown alert source secret.")
        return _enabled(source)

    def _by_signature(self, request) -> AlertSource:
        name = request.query_params.get("source", "")
        source = AlertSource.objects.filter(name=name).first() if name else None
        if source is None:
            raise exceptions.NotAuthenticated(
                "Send 'Authorization: Bearer <source secret>', or sign the body and name "
                "the source in the URL (?source=<name>)."
            )
        signature = request.headers.get(source.signature_header, "")
        if not signature:
            raise exceptions.NotAuthenticated(
                f"No {source.signature_header} header: sign the body or send the bearer secret."
            )
        stamp = request.headers.get(source.timestamp_header) if source.timestamp_header else None
        if stamp is not None:
            _check_fresh(stamp)
        if not secrets.signature_matches(source, signature, request.body, stamp):
            raise exceptions.AuthenticationFailed("The signature does not match the body.")
        return _enabled(source)


def _enabled(source: AlertSource) -> AlertSource:
    if not source.enabled:
        raise SourceDisabled(f"The alert source {source.name} is disabled.")
    return source


def _check_fresh(stamp: str) -> None:
    """Refuse a signed request whose timestamp is far from now (a replay)."""
    try:
        seconds = float(stamp)
    except ValueError:
        raise exceptions.AuthenticationFailed("The timestamp header is not a Unix time.") from None
    if not math.isfinite(seconds):
        raise exceptions.AuthenticationFailed("The timestamp header is not a Unix time.")
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    if abs(time.time() - seconds) > settings.ALERTS_SIGNATURE_MAX_SKEW.total_seconds():
        raise exceptions.AuthenticationFailed(
            "The signature's timestamp is too old or in the future."
        )


class AlertSourceAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = AlertSourceAuthentication
    name = "alertSourceSecret"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The alert source's secret (create_alert_source prints it), or "
            "an HMAC-SHA256 signature header with ?source=<name>.",
        }
