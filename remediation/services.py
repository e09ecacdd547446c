"""Every write to an action item: create, edit, move through its statuses, note progress.

Each service runs in one transaction, locks the item, refuses bad moves with the core's
domain errors, records an ActionItemUpdate and the acting user in history, writes the
step on the incident's timeline and queues notifications — all or nothing.
"""

from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from incidents import notifications
from incidents.errors import DomainError, StateConflict
from incidents.models import Incident
from incidents.queries import user_may_see_incident
from incidents.services import (
    acting_user,
    check_may_see,
    clean_text,
    save_as,
    timeline_record,
)
from postmortems.extensions import PublishRequest
from postmortems.models import PostMortem

from . import vocabulary
from .models import ActionItem, ActionItemUpdate
from .vocabulary import Event

Status = ActionItem.Status

# The item lifecycle, in one table. Done and won't-do may be reopened.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset({Status.IN_PROGRESS, Status.BLOCKED, Status.DONE, Status.WONT_DO}),
    Status.IN_PROGRESS: frozenset({Status.OPEN, Status.BLOCKED, Status.DONE, Status.WONT_DO}),
    Status.BLOCKED: frozenset({Status.OPEN, Status.IN_PROGRESS, Status.DONE, Status.WONT_DO}),
    Status.DONE: frozenset({Status.OPEN}),
    Status.WONT_DO: frozenset({Status.OPEN}),
}

EDITABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "category",
        "priority",
        "owner",
        "team",
        "due_on",
        "effort",
        "tracker_key",
        "tracker_url",
        "verification_note",
    }
)
TEXT_LIMIT = 20_000


def default_due_on(priority: str, today: date | None = None) -> date:
    """Return the due date the priority gives an item created `today`."""
    return (today or timezone.localdate()) + timedelta(days=settings.ACTION_ITEM_DUE_DAYS[priority])


# --- helpers --------------------------------------------------------------------------


def _lock(item: ActionItem) -> ActionItem:
    # Two people moving one item at once must not both read the old status.
    return (
        ActionItem.objects.select_for_update(of=("self",))
        .select_related("incident", "owner", "postmortem")
        .get(pk=item.pk)
    )


def _record(item: ActionItem, kind: str, actor, note: str = "", **statuses) -> None:
    update = ActionItemUpdate(
        item=item, kind=kind, note=note, author=acting_user(actor), **statuses
    )
    save_as(update, actor)


def _on_timeline(item: ActionItem, summary: str, actor, source: str) -> None:
    timeline_record(
        item.incident,
        kind=vocabulary.Kind.FOLLOW_UP,
        summary=summary,
        actor=actor,
        source=source,
        occurred_at=timezone.now(),
        details={"action_item": item.pk},
    )


def item_link(item: ActionItem) -> str:
    return f"{settings.SITE_URL}{reverse('admin:remediation_actionitem_change', args=[item.pk])}"


def _tell_owner(item: ActionItem, subject: str, message: str, actor) -> None:
    """Notify the item's owner (not when they acted themselves)."""
    owner, acting = item.owner, acting_user(actor)
    if owner is None or (acting is not None and owner.pk == acting.pk):
        return
    if not user_may_see_incident(owner, item.incident):
        return  # the incident became confidential after they were given the item
    notifications.notify(
        item.incident,
        Event.FOLLOW_UP,
        users=[owner],
        subject=f"{subject}: {item.title} ({item.incident.reference})",
        message=f"{message}\n\n{item_link(item)}",
    )


