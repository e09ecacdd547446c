"""A source's secret: derived from SECRET_KEY and the source's salt, never stored.

The secret reads `<source id>.<hex>`: a bearer token names its source by itself. Senders
that sign (Grafana) use the whole secret as the HMAC key and name the source in the URL
(`?source=<name>`). Rotating SECRET_KEY keeps old secrets working while the old key is
in SECRET_KEY_FALLBACKS, as Django's own signatures do."""

import hashlib
import hmac
import secrets as random

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

KEY_SALT = "sitrep.alerts.source-secret"


def new_salt() -> str:
    return random.token_hex(16)


def _derive(source_id: int, salt: str, secret_key: str) -> str:
    digest = salted_hmac(KEY_SALT, f"{source_id}:{salt}", secret=secret_key, algorithm="sha256")
    return f"{source_id}.{digest.hexdigest()}"


def secret_of(source) -> str:
    """Return the source's current secret (shown once, when made or rotated)."""
    return _derive(source.pk, source.secret_salt, settings.SECRET_KEY)


def hint_of(secret: str) -> str:
    return f"…{secret[-4:]}"


def source_id_in(token: str) -> int | None:
    """Return the source id a bearer token names, or None if it names none."""
    head, _, _ = token.partition(".")
    return int(head) if head.isdigit() and len(head) < 19 else None


def _candidates(source):
    for key in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        yield _derive(source.pk, source.secret_salt, key)


def token_matches(source, token: str) -> bool:
    return any(constant_time_compare(token, secret) for secret in _candidates(source))


def signature_matches(source, signature: str, body: bytes, timestamp: str | None) -> bool:
    """Check a hex HMAC-SHA256 of the body (or of "<timestamp>:" + body, Grafana's form)."""
    message = f"{timestamp}:".encode() + body if timestamp else body
    signature = signature.strip().lower().removeprefix("sha256=")
    return any(
        constant_time_compare(
            signature, hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        )
        for secret in _candidates(source)
    )
