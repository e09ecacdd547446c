"""Pages: waking one person about one incident, step by step, until they answer.

A page's plan is read from the person's paging rules when it starts ("email now, a text
after 5 minutes, again every 10 minutes, 3 times"); each step is an outbox row written
with the page (the first) or by the minute watchdog (`pages_advance`), and each says
on the incident's timeline who was paged on which channel. Paging is never silent:
whoever cannot be reached is named, and when nobody is, the incident's lead is told.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from incidents import notifications, services
from incidents.errors import DomainError, StateConflict
from incidents.history import bulk_update_with_history
from incidents.models import ChannelKind, Incident, Role, RoleAssignment, Source, Status
from incidents.services.roles import fresh_holders

from ..models import Page, PagingRule, Urgency
from ..vocabulary import Event, Kind

# The watchdog sends at most this many pages' steps per round; the rest wait a minute.
ROUND_SIZE = 500
ACK_SALT = "sitrep.oncall.page-ack"


def urgency_of(severity) -> str:
    """SEV1 and SEV2 (and triage candidates rated so) page at high urgency."""
    return Urgency.HIGH if severity.rank <= 2 else Urgency.LOW


# --- plans ----------------------------------------------------------------------------


def plans_for(users: Iterable, urgency: str) -> dict[int, list[dict]]:
    """Return each user's plan for a page of `urgency`: [{"after", "channel", "address"}]
    sorted by "after" (seconds after the page starts). One query for all of them.

    The plan follows the person's rules of that urgency over verified contact methods;
    with none, their account email address, once. An inactive user has no plan."""
    users = [user for user in users if user.is_active]
    rules = defaultdict(list)
    for rule in PagingRule.objects.filter(
        user__in=users, urgency=urgency, contact_method__verified_at__isnull=False
    ).select_related("contact_method"):
        rules[rule.user_id].append(rule)
    plans = {}
    for user in users:
        steps = []
        for rule in rules[user.pk]:
            method = rule.contact_method
            for repeat in range(rule.repeat_times + 1):
                after = rule.delay + repeat * (rule.repeat_every or timedelta(0))
                steps.append(
                    {
                        "after": int(after.total_seconds()),
                        "channel": method.kind,
                        "address": method.address,
                    }
                )
        if not steps and user.email:
            steps.append({"after": 0, "channel": ChannelKind.EMAIL, "address": user.email})
        steps.sort(key=lambda step: (step["after"], step["channel"], step["address"]))
        plans[user.pk] = steps
    return plans


def describe_plan(plan: list[dict]) -> str:
    """Say how a plan reaches its person: "email a@x.org now, sms +44… after 5 min"."""
    parts = []
    for step in plan:
        minutes = step["after"] // 60
        when = "now" if step["after"] == 0 else f"after {minutes} min"
        parts.append(f"{step['channel']} {step['address']} {when}")
    return ", ".join(parts)


# --- acknowledge links ----------------------------------------------------------------


def ack_token(page: Page) -> str:
    return signing.dumps(page.pk, salt=ACK_SALT, compress=False)


def ack_link(page: Page) -> str:
    """The signed link that acknowledges `page` without signing in (until it expires)."""
    return settings.SITE_URL + reverse("oncall:acknowledge", args=[ack_token(page)])


def page_from_token(token: str) -> Page:
    """Return the page a link's token names; DomainError if it was tampered with or has
    expired (the message says which)."""
    max_age = timedelta(hours=settings.ONCALL_ACK_LINK_HOURS)
    try:
        pk = signing.loads(token, salt=ACK_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise DomainError(
            "This acknowledge link has expired: acknowledge the page in Sitrep instead."
        ) from None
    except signing.BadSignature:
        raise DomainError("This acknowledge link is not valid.") from None
    page = Page.objects.select_related("incident", "user").filter(pk=pk).first()
    if page is None:
        raise DomainError("This page no longer exists.")
    return page


# --- starting pages -------------------------------------------------------------------


@dataclass
class Paged:
    """What a call of `page_people` did: the pages started, and who could not be paged."""

    pages: list[Page] = field(default_factory=list)
    unreachable: list = field(default_factory=list)

    @property
    def reached_anyone(self) -> bool:
        return bool(self.pages)


def _step_message(page: Page, step: dict, number: int) -> notifications.Message:
    incident = page.incident
    what = f"{incident.severity.key} {incident.reference}"
    # A confidential incident's title goes only to whoever may already read it.
    title = "a confidential incident" if incident.confidential else incident.title
    # …nor what a commander wrote when paging by hand (the system's own words, "as
    # technical lead", "escalation L2", say nothing of it).
    if incident.confidential and page.reason == Page.Reason.MANUAL:
        why = page.get_reason_display()
    else:
        why = page.message or page.get_reason_display()
    body = (
        f"You are paged for {what}: {title}.\n{why}\n\n"
        f"Acknowledge: {ack_link(page)}\n"
        f"Incident: {settings.SITE_URL}{incident.get_absolute_url()}"
    )
    return notifications.Message(
        incident,
        Event.PAGE,
        subject=f"[{page.get_urgency_display().split(' ')[0]}] Paged: {what}: {title}",
        message=body,
        contacts=[(step["channel"], step["address"], page.user)],
        # One outbox row per step, however often a round tries to write it.
        dedup_prefix=step_prefix(page, number),
    )


def step_prefix(page: Page, number: int) -> str:
    """The dedup prefix of step `number` of `page` (its outbox row's key starts so)."""
    return f"page:{page.pk}:{number}"


def page_people(
    *,
    incident: Incident,
    users: Iterable,
    reason: str,
    why: str,
    role: str = "",
    level: int | None = None,
    urgency: str | None = None,
    actor=None,
    source: str,
    now: datetime | None = None,
) -> Paged:
    """Page each of `users` about the incident (inside the caller's transaction): a Page
    each, its first steps in the outbox, one timeline event naming who was paged on which
    channel and who could not be. `why` says what the page is for ("as technical lead").
    Someone already paged and not answering for the same reason is not paged again."""
    if notifications.is_muted():
        return Paged()  # history being loaded: nobody is woken for it
    now = now or timezone.now()
    urgency = urgency or urgency_of(incident.severity)
    users = list({user.pk: user for user in users}.values())
    pending = set(
        Page.objects.filter(
            incident=incident,
            user__in=users,
            reason=reason,
            role=role,
            acknowledged_at__isnull=True,
            stopped_at__isnull=True,
        ).values_list("user_id", flat=True)
    )
    users = [user for user in users if user.pk not in pending]
    plans = plans_for(users, urgency)
    result = Paged()
    for user in users:
        plan = plans.get(user.pk) or []
        if not plan:
            result.unreachable.append(user)
            continue
        page = Page(
            incident=incident,
            user=user,
            reason=reason,
            urgency=urgency,
            role=role,
            level=level,
            message=why,
            plan=plan,
            created_at=now,
            created_by=services.acting_user(actor),
        )
        services.save_as(page, actor)
        result.pages.append(page)
    _send_due(result.pages, now)
    if result.pages:
        bulk_update_with_history(result.pages, Page, ["steps_sent", "next_step_at"])
    if users:
        _record(incident, result, why=why, actor=actor, source=source, when=now)
    return result


def _send_due(pages: list[Page], now: datetime) -> list[tuple[Page, dict, int]]:
    """Write the outbox row of every step of `pages` that is due at `now`; advance each
    page's `steps_sent` and `next_step_at` (not saved). Return (page, step, number)."""
    sent, messages = [], []
    for page in pages:
        while page.steps_sent < len(page.plan):
            step = page.plan[page.steps_sent]
            if page.created_at + timedelta(seconds=step["after"]) > now:
                break
            page.steps_sent += 1
            messages.append(_step_message(page, step, page.steps_sent))
            sent.append((page, step, page.steps_sent))
        page.next_step_at = (
            page.created_at + timedelta(seconds=page.plan[page.steps_sent]["after"])
            if page.steps_sent < len(page.plan)
            else None
        )
    notifications.notify_many(messages)
    return sent


def _record(incident: Incident, result: Paged, *, why: str, actor, source: str, when) -> None:
    parts = [f"{page.user.get_username()} ({describe_plan(page.plan)})" for page in result.pages]
    nobody = [user.get_username() for user in result.unreachable]
    summary = f"Paged {'; '.join(parts)} {why}" if parts else f"Paged nobody {why}"
    if nobody:
        summary += f". Cannot page {', '.join(nobody)}: no verified contact method or email"
    services.timeline_record(
        incident,
        kind=Kind.PAGING,
        summary=summary[:1000],
        actor=actor,
        source=source,
        occurred_at=when,
        details={
            "pages": [
                {"page": page.pk, "user": page.user.get_username(), "plan": page.plan}
                for page in result.pages
            ],
            "unreachable": nobody,
            "paged_nobody": not result.pages,
        },
    )
    if not result.pages:
        tell_lead(incident, f"Nobody could be paged {why}: {', '.join(nobody)} cannot be reached.")


def leads_of(incidents) -> dict[int, list]:
    """Return, per incident, its commander, or whoever declared it when none is named.
    An incident being declared in this transaction costs no query: its declaration
    keeps its role holders."""
    incidents = list(incidents)
    leads = {incident.pk: [incident.declared_by] for incident in incidents if incident.declared_by}
    unknown = []
    for incident in incidents:
        holders = fresh_holders(incident)
        if holders is None:
            unknown.append(incident)
        elif holders.get(Role.COMMANDER):
            leads[incident.pk] = holders[Role.COMMANDER][:1]
    if unknown:
        for assignment in RoleAssignment.objects.filter(
            incident__in=unknown, role=Role.COMMANDER, relieved_at__isnull=True
        ).select_related("user"):
            leads[assignment.incident_id] = [assignment.user]
    return leads


def tell_lead(incident: Incident, problem: str) -> None:
    """Tell the incident's commander (or declarer) that paging failed and why; with
    neither (a candidate an alert raised), whoever is on call as commander now."""
    lead = leads_of([incident]).get(incident.pk, [])
    if not lead:
        from ..schedule import on_call
        from .activation import teams_of

        lead = [
            shift.user
            for shift in on_call(teams=teams_of(incident), role=Role.COMMANDER)
            if shift.user.is_active
        ][:1]
    notifications.notify(
        incident,
        Event.PAGE_PROBLEM,
        subject=f"Paging problem on {incident.reference}: {incident.title}"[:300],
        message=f"{problem}\n\n{settings.SITE_URL}{incident.get_absolute_url()}",
        users=lead,
    )


def warn_paged_nobody(
    incident: Incident, problem: str, *, actor=None, source: str, when=None, why: str = ""
) -> None:
    """Say on the timeline, and to the lead, that a change pages nobody (`why`: what for,
    "to triage it"), and why."""
    if notifications.is_muted():
        return
    services.timeline_record(
        incident,
        kind=Kind.PAGING,
        summary=f"Paged nobody{' ' + why if why else ''}: {problem}"[:1000],
        actor=actor,
        source=source,
        occurred_at=when or timezone.now(),
        details={"paged_nobody": True, "problem": problem},
    )
    tell_lead(incident, f"Nobody was paged: {problem}")


# --- the watchdog ---------------------------------------------------------------------


def pages_advance(now: datetime | None = None) -> int:
    """Send every page step that is due; return how many were sent. Reads only the pages
    with a step due (the `page_due` index), however many incidents or pages there are."""
    now = now or timezone.now()
    due = list(
        Page.objects.filter(next_step_at__lte=now)
        .order_by("next_step_at")
        .values_list("pk", flat=True)[:ROUND_SIZE]
    )
    if not due:
        return 0
    try:
        with transaction.atomic():
            # Locked (their incidents first, in pk order, as every writer of pages locks),
            # and read again under the lock: a page acknowledged meanwhile (or advanced
            # by another worker) has no step due any more, and is left alone.
            incidents = set(Page.objects.filter(pk__in=due).values_list("incident_id", flat=True))
            list(
                Incident.objects.select_for_update(of=("self",))
                .filter(pk__in=incidents)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            pages = list(
                Page.objects.select_for_update(of=("self",))
                .select_related("incident__severity", "user")
                .filter(pk__in=due, next_step_at__lte=now)
                .order_by("pk")
            )
            sent = _send_due(pages, now)
            bulk_update_with_history(pages, Page, ["steps_sent", "next_step_at"])
            services.timeline_record_many(
                (
                    {
                        "incident": page.incident,
                        "kind": Kind.PAGING,
                        "summary": f"Paged {page.user.get_username()} again by "
                        f"{step['channel']} {step['address']} (step {number} of "
                        f"{len(page.plan)}, not acknowledged)",
                        "occurred_at": now,
                        "details": {"page": page.pk, "step": number, **step},
                    }
                    for page, step, number in sent
                ),
                actor=None,
                source=Source.SYSTEM,
            )
    except IntegrityError:
        # Another worker wrote one of these steps first (their dedup keys): it paged for
        # them; the next round sends whatever is still due.
        return 0
    return len(sent)


# --- answering and stopping -----------------------------------------------------------


@transaction.atomic
def page_acknowledge(*, page: Page, actor, via: str, source: str, now=None) -> Page:
    """Acknowledge the page: its steps stop. If its incident is still unacknowledged, the
    incident is acknowledged too (by whoever answered: the person paged, through the
    link; or the commander who answered for them), on its timeline."""
    now = now or timezone.now()
    # Locks in the order every writer here takes them, incident first, then its pages in
    # pk order (pages_advance, and an acknowledgement in the admin that stops the pages):
    # an acknowledgement racing a round waits for it, never deadlocks with it.
    services.lock_incident(page.incident)
    list(
        Page.objects.select_for_update(of=("self",))
        .filter(incident_id=page.incident_id)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    page = Page.objects.select_related("incident", "user").get(pk=page.pk)
    if page.acknowledged_at is not None:
        raise StateConflict(
            f"This page was already acknowledged at {page.acknowledged_at:%Y-%m-%d %H:%M} UTC "
            f"({page.acknowledged_via})."
        )
    page.acknowledged_at = now
    page.acknowledged_via = via
    page.next_step_at = None
    services.save_as(page, actor)
    incident = page.incident
    services.timeline_record(
        incident,
        kind=Kind.PAGING,
        summary=f"{page.user.get_username()} acknowledged the page ({via})",
        actor=actor,
        source=source,
        occurred_at=now,
        details={"page": page.pk, "via": via},
    )
    # A triage page answered is someone looking, not the candidate accepted: that stays
    # a decision made with accept or decline.
    if incident.acknowledged_at is None and incident.status == Status.DECLARED:
        services.incident_acknowledge(
            incident=incident, actor=services.acting_user(actor) or page.user, source=source
        )
    return page


def pages_stop(incident: Incident, *, because: str, reasons=None, now=None) -> int:
    """Stop the open pages of `incident` (of the `reasons` given, else all) repeating."""
    now = now or timezone.now()
    pages = Page.objects.filter(
        incident=incident, acknowledged_at__isnull=True, stopped_at__isnull=True
    )
    if reasons is not None:
        pages = pages.filter(reason__in=reasons)
    pages = list(pages.select_for_update(of=("self",)).order_by("pk"))
    for page in pages:
        page.stopped_at = now
        page.stopped_because = because[:200]
        page.next_step_at = None
    if pages:
        bulk_update_with_history(pages, Page, ["stopped_at", "stopped_because", "next_step_at"])
    return len(pages)


ENDED = {Status.RESOLVED, Status.CLOSED, Status.CANCELLED}


# Pages that ask "is anyone there?": answered once someone acknowledges the incident.
# A page that staffs a role (activation, or by hand) asks its person to take it, and
# repeats until they acknowledge it or the incident ends.
WAKE_UP = [Page.Reason.TRIAGE, Page.Reason.ESCALATION]


def stop_pages_on_transition(event) -> None:
    """Subscriber of `transitioned`: accepting a triage candidate stops its triage pages;
    acknowledging the incident stops the pages that escalated it; resolving or
    cancelling it stops every page."""
    incident = event.incident
    who = event.actor.get_username() if event.actor is not None else "the system"
    if event.to_status in ENDED:
        pages_stop(incident, because=f"{incident.get_status_display().lower()} by {who}")
    elif event.from_status == Status.DECLARED:
        pages_stop(incident, because=f"acknowledged by {who}", reasons=WAKE_UP)
    elif event.from_status == Status.TRIAGE:
        pages_stop(incident, because=f"accepted by {who}", reasons=[Page.Reason.TRIAGE])
