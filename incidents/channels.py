"""Delivery channels. A new channel is one class with `kind`, `check_address()` and
`send()`, registered."""

import hashlib
import hmac
import json
import os
import re
import time
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from .errors import DomainError

CHANNELS: dict[str, "Channel"] = {}


class DeliveryError(Exception):
    """The receiver did not take the message; the outbox will retry."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


def register(cls):
    CHANNELS[cls.kind] = cls()
    return cls


class Channel:
    kind: str

    def check_address(self, address: str) -> None:
        """Refuse an address this channel cannot deliver to (field "address")."""
        raise NotImplementedError

    def send(self, notification) -> int | None:
        """Deliver the message or raise DeliveryError; return the HTTP status if any."""
        raise NotImplementedError


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the X-Sitrep-Signature value: HMAC-SHA256 of "<timestamp>.<body>"."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def _check_url(address: str) -> None:
    if not address.startswith(("https://", "http://")):
        raise DomainError("Enter the http(s):// URL to post to.", field="address")


_client: tuple[int, httpx.Client] | None = None


def http_client() -> httpx.Client:
    """One HTTP client a process, made in the process that uses it (a cluster's workers
    are forked): httpx.post() builds a client, and its TLS context, for every call,
    which was most of a delivery's CPU; one client also keeps connections open."""
    global _client
    if _client is None or _client[0] != os.getpid():
        # A jar that takes no cookie: each delivery stands alone, as with httpx.post().
        refuse_all = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        _client = (os.getpid(), httpx.Client(cookies=refuse_all))
    return _client[1]


def _post(url: str, body: bytes, headers: dict) -> int:
    try:
        response = http_client().post(
            url, content=body, headers=headers, timeout=settings.NOTIFY_HTTP_TIMEOUT
        )
    except (httpx.HTTPError, httpx.InvalidURL) as error:  # InvalidURL is not an HTTPError
        raise DeliveryError(f"{type(error).__name__}: {error}") from None
    if not response.is_success:
        raise DeliveryError(
            f"HTTP {response.status_code}: {response.text[:200]}", response.status_code
        )
    return response.status_code


@register
class EmailChannel(Channel):
    kind = "email"

    def check_address(self, address):
        try:
            validate_email(address)
        except ValidationError:
            raise DomainError("Enter an email address.", field="address") from None

    def send(self, notification):
        message = EmailMessage(
            subject=notification.subject,
            body=notification.body,
            to=[notification.address],
            headers={"X-Sitrep-Idempotency-Key": str(notification.idempotency_key)},
        )
        try:
            message.send()
        except Exception as error:  # SMTP errors come in many classes
            raise DeliveryError(f"{type(error).__name__}: {error}") from None
        return None


@register
class WebhookChannel(Channel):
    kind = "webhook"

    def check_address(self, address):
        _check_url(address)

    def send(self, notification):
        body = json.dumps(notification.payload, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": str(notification.idempotency_key),
            "User-Agent": "Sitrep-Webhook/1",
        }
        secret = notification.target.secret if notification.target else ""
        if secret:
            headers["X-Sitrep-Signature"] = sign(secret, int(time.time()), body)
        return _post(notification.address, body, headers)


@register
class SlackChannel(Channel):
    kind = "slack"

    def check_address(self, address):
        _check_url(address)

    def send(self, notification):
        text = f"*{notification.subject}*\n{notification.body}"
        body = json.dumps({"text": text}).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": str(notification.idempotency_key),
        }
        return _post(notification.address, body, headers)


# E.164: a plus, the country code, the number; no spaces.
PHONE_NUMBER = re.compile(r"\+[1-9][0-9]{6,14}")


class PhoneChannel(Channel):
    """A text or a call, posted as signed JSON to the phone gateway (PHONE_GATEWAY_URL)."""

    def check_address(self, address):
        if not PHONE_NUMBER.fullmatch(address):
            raise DomainError(
                "Enter the phone number in international form, e.g. +442071234567.",
                field="address",
            )

    def send(self, notification):
        if not settings.PHONE_GATEWAY_URL:
            # Retried like any failure: setting the URL later still delivers it.
            raise DeliveryError("No phone gateway: set PHONE_GATEWAY_URL.")
        body = json.dumps(
            {
                "kind": self.kind,
                "to": notification.address,
                "text": f"{notification.subject}\n{notification.body}"[:1600],
                "idempotency_key": str(notification.idempotency_key),
            },
            sort_keys=True,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": str(notification.idempotency_key),
            "User-Agent": "Sitrep-Phone/1",
        }
        if settings.PHONE_GATEWAY_SECRET:
            headers["X-Sitrep-Signature"] = sign(
                settings.PHONE_GATEWAY_SECRET, int(time.time()), body
            )
        return _post(settings.PHONE_GATEWAY_URL, body, headers)


@register
class SmsChannel(PhoneChannel):
    kind = "sms"


@register
class VoiceChannel(PhoneChannel):
    kind = "voice"
