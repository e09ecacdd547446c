"""`Authorization: Bearer <key>` with hashed, expiring, revocable API keys."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from incidents.models import APIKey
from incidents.services import hash_api_key

# Recording every request would turn reads into writes; a minute's precision is plenty.
LAST_USED_PRECISION = timedelta(minutes=1)


class APIKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None  # not ours: let session authentication try
        token = token.strip()
        if not token or " " in token:
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Bearer <key>'.")
        key = APIKey.objects.select_related("user").filter(hashed_key=hash_api_key(token)).first()
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        now = timezone.now()
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        if key.expires_at is not None and key.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        if not key.user.is_active:
            raise exceptions.AuthenticationFailed("The key's user is inactive.")
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_PRECISION:
            # .update(): no history row for a mere use of the key.
            APIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return key.user, key

    def authenticate_header(self, request):
        return self.keyword  # makes failures 401 with WWW-Authenticate, not 403


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = APIKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from the admin or `manage.py create_api_key`.",
        }
