"""The communication settings: channel targets (their addresses checked against their
channel, webhook signing secrets generated) and message templates (their syntax checked).
Admin, API and CLI write them through here, never with a bare save."""

import secrets

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.template import Node, TemplateSyntaxError

from .. import notifications
from ..channels import CHANNELS
from ..errors import DomainError
from ..models import ChannelKind, ChannelTarget, MessageTemplate
from .common import clean_text, save_as

CHANNEL_TARGET_FIELDS = ("name", "kind", "address", "secret", "enabled")
SECRET_LENGTH = ChannelTarget._meta.get_field("secret").max_length


def _full_clean(instance) -> None:
    # The model's own rules (lengths, choices, a name already taken) for callers
    # without a ModelForm in front of them: the API, the CLI, scripts.
    try:
        instance.full_clean()
    except ValidationError as error:
        field, problems = next(iter(error.message_dict.items()))
        raise DomainError(
            " ".join(problems), field=None if field == NON_FIELD_ERRORS else field
        ) from None


# --- channel targets ------------------------------------------------------------------


def channel_target_check(*, kind: str, address: str) -> str:
    """Return `address` stripped; refuse an unknown kind, or an address the kind's
    channel cannot deliver to (an email channel needs an email address, a webhook or
    Slack channel the http(s) URL to post to)."""
    channel = CHANNELS.get(kind)
    if channel is None:
        raise DomainError(f"Choose one of: {', '.join(ChannelKind.values)}.", field="kind")
    address = clean_text(
        address,
        field="address",
        limit=ChannelTarget._meta.get_field("address").max_length,
        required="Give the address to deliver to.",
    )
    channel.check_address(address)
    return address


def _clean_secret(secret: str | None) -> str:
    return clean_text(secret, field="secret", limit=SECRET_LENGTH)


def _sign_if_needed(target: ChannelTarget) -> str:
    """Give a webhook without a signing secret a new one; return it ("" if none was made)."""
    if target.kind != ChannelKind.WEBHOOK or target.secret:
        return ""
    target.secret = secrets.token_urlsafe(32)
    return target.secret


@transaction.atomic
def channel_target_create(
    *, name: str, kind: str, address: str, secret: str = "", enabled: bool = True, actor
) -> tuple[ChannelTarget, str]:
    """Add somewhere messages go. Return the target with the signing secret generated
    for a webhook given none ("" otherwise): shown once, never readable again."""
    target = ChannelTarget(
        name=clean_text(
            name,
            field="name",
            limit=ChannelTarget._meta.get_field("name").max_length,
            required="Name the target.",
        ),
        kind=kind,
        address=channel_target_check(kind=kind, address=address),
        secret=_clean_secret(secret),
        enabled=bool(enabled),
    )
    generated = _sign_if_needed(target)
    _full_clean(target)
    save_as(target, actor)
    return target, generated


@transaction.atomic
def channel_target_update(*, target: ChannelTarget, actor, **changes) -> tuple[ChannelTarget, str]:
    """Change a target's name, kind, address, secret or enabled. A blank secret keeps
    the current one (it is never sent back to be re-typed). Return the target with the
    signing secret generated for a webhook left without one ("" otherwise)."""
    unknown = set(changes) - set(CHANNEL_TARGET_FIELDS)
    if unknown:
        raise DomainError(f"Cannot change {', '.join(sorted(unknown))} here.")
    # Two people saving the same webhook at once would each generate a secret and each
    # be shown theirs, while only the last one is kept: the lock serialises them.
    target = ChannelTarget.objects.select_for_update().get(pk=target.pk)
    if "name" in changes:
        target.name = clean_text(
            changes["name"],
            field="name",
            limit=ChannelTarget._meta.get_field("name").max_length,
            required="Name the target.",
        )
    target.kind = changes.get("kind", target.kind)
    # The address is checked again when only the kind changes: an email address is no
    # URL to post to.
    target.address = channel_target_check(
        kind=target.kind, address=changes.get("address", target.address)
    )
    secret = _clean_secret(changes.get("secret"))
    if secret:
        target.secret = secret
    if "enabled" in changes:
        target.enabled = bool(changes["enabled"])
    generated = _sign_if_needed(target)
    _full_clean(target)
    save_as(target, actor)
    return target, generated


# --- message templates ----------------------------------------------------------------


def check_template(text: str, *, field: str) -> str:
    """Return `text`; refuse it if Django's template engine cannot compile it — the
    engine `notifications.render_template` uses, which would otherwise fail on every
    message built from it, inside the service that sends it."""
    try:
        compiled = notifications.compile_message(text)
    except TemplateSyntaxError as error:
        raise DomainError(f"Template error: {error}", field=field) from None
    for node in compiled.nodelist.get_nodes_by_type(Node):
        tag = notifications.REFUSED_TAGS.get(type(node).__name__)
        if tag:
            raise DomainError(f"Messages cannot use {{% {tag} %}}.", field=field)
    return text


@transaction.atomic
def message_template_save(
    *,
    template: MessageTemplate | None = None,
    slug: str,
    name: str,
    audience: str,
    subject: str,
    body: str,
    actor,
) -> MessageTemplate:
    """Create a message template (no `template`) or replace the text of `template`;
    refuse a subject or body that does not compile."""
    if template is None:
        template = MessageTemplate()
    else:
        template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
    template.slug = slug
    template.name = name
    template.audience = audience
    template.subject = check_template(subject, field="subject")
    template.body = check_template(body, field="body")
    _full_clean(template)
    save_as(template, actor)
    return template
