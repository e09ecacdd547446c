"""What the public status page shows, for the page, its JSON twin and its feed alike.

The public sees only what was written for it (DESIGN.md): an incident appears once it
has a public title or a public update, under that public title or a neutral name built
from its public services, never its internal title. Confidential, non-production,
triage and cancelled incidents never appear. Everything here returns plain
`PublicIncident` rows, so a template or the JSON cannot reach an internal field.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone
from django.utils.formats import date_format

from .models import (
    OPEN_STATUSES,
    Audience,
    Environment,
    Incident,
    Service,
    Status,
    StatusUpdate,
    TimelineEvent,
)

# Worst first; what a service shows while an open incident of that severity touches it.
CONDITIONS = ["major_outage", "partial_outage", "degraded_performance", "operational"]
CONDITION_LABELS = {
    "major_outage": "Major outage",
    "partial_outage": "Partial outage",
    "degraded_performance": "Degraded performance",
    "operational": "Operational",
}
# Time under these counts against a service's uptime; degraded performance does not.
DOWN_CONDITIONS = frozenset({"major_outage", "partial_outage"})

# What the public is told at each stage: the lifecycle's internal steps (declared,
# closed) fold into the four words status pages use.
PHASES = {
    "investigating": (
        "Investigating",
        "We are investigating reports of a problem and will post an update shortly.",
    ),
    "identified": ("Identified", "We have identified the cause and are working on a fix."),
    "monitoring": ("Monitoring", "A fix is in place and we are monitoring the results."),
    "resolved": ("Resolved", "This incident has been resolved."),
}
PHASE_OF_STATUS = {
    Status.DECLARED: "investigating",
    Status.INVESTIGATING: "investigating",
    Status.IDENTIFIED: "identified",
    Status.MONITORING: "monitoring",
    Status.RESOLVED: "resolved",
    Status.CLOSED: "resolved",
}
SHOWN_STATUSES = frozenset(PHASE_OF_STATUS)
SHOWN_OPEN_STATUSES = sorted(SHOWN_STATUSES & OPEN_STATUSES)
SHOWN_DONE_STATUSES = sorted(SHOWN_STATUSES - OPEN_STATUSES)

HISTORY_DAYS = 14
RECENT_LIMIT = 20
# More open public incidents than this is no status page anyone reads to the end.
OPEN_LIMIT = 50
UPTIME_DAYS = 90
# Names listed in one day's hover text; the rest are counted.
NAMES_PER_DAY = 3
# Incidents are found by (status, declared_at), the one index they have besides their
# key: a resolved incident counts in the history windows only if it was declared at
# most this long before the window opened. Longer ones were shown as open all along.
LONGEST_INCIDENT = timedelta(days=90)
CACHE_PREFIX = "status-page"


def condition_for(severity_rank: int) -> str:
    """Return what an incident of this severity rank does to the services it touches."""
    return CONDITIONS[min(severity_rank, 3) - 1]


def phase_of(status: str) -> str:
    return PHASE_OF_STATUS.get(status, "investigating")


@dataclass(frozen=True)
class PublicUpdate:
    number: int
    phase: str
    summary: str
    published_at: datetime
    next_update_at: datetime | None

    @property
    def phase_label(self) -> str:
        return PHASES[self.phase][0]


@dataclass(frozen=True)
class PublicIncident:
    """An incident as the public may see it: its public name, never its title."""

    reference: str
    name: str
    phase: str
    impact: str
    services: list[Service]
    declared_at: datetime | None
    resolved_at: datetime | None
    updates: list[PublicUpdate] = field(default_factory=list)  # newest first

    @property
    def phase_label(self) -> str:
        return PHASES[self.phase][0]

    @property
    def phase_text(self) -> str:
        return PHASES[self.phase][1]

    @property
    def impact_label(self) -> str:
        return CONDITION_LABELS[self.impact]


def public_name(public_title: str, services: list[Service]) -> str:
    """Return the public title, or a neutral name from the public services it touches."""
    if public_title:
        return public_title
    names = [service.name for service in services]
    if not names:
        return "Service disruption"
    if len(names) > 3:
        return f"Incident affecting {len(names)} services"
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"Incident affecting {listed}"


def published() -> Q:
    """Match incidents the public may see: written up for the public, in production."""
    has_public_update = Exists(
        StatusUpdate.objects.filter(incident=OuterRef("pk"), audience=Audience.PUBLIC)
    )
    return Q(confidential=False, environment=Environment.PRODUCTION, status__in=SHOWN_STATUSES) & (
        ~Q(public_title="") | has_public_update
    )


def public_incidents():
    """Incidents customers may see (a queryset: callers bound it)."""
    return Incident.objects.filter(published())


def _window_incidents(start: datetime):
    """Public incidents open now, or resolved since `start`."""
    return public_incidents().filter(
        Q(status__in=SHOWN_OPEN_STATUSES)
        | Q(
            status__in=SHOWN_DONE_STATUSES,
            declared_at__gte=start - LONGEST_INCIDENT,
            resolved_at__gte=start,
        )
    )


# --- the overview -----------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _uptime(services: list[Service], rows, now: datetime) -> tuple[dict, dict, list[date]]:
    """Return, per service pk, its 90 day cells and uptime, and its current condition.

    `rows` are (service pk, name, started_at, resolved_at, open, rank): one per public
    incident and public service it touches, open now or in the window.
    """
    zone = timezone.get_current_timezone()
    today = now.astimezone(zone).date()
    days = [today - timedelta(days=back) for back in range(UPTIME_DAYS - 1, -1, -1)]
    window_start = _day_start(days[0])
    first = days[0].toordinal()
    cells = {service.pk: [None] * UPTIME_DAYS for service in services}
    down = defaultdict(list)
    condition = {service.pk: "operational" for service in services}
    rank_of = {name: position for position, name in enumerate(CONDITIONS)}
    # In the order they began, so a day's hover text names them in that order.
    for service_pk, name, started_at, resolved_at, is_open, rank in sorted(
        rows, key=lambda row: row[2]
    ):
        if service_pk not in cells:  # made private since the services were read
            continue
        impact = condition_for(rank)
        if is_open and rank_of[impact] < rank_of[condition[service_pk]]:
            condition[service_pk] = impact
        begin, end = max(started_at, window_start), min(resolved_at or now, now)
        if end < begin:
            continue
        if impact in DOWN_CONDITIONS:
            down[service_pk].append((begin, end))
        row = cells[service_pk]
        for position in range(
            begin.astimezone(zone).date().toordinal() - first,
            end.astimezone(zone).date().toordinal() - first + 1,
        ):
            cell = row[position]
            if cell is None:
                row[position] = {"impact": impact, "names": [name]}
                continue
            if rank_of[impact] < rank_of[cell["impact"]]:
                cell["impact"] = impact
            if name not in cell["names"]:
                cell["names"].append(name)

    labels = [date_format(day, "j M Y") for day in days]
    quiet = [f"{label}: {CONDITION_LABELS['operational']}" for label in labels]
    span = (now - window_start).total_seconds()
    uptime = {}
    for service in services:
        merged_down, last_end = 0.0, window_start
        # Overlapping outages count once: walk them in start order, merging.
        for begin, end in sorted(down[service.pk]):
            begin = max(begin, last_end)
            if end > begin:
                merged_down += (end - begin).total_seconds()
                last_end = end
        percent = 100.0 if span <= 0 else max(0.0, 100 * (1 - merged_down / span))
        bars = []
        for position, cell in enumerate(cells[service.pk]):
            if cell is None:
                bars.append(
                    {"date": days[position], "impact": "operational", "hover": quiet[position]}
                )
                continue
            names = cell["names"]
            shown = names[:NAMES_PER_DAY]
            if len(names) > NAMES_PER_DAY:
                shown.append(f"and {len(names) - NAMES_PER_DAY} more")
            hover = f"{labels[position]}: {CONDITION_LABELS[cell['impact']]} — {'; '.join(shown)}"
            bars.append({"date": days[position], "impact": cell["impact"], "hover": hover})
        uptime[service.pk] = {"percent": round(percent, 2), "days": bars}
    return uptime, condition, days


def status_overview(now: datetime | None = None) -> dict:
    """Return everything the page shows, in a fixed handful of bounded queries."""
    now = now or timezone.now()
    services = list(Service.objects.filter(public=True).order_by("name"))
    by_pk = {service.pk: service for service in services}
    window_start = _day_start(timezone.localdate(now) - timedelta(days=UPTIME_DAYS - 1))

    # One query for every (public incident, public service) pair the page colours: the
    # open ones (today's condition) and those of the 90 days (the uptime bars).
    through = Incident.services.through
    pairs = list(
        through.objects.filter(
            service__public=True, incident__in=_window_incidents(window_start).values("pk")
        ).values_list(
            "service_id",
            "incident_id",
            "incident__public_title",
            "incident__started_at",
            "incident__resolved_at",
            "incident__status",
            "incident__severity__rank",
        )
    )
    services_of = defaultdict(list)
    for service_pk, incident_pk, *_ in pairs:
        if service_pk in by_pk:
            services_of[incident_pk].append(by_pk[service_pk])
    for listed in services_of.values():
        listed.sort(key=lambda service: service.name)
    rows = [
        (
            service_pk,
            public_name(title, services_of[incident_pk]),
            started_at,
            resolved_at,
            status in OPEN_STATUSES,
            rank,
        )
        for service_pk, incident_pk, title, started_at, resolved_at, status, rank in pairs
    ]
    uptime, condition, days = _uptime(services, rows, now)

    shown = (
        public_incidents()
        .select_related("severity")
        .only("reference", "public_title", "status", "declared_at", "resolved_at", "severity__rank")
    )
    open_incidents = list(
        shown.filter(status__in=SHOWN_OPEN_STATUSES).order_by("severity__rank", "declared_at")[
            :OPEN_LIMIT
        ]
    )
    since = now - timedelta(days=HISTORY_DAYS)
    recent = list(
        shown.filter(
            status__in=SHOWN_DONE_STATUSES,
            declared_at__gte=since - LONGEST_INCIDENT,
            resolved_at__gte=since,
        ).order_by("-resolved_at")[:RECENT_LIMIT]
    )
    updates = defaultdict(list)
    for update in StatusUpdate.objects.filter(
        incident__in=[incident.pk for incident in open_incidents + recent],
        audience=Audience.PUBLIC,
    ).order_by("incident_id", "-number"):
        updates[update.incident_id].append(
            PublicUpdate(
                number=update.number,
                phase=phase_of(update.status),
                summary=update.summary,
                published_at=update.published_at,
                next_update_at=update.next_update_at,
            )
        )

    def public(incident) -> PublicIncident:
        touched = services_of[incident.pk]
        return PublicIncident(
            reference=incident.reference,
            name=public_name(incident.public_title, touched),
            phase=phase_of(incident.status),
            impact=condition_for(incident.severity.rank),
            services=touched,
            declared_at=incident.declared_at,
            resolved_at=incident.resolved_at,
            updates=updates[incident.pk],
        )

    overall = min(condition.values(), key=CONDITIONS.index, default="operational")
    return {
        "generated_at": now,
        "overall": overall,
        "overall_label": CONDITION_LABELS[overall],
        "uptime_days": UPTIME_DAYS,
        "uptime_from": days[0],
        "services": [
            {
                "name": service.name,
                "slug": service.slug,
                "condition": condition[service.pk],
                "condition_label": CONDITION_LABELS[condition[service.pk]],
                "uptime": uptime[service.pk]["percent"],
                "days": uptime[service.pk]["days"],
            }
            for service in services
        ],
        "open_incidents": [public(incident) for incident in open_incidents],
        "recent_incidents": [public(incident) for incident in recent],
        "history_days": HISTORY_DAYS,
    }


def incident_as_json(incident: PublicIncident) -> dict:
    return {
        "reference": incident.reference,
        "title": incident.name,
        "status": incident.phase,
        "status_label": incident.phase_label,
        "impact": incident.impact,
        "services": [service.slug for service in incident.services],
        "declared_at": incident.declared_at,
        "resolved_at": incident.resolved_at,
        "updates": [
            {
                "number": update.number,
                "status": update.phase,
                "summary": update.summary,
                "published_at": update.published_at,
                "next_update_at": update.next_update_at,
            }
            for update in incident.updates
        ],
    }


def overview_as_json(overview: dict) -> dict:
    return {
        "generated_at": overview["generated_at"],
        "overall": overview["overall"],
        "uptime_days": overview["uptime_days"],
        "uptime_from": overview["uptime_from"],
        "services": [
            {
                "name": service["name"],
                "slug": service["slug"],
                "condition": service["condition"],
                "uptime": service["uptime"],
                # Only the days with an incident: every other day was operational.
                "days": [
                    {"date": day["date"], "impact": day["impact"]}
                    for day in service["days"]
                    if day["impact"] != "operational"
                ],
            }
            for service in overview["services"]
        ],
        "open_incidents": [incident_as_json(i) for i in overview["open_incidents"]],
        "recent_incidents": [incident_as_json(i) for i in overview["recent_incidents"]],
    }


# --- the cache --------------------------------------------------------------------------
#
# The page, JSON and feed are cached for STATUS_PAGE_CACHE_SECONDS under a key that
# names the state they were built from, so a change shows at once on every web worker:
#
# - the newest timeline event's id: every service that changes what the public sees
#   (a public update, a public title, a status or severity change, services edited)
#   appends a timeline event in the same transaction, so the id moves when that change
#   commits. One read of the primary key's index per request, whatever the table size,
#   and it works without a shared cache: with LocMemCache (no REDIS_URL) each gunicorn
#   worker has its own cache, and a worker that never saw the change still builds a
#   fresh page, because its key no longer matches;
# - a generation counter the services bump on commit (`invalidate`): with Redis every
#   worker shares it, which also covers a transaction that commits after a later one
#   with a higher event id. Without Redis it reaches only its own process; the TTL
#   bounds that rare case, and edits outside the services (a service renamed in the
#   admin) alike.

GENERATION_KEY = f"{CACHE_PREFIX}:generation"


def _newest_event() -> int:
    return TimelineEvent.objects.aggregate(newest=Max("pk"))["newest"] or 0


def _state_key() -> str:
    return f"{cache.get(GENERATION_KEY, 0)}.{_newest_event()}"


def cached(name: str, build: Callable[[], object]):
    """Return what `build` returns, from the cache while nothing public has changed."""
    seconds = settings.STATUS_PAGE_CACHE_SECONDS
    if seconds <= 0:
        return build()
    key = f"{CACHE_PREFIX}:{name}:{_state_key()}"
    value = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, seconds)
    return value


def _bump() -> None:
    # add() then incr(): incr() is atomic on Redis, and add() only creates a missing key.
    cache.add(GENERATION_KEY, 0, timeout=None)
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # evicted between the two calls
        cache.set(GENERATION_KEY, 1, timeout=None)


def invalidate() -> None:
    """Drop the cached page, JSON and feed once the current transaction commits."""
    transaction.on_commit(_bump)
