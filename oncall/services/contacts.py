"""Contact methods and paging rules: where a person can be paged, and how.

A contact method is paged only once its owner has followed the link of a test message
sent to it (`plans_for` reads verified methods only): a mistyped number never swallows a
page. The link names the method and its address, so changing the address unverifies the
method and voids the links already sent.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from incidents import notifications
from incidents.channels import CHANNELS
from incidents.errors import DomainError, StateConflict
from incidents.models import ChannelKind
from incidents.services import acting_user, clean_text, save_as

from ..models import ContactMethod, PagingRule, Urgency
from ..vocabulary import Event

VERIFY_SALT = "sitrep.oncall.contact-verify"
VERIFY_MAX_AGE = timedelta(days=7)
# A test message costs a text or a call on a phone gateway: one a minute per method.
TEST_COOLDOWN = timedelta(minutes=1)

MAX_DELAY = timedelta(hours=24)
MIN_REPEAT_EVERY = timedelta(minutes=1)
MAX_REPEAT_EVERY = timedelta(hours=24)
# Each repeat is a step of every page's plan: a plan of hundreds of texts is a mistake.
MAX_REPEAT_TIMES = 20

ADDRESS_LENGTH = ContactMethod._meta.get_field("address").max_length
LABEL_LENGTH = ContactMethod._meta.get_field("label").max_length
KINDS = [kind.value for kind in ContactMethod.KINDS]


def _history(instance, actor, source: str) -> None:
    # The history row says where the change came from (admin, API, a verification link).
    instance._change_reason = f"via {source}"
    save_as(instance, actor)


def may_manage_contacts_of(actor, user) -> bool:
    """Return True if `actor` may change `user`'s contact methods and paging rules:
    their own, or anyone's with the change permission (and the system, actor None)."""
    if actor is None:
        return True
    if acting_user(actor) is None:
        return False
    return actor.pk == user.pk or actor.has_perm("oncall.change_contactmethod")


def _check_may_manage(actor, user) -> None:
    if not may_manage_contacts_of(actor, user):
        raise DomainError(
            "You may change only your own contact methods and paging rules.", field="user"
        )


# --- contact methods ------------------------------------------------------------------


def _locked(method: ContactMethod) -> ContactMethod:
    # of=("self",): lock the method, not its owner's user row that every write joins.
    return (
        ContactMethod.objects.select_for_update(of=("self",))
        .select_related("user")
        .get(pk=method.pk)
    )


def _check_public_url(address: str) -> None:
    """Refuse a webhook that is not https://, or whose host is this machine or a private,
    link-local or reserved address (ONCALL_PRIVATE_WEBHOOKS allows them)."""
    parts = urlsplit(address)
    if parts.scheme != "https":
        raise DomainError("A webhook to be paged by must be an https:// address.", field="address")
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if (
        not host
        or host == "localhost"
        or host.endswith((".localhost", ".local", ".internal"))
        or (ip is not None and not ip.is_global)
    ):
        raise DomainError(
            "A webhook to be paged by must be on a public address, not this machine or the "
            "internal network.",
            field="address",
        )


def contact_method_check(*, user, kind: str, address, method: ContactMethod | None = None) -> str:
    """Return `address` stripped; refuse a kind people cannot be paged by, an address its
    channel cannot deliver to, or one `user` already has for that kind."""
    if kind not in KINDS:
        raise DomainError(f"Choose one of: {', '.join(KINDS)}.", field="kind")
    address = clean_text(
        address, field="address", limit=ADDRESS_LENGTH, required="Give the address to page."
    )
    CHANNELS[kind].check_address(address)
    if kind in (ChannelKind.WEBHOOK, ChannelKind.SLACK) and not settings.ONCALL_PRIVATE_WEBHOOKS:
        _check_public_url(address)
    taken = ContactMethod.objects.filter(user=user, kind=kind, address=address)
    if method is not None and method.pk is not None:
        taken = taken.exclude(pk=method.pk)
    if taken.exists():
        raise DomainError(
            f"{user.get_username()} already has this {kind} address.", field="address"
        )
    return address


