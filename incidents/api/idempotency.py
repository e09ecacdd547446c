"""Idempotency-Key for create requests, the way payment APIs do it.

The first successful response per (user, key) is stored in the same transaction as
the write it describes; a retry with the same body gets that response again and
changes nothing; the same key with another body is refused (422).
"""

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.response import Response

from incidents.models import IdempotencyRecord

from .errors import IdempotencyKeyReused

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = IdempotencyRecord._meta.get_field("key").max_length

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type={"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    location=OpenApiParameter.HEADER,
    required=False,
    description=f"Any unique string of 1 to {MAX_KEY_LENGTH} characters (a UUID): a retry "
    "with the same key and body returns the first response and creates nothing new. "
    "Kept for 24 hours.",
)


def _fingerprint(request) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, default=str)
    except TypeError:
        body = request.body.decode("utf-8", "replace")
    raw = f"{request.method} {request.path}\n{body}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    response = Response(record.response_body, status=record.response_status)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(request, run: Callable[[], Response]) -> Response:
    """Run `run()` once per Idempotency-Key; replay its response on retries."""
    key = request.headers.get(HEADER)
    if key is None:
        return run()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise exceptions.ValidationError({HEADER: [f"Give 1 to {MAX_KEY_LENGTH} characters."]})
    fingerprint = _fingerprint(request)
    existing = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
    if existing is not None:
        return _replay(existing, fingerprint)
    try:
        with transaction.atomic():
            response = run()
            if 200 <= response.status_code < 300:
                # A concurrent request with the same key inserts the same row; the
                # unique constraint makes the loser roll back its write entirely.
                IdempotencyRecord.objects.create(
                    user=request.user,
                    key=key,
                    fingerprint=fingerprint,
                    response_status=response.status_code,
                    response_body=response.data,
                )
            return response
    except IntegrityError:
        winner = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
        if winner is None:
            raise  # not the key's constraint: a real error
        return _replay(winner, fingerprint)