def _check_fields(fields: dict, incident: Incident) -> dict:
    """Validate and normalise the writable fields; return them cleaned."""
    for name in ("title", "description", "verification_note", "team", "tracker_key", "tracker_url"):
        if name in fields:
            fields[name] = clean_text(
                fields[name],
                field=name,
                # The column's own limit where it has one, so no write fails in the database.
                limit=ActionItem._meta.get_field(name).max_length or TEXT_LIMIT,
                required="A title is required." if name == "title" else None,
            )
    for name, choices in (
        ("category", ActionItem.Category),
        ("priority", ActionItem.Priority),
        ("effort", ActionItem.Effort),
    ):
        if name in fields and fields[name] not in choices.values:
            allowed = ", ".join(choices.values)
            raise DomainError(f"Unknown {name} {fields[name]!r}; use one of {allowed}.", field=name)
    url = fields.get("tracker_url", "")
    if url and not url.startswith(("https://", "http://")):
        raise DomainError("Give an http(s) link to the tracker issue.", field="tracker_url")
    owner = fields.get("owner")
    if owner is not None:
        if not owner.is_active:
            raise DomainError(f"{owner.get_username()} is not an active user.", field="owner")
        check_may_see(owner, incident, "owner")
    if "due_on" in fields and not isinstance(fields["due_on"], date):
        raise DomainError("Give a date.", field="due_on")
    return fields


# --- creating and editing -------------------------------------------------------------


@transaction.atomic
def action_item_create(
    *,
    title: str,
    category: str,
    incident: Incident | None = None,
    postmortem: PostMortem | None = None,
    source: str,
    priority: str = ActionItem.Priority.P3,
    actor=None,
    **fields,
) -> ActionItem:
    """Record follow-up work for an incident, or for its review (then on its incident)."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise DomainError(f"Cannot set {', '.join(sorted(unknown))} here.")
    if postmortem is not None:
        if incident is not None and incident.pk != postmortem.incident_id:
            raise DomainError("The review belongs to another incident.", field="postmortem")
        # Locked: a publication committing meanwhile must not end up with a new item.
        postmortem = PostMortem.objects.select_for_update().get(pk=postmortem.pk)
        incident = postmortem.incident
        if postmortem.is_published:
            raise StateConflict(
                f"The post-mortem of {incident.reference} is published; reopen it to add "
                "action items, or add them to the incident.",
                field="postmortem",
            )
    if incident is None:
        raise DomainError("Say which incident (or post-mortem) it follows up.", field="incident")
    acting = acting_user(actor)
    if acting is not None and not user_may_see_incident(acting, incident):
        raise DomainError(f"No incident {incident.reference} that you may see.", field="incident")
    if fields.get("due_on") is None:
        fields.pop("due_on", None)  # empty: the priority's default, below
    fields = _check_fields(
        {"title": title, "category": category, "priority": priority, **fields}, incident
    )
    if fields.get("due_on") is None:
        fields["due_on"] = default_due_on(fields["priority"])
    item = ActionItem(incident=incident, postmortem=postmortem, created_by=acting, **fields)
    save_as(item, actor)
    _record(item, ActionItemUpdate.Kind.CREATED, actor, to_status=item.status)
    owned = f", owner {item.owner.get_username()}" if item.owner else ""
    _on_timeline(
        item,
        f"Action item #{item.pk} ({item.priority}): {item.title}{owned}, due {item.due_on}",
        actor,
        source,
    )
    _tell_owner(
        item,
        "Action item for you",
        f"{item.get_priority_display()}, due {item.due_on}. {item.description}".strip(),
        actor,
    )
    return item


@transaction.atomic
def action_item_update(
    *, item: ActionItem, source: str, actor=None, note: str = "", **changes
) -> ActionItem:
    """Change the item's details (owner, due date, priority…); the change is recorded."""
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise DomainError(f"Cannot edit {', '.join(sorted(unknown))} here.")
    item = _lock(item)
    changes = _check_fields(dict(changes), item.incident)
    changed = [name for name, value in changes.items() if getattr(item, name) != value]
    if not changed:
        return item
    previous_owner = item.owner
    for name in changed:
        setattr(item, name, changes[name])
    save_as(item, actor)
    labels = ", ".join(str(ActionItem._meta.get_field(name).verbose_name) for name in changed)
    note = _check_note(note) or f"Changed {labels}"
    _record(item, ActionItemUpdate.Kind.CHANGE, actor, note=note)
    _on_timeline(item, f"Action item #{item.pk}: {note}", actor, source)
    if "owner" in changed and item.owner is not None:
        _tell_owner(
            item,
            "Action item for you",
            f"{item.get_priority_display()}, due {item.due_on}"
            + (f" (from {previous_owner.get_username()})." if previous_owner else "."),
            actor,
        )
    return item