@transaction.atomic
def contact_method_create(
    *, user, kind: str, address: str, label: str = "", actor, source: str
) -> ContactMethod:
    """Add a way to page `user` (unverified until its test message's link is followed)."""
    _check_may_manage(actor, user)
    method = ContactMethod(
        user=user,
        kind=kind,
        address=contact_method_check(user=user, kind=kind, address=address),
        label=clean_text(label, field="label", limit=LABEL_LENGTH),
    )
    _history(method, actor, source)
    return method


@transaction.atomic
def contact_method_update(
    *,
    method: ContactMethod,
    kind: str | None = None,
    address: str | None = None,
    label: str | None = None,
    actor,
    source: str,
) -> ContactMethod:
    """Change a contact method's kind, address or label (None: unchanged). A new kind
    or address is unverified again: it must prove it reaches its owner."""
    method = _locked(method)
    _check_may_manage(actor, method.user)
    kind = method.kind if kind is None else kind
    address = method.address if address is None else address
    address = contact_method_check(user=method.user, kind=kind, address=address, method=method)
    if (kind, address) != (method.kind, method.address):
        method.verified_at = None
        method.verification_sent_at = None
    method.kind, method.address = kind, address
    if label is not None:
        method.label = clean_text(label, field="label", limit=LABEL_LENGTH)
    _history(method, actor, source)
    return method


@transaction.atomic
def contact_method_delete(*, method: ContactMethod, actor, source: str) -> None:
    """Remove a contact method and the paging rules that use it."""
    method = _locked(method)
    _check_may_manage(actor, method.user)
    method._change_reason = f"via {source}"
    user = acting_user(actor)
    if user is not None:
        method._history_user = user
        for rule in method.paging_rules.all():
            rule._history_user = user
            rule.delete()
    method.delete()


def _fingerprint(method: ContactMethod) -> str:
    # The token carries a digest, not the address: a token is readable by whoever holds it.
    digest = hashlib.sha256(f"{method.kind}:{method.address}".encode()).hexdigest()
    return digest[:24]


def verify_token(method: ContactMethod) -> str:
    return signing.dumps(
        {"method": method.pk, "address": _fingerprint(method)}, salt=VERIFY_SALT, compress=False
    )


def verify_link(method: ContactMethod) -> str:
    """The signed link that verifies `method` (for VERIFY_MAX_AGE, while its address holds)."""
    return settings.SITE_URL + reverse("oncall:verify-contact", args=[verify_token(method)])


@transaction.atomic
def contact_method_send_test(*, method: ContactMethod, actor) -> ContactMethod:
    """Send a test message to the method, with the link that verifies it."""
    method = _locked(method)
    _check_may_manage(actor, method.user)
    now = timezone.now()
    if method.verification_sent_at and method.verification_sent_at > now - TEST_COOLDOWN:
        raise StateConflict(
            f"A test message went to {method.address} less than a minute ago; "
            "wait for it before sending another."
        )
    link = verify_link(method)
    body = (
        f"This is a test message from Sitrep to {method.get_kind_display()} {method.address}"
        f"{f' ({method.label})' if method.label else ''}, one of the ways "
        f"{method.user.get_username()} can be paged.\n\n"
        f"Follow this link to confirm it reaches you; until then no page uses it:\n{link}\n\n"
        f"The link works for {VERIFY_MAX_AGE.days} days."
    )
    notifications.notify_many(
        [
            notifications.Message(
                None,
                Event.CONTACT_TEST,
                subject="Sitrep: confirm this contact method for paging",
                message=body,
                contacts=[(method.kind, method.address, method.user)],
            )
        ]
    )
    method.verification_sent_at = now
    _history(method, actor, "test message")
    return method


class LinkExpired(DomainError):
    """A signed link that was genuine but no longer works (too old, or its address changed)."""


