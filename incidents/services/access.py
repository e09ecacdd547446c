"""API keys (stored hashed, shown once) and the idempotency records of API writes."""

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ..errors import DomainError, StateConflict
from ..models import APIKey, IdempotencyRecord
from .common import acting_user, clean_text, save_as

API_KEY_PREFIX = "sitrep_"
# Ten years: a key meant to last longer should not expire (leave the days empty).
API_KEY_MAX_DAYS = 3650


def hash_api_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def check_key_name(name) -> str:
    """Return the key's name cleaned, or refuse it."""
    return clean_text(
        name,
        field="name",
        limit=APIKey._meta.get_field("name").max_length,
        required="Name the key after what will use it.",
    )


@transaction.atomic
def api_key_create(
    *, user, name: str, expires_in_days: int | None = None, actor=None
) -> tuple[APIKey, str]:
    """Create a key for `user`; return it with the plaintext, which is never stored."""
    name = check_key_name(name)
    if expires_in_days is not None and not 1 <= expires_in_days <= API_KEY_MAX_DAYS:
        raise DomainError(f"Must be from 1 to {API_KEY_MAX_DAYS:,} days.", field="expires_in_days")
    if not user.is_active:
        raise DomainError(f"{user.get_username()} is not an active user.", field="user")
    acting = acting_user(actor)
    if acting is not None and not acting.is_superuser and acting.pk != user.pk:
        # A key acts with its user's permissions: minting one for someone else would
        # hand out their rights.
        raise DomainError("Only superusers may create keys for other people.", field="user")
    prefix = secrets.token_hex(4)
    plaintext = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = APIKey(
        name=name,
        user=user,
        prefix=prefix,
        hashed_key=hash_api_key(plaintext),
        created_by=acting_user(actor),
        expires_at=(timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None),
    )
    save_as(key, actor)
    return key, plaintext


@transaction.atomic
def api_key_revoke(*, key: APIKey, actor=None) -> APIKey:
    """Stop the key from working, at once and for good."""
    key = APIKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is not None:
        raise StateConflict(f"{key} was already revoked.")
    key.revoked_at = timezone.now()
    save_as(key, actor)
    return key


def idempotency_records_prune(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Forget stored responses older than a day; return how many were removed."""
    deleted, _ = IdempotencyRecord.objects.filter(
        created_at__lt=timezone.now() - older_than
    ).delete()
    return deleted