@transaction.atomic
def action_item_note(*, item: ActionItem, note: str, source: str, actor=None) -> ActionItemUpdate:
    """Add a progress note."""
    note = _check_note(note)
    if not note:
        raise DomainError("The note needs some text.", field="note")
    item = _lock(item)
    update = ActionItemUpdate(
        item=item, kind=ActionItemUpdate.Kind.NOTE, note=note, author=acting_user(actor)
    )
    save_as(update, actor)
    _on_timeline(item, f"Action item #{item.pk}: {note}", actor, source)
    return update


def _check_note(note: str) -> str:
    return clean_text(note, field="note", limit=TEXT_LIMIT)


# --- the lifecycle --------------------------------------------------------------------


@transaction.atomic
def action_item_transition(
    *,
    item: ActionItem,
    to_status: str,
    source: str,
    actor=None,
    note: str = "",
) -> ActionItem:
    """Move the item to `to_status`. Blocking and won't-do need the reason in `note`;
    done stamps who and when, and `note` becomes the verification note if given."""
    note = _check_note(note)
    item = _lock(item)
    from_status = item.status
    allowed = TRANSITIONS.get(from_status, frozenset())
    if to_status not in allowed:
        labels = dict(Status.choices)
        allowed_text = (
            ", ".join(labels[value].lower() for value in Status.values if value in allowed)
            or "none"
        )
        was, wanted = labels[from_status].lower(), labels.get(to_status, to_status).lower()
        raise StateConflict(
            f"Action item #{item.pk} cannot move from {was} to {wanted}; "
            f"allowed from {was}: {allowed_text}.",
            field="status",
        )
    if to_status in (Status.BLOCKED, Status.WONT_DO) and not note:
        what = "what blocks it" if to_status == Status.BLOCKED else "why it will not be done"
        raise DomainError(f"Say {what}.", field="note")

    now = timezone.now()
    item.status = to_status
    item.blocked_reason = note if to_status == Status.BLOCKED else ""
    item.blocked_at = now if to_status == Status.BLOCKED else None
    item.wont_do_reason = note if to_status == Status.WONT_DO else ""
    if to_status == Status.DONE:
        item.completed_at, item.completed_by = now, acting_user(actor)
        if note:
            item.verification_note = note
    else:
        item.completed_at, item.completed_by = None, None
    save_as(item, actor)
    _record(
        item,
        ActionItemUpdate.Kind.STATUS,
        actor,
        note=note,
        from_status=from_status,
        to_status=to_status,
    )
    summary = f"Action item #{item.pk} {Status(from_status).label} → {Status(to_status).label}"
    _on_timeline(item, f"{summary}: {note}" if note else summary, actor, source)
    if to_status == Status.BLOCKED:
        _tell_owner(item, "Action item blocked", note, actor)
    return item


# --- the review workflow's hook (registered in apps.py) -------------------------------


def require_action_items_or_reason(request: PublishRequest) -> None:
    """Refuse to publish a review with no action items unless its author said why none
    are needed: lessons only matter if the follow-up work gets done. Follow-ups noted on
    the incident during the response count as the review's too."""
    postmortem = request.postmortem
    if postmortem.incident.action_items.exists():
        return
    if not postmortem.no_action_needed:
        raise StateConflict(
            "Cannot publish: add the action items this review calls for, or tick "
            '"no action needed" and say why.',
            field="action_items",
        )
    if not postmortem.no_action_reason.strip():
        raise DomainError("Say why no action is needed.", field="no_action_reason")