def contact_method_from_token(token: str, *, lock: bool = False) -> ContactMethod:
    """Return the method a verification link names; DomainError if the link was tampered
    with, has expired, or was sent to an address the method no longer has."""
    try:
        data = signing.loads(token, salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE)
    except signing.SignatureExpired:
        raise LinkExpired(
            "This verification link has expired: send a new test message from Sitrep."
        ) from None
    except signing.BadSignature:
        raise DomainError("This verification link is not valid.") from None
    if not isinstance(data, dict) or not isinstance(data.get("method"), int):
        raise DomainError("This verification link is not valid.")
    methods = ContactMethod.objects.select_related("user")
    if lock:
        methods = methods.select_for_update(of=("self",))
    method = methods.filter(pk=data["method"]).first()
    if method is None:
        raise DomainError("This contact method no longer exists.")
    if data.get("address") != _fingerprint(method):
        raise LinkExpired(
            "This link was sent to an address the contact method no longer has: "
            "send a new test message from Sitrep."
        )
    return method


@transaction.atomic
def contact_method_verify(*, token: str, source: str) -> ContactMethod:
    """Mark the method the link names verified: from now on pages may use it."""
    # Locked: an address changed at the same moment voids the link, not the change.
    method = contact_method_from_token(token, lock=True)
    if method.verified_at is not None:
        raise StateConflict(
            f"{method.get_kind_display()} {method.address} was already verified at "
            f"{method.verified_at:%Y-%m-%d %H:%M} UTC."
        )
    method.verified_at = timezone.now()
    # The link is its owner's: the history row names them.
    _history(method, method.user, source)
    return method


# --- paging rules ---------------------------------------------------------------------


def paging_rule_check(
    *,
    user,
    urgency: str,
    contact_method: ContactMethod,
    delay: timedelta,
    repeat_every: timedelta | None,
    repeat_times: int,
) -> None:
    """Refuse a rule that could not page as written (each refusal names its field)."""
    if urgency not in Urgency.values:
        raise DomainError(f"Choose one of: {', '.join(Urgency.values)}.", field="urgency")
    if contact_method is None or contact_method.user_id != user.pk:
        raise DomainError(
            f"Choose one of {user.get_username()}'s own contact methods.", field="contact_method"
        )
    if not isinstance(delay, timedelta) or not timedelta(0) <= delay <= MAX_DELAY:
        raise DomainError("Give a delay from 0 to 24 hours.", field="delay")
    if not isinstance(repeat_times, int) or not 0 <= repeat_times <= MAX_REPEAT_TIMES:
        raise DomainError(f"Repeat from 0 to {MAX_REPEAT_TIMES} times.", field="repeat_times")
    if repeat_times and repeat_every is None:
        raise DomainError("Say how often to repeat.", field="repeat_every")
    if repeat_every is not None and not MIN_REPEAT_EVERY <= repeat_every <= MAX_REPEAT_EVERY:
        raise DomainError("Repeat every 1 minute to 24 hours.", field="repeat_every")


@transaction.atomic
def paging_rule_save(
    *,
    rule: PagingRule | None = None,
    user,
    urgency: str,
    contact_method: ContactMethod,
    delay: timedelta = timedelta(0),
    repeat_every: timedelta | None = None,
    repeat_times: int = 0,
    actor,
    source: str,
) -> PagingRule:
    """Add a paging rule for `user`, or change `rule`. Pages already started keep the
    plan they started with; the next page follows the rule as saved."""
    if rule is not None:
        rule = PagingRule.objects.select_for_update().get(pk=rule.pk)
        if rule.user_id != user.pk:
            raise DomainError("A paging rule stays with the person it pages.", field="user")
    _check_may_manage(actor, user)
    paging_rule_check(
        user=user,
        urgency=urgency,
        contact_method=contact_method,
        delay=delay,
        repeat_every=repeat_every,
        repeat_times=repeat_times,
    )
    rule = rule or PagingRule(user=user)
    rule.urgency = urgency
    rule.contact_method = contact_method
    rule.delay = delay
    rule.repeat_every = repeat_every
    rule.repeat_times = repeat_times
    _history(rule, actor, source)
    return rule


@transaction.atomic
def paging_rule_delete(*, rule: PagingRule, actor, source: str) -> None:
    """Remove a paging rule (pages already started keep their plan)."""
    rule = PagingRule.objects.select_for_update(of=("self",)).select_related("user").get(pk=rule.pk)
    _check_may_manage(actor, rule.user)
    rule._change_reason = f"via {source}"
    user = acting_user(actor)
    if user is not None:
        rule._history_user = user
    rule.delete()
