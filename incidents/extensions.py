"""Where the apps built on the core plug into it, without the core importing them
(DESIGN.md: remediation -> postmortems -> incidents).

An app registers in its `AppConfig.ready()`:

- **guards**, which may refuse a change by raising the domain error (DomainError,
  StateConflict) that says why: `transition` (any move of an incident's status) and
  `close` (may this incident close?);
- **event subscribers**, called after a change with a small frozen payload;
- its **timeline kinds** and **notification events** (value and label), the words it
  writes into the core's TimelineEvent.kind and Notification.event.

Guards and subscribers run inside the service's transaction: a refusal, or a subscriber
that raises, rolls back the change and everything written with it. Each is called with
one payload, in the order registered; registering twice is registering once.

Events:

- `declared` — an incident became declared: by `incident_declare` (not a triage
  candidate, which nobody is told about yet), or a triage candidate accepted into
  declared by `incident_transition` (after its `transitioned`, with `from_triage`).
  From `incident_declare` it comes once the commander, if any, is named.
- `transitioned` — any status move (`from_status` → `to_status`).
- `severity_changed`, `role_assigned`, `role_relieved` (a stand-down with no
  successor), `confidentiality_changed` (from
  `incident_update_details`), `update_posted`.
- `review_drafting` — not a change: the review of an incident is being drafted (or
  refreshed) and asks each app for the facts and the detection and response gaps it
  knows (a playbook's skipped steps, a missed breach deadline).

One job has a single provider, a **slot** the core fills with its own default and an app
may take over: `paging`, who is woken when an incident needs someone (the core's
escalation ladder, `incidents.paging.Ladder`; the oncall app's rotations and policies).

Tests run the core alone with `isolated()`, or with some subscribers with `only()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .errors import DomainError

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from .models import Incident, RoleAssignment, Severity, StatusUpdate
    from .paging import Paging

P = TypeVar("P")


class Registry(Generic[P]):
    """The callables registered at one extension point, each called with a `P`."""

    # Every registry, the apps' own too (postmortems.extensions), for `only()`.
    _all: list[Registry] = []

    def __init__(self, name: str):
        self.name = name
        self._callables: list[Callable[[P], None]] = []
        Registry._all.append(self)

    def __repr__(self):
        return f"<Registry {self.name}: {len(self._callables)} registered>"

    def __iter__(self) -> Iterator[Callable[[P], None]]:
        return iter(list(self._callables))

    def register(self, fn: Callable[[P], None]) -> Callable[[P], None]:
        """Add `fn` (once, however often `ready()` runs); return it, to use as a decorator."""
        if fn not in self._callables:
            self._callables.append(fn)
        return fn

    def run(self, payload: P) -> None:
        """Call everything registered with `payload`; a guard refuses by raising."""
        for fn in list(self._callables):
            fn(payload)


# --- payloads -------------------------------------------------------------------------


@dataclass(frozen=True)
class TransitionRequest:
    """A status move about to happen; the incident is locked and still unchanged."""

    incident: Incident
    actor: AbstractBaseUser | None
    source: str
    from_status: str
    to_status: str


@dataclass(frozen=True)
class CloseRequest:
    """An incident about to close (the move is allowed; guards decide if it may)."""

    incident: Incident
    actor: AbstractBaseUser | None
    source: str


@dataclass(frozen=True)
class Declared:
    incident: Incident
    actor: AbstractBaseUser | None
    source: str
    from_triage: bool


@dataclass(frozen=True)
class Transitioned:
    incident: Incident
    actor: AbstractBaseUser | None
    source: str
    from_status: str
    to_status: str
    note: str


@dataclass(frozen=True)
class SeverityChanged:
    incident: Incident
    actor: AbstractBaseUser | None
    source: str
    from_severity: Severity
    to_severity: Severity
    reason: str


@dataclass(frozen=True)
class RoleAssigned:
    incident: Incident
    actor: AbstractBaseUser | None
    source: str
    assignment: RoleAssignment
    # The previous holders this assignment stood down (none for a multi-holder role).
    relieved: tuple[RoleAssignment, ...]


@dataclass(frozen=True)
class RoleRelieved:
    """Someone stood down from a role with no successor named (a handover is a
    `role_assigned` with `relieved`)."""

    incident: Incident
    actor: AbstractBaseUser | None
    source: str
    assignment: RoleAssignment


@dataclass(frozen=True)
class ConfidentialityChanged:
    incident: Incident
    actor: AbstractBaseUser | None
    source: str
    old: bool
    new: bool


@dataclass(frozen=True)
class UpdatePosted:
    incident: Incident
    actor: AbstractBaseUser | None
    source: str
    update: StatusUpdate


@dataclass(frozen=True)
class ReviewDrafting:
    """An incident's review being drafted from what Sitrep recorded: a subscriber adds
    what its app knows. `facts` (JSON-ready, kept on the review) takes a key per app;
    `gaps` takes Markdown lines for the "detection and response gaps" section."""

    incident: Incident
    facts: dict
    gaps: list[str]


# --- the core's extension points ------------------------------------------------------

transition_guard: Registry[TransitionRequest] = Registry("transition guard")
close_guard: Registry[CloseRequest] = Registry("close guard")

declared: Registry[Declared] = Registry("declared")
transitioned: Registry[Transitioned] = Registry("transitioned")
severity_changed: Registry[SeverityChanged] = Registry("severity changed")
role_assigned: Registry[RoleAssigned] = Registry("role assigned")
role_relieved: Registry[RoleRelieved] = Registry("role relieved")
confidentiality_changed: Registry[ConfidentialityChanged] = Registry("confidentiality changed")
update_posted: Registry[UpdatePosted] = Registry("update posted")
# Not a change: a review (postmortems) asks the other apps for its facts and gaps.
review_drafting: Registry[ReviewDrafting] = Registry("review drafting")


# --- slots ----------------------------------------------------------------------------

T = TypeVar("T")


class Slot(Generic[T]):
    """One job with one provider: the core's default (named by import path, as the core
    cannot import its services here) until an app provides its own."""

    _all: list[Slot] = []

    def __init__(self, name: str, default: str):
        self.name = name
        self._default = default
        self._provider: T | None = None
        Slot._all.append(self)

    def __repr__(self):
        return f"<Slot {self.name}: {self.get()!r}>"

    def provide(self, provider: T) -> None:
        """Take the job over with `provider`; one of the same class again (`ready()` run
        twice) changes nothing."""
        if self._provider is not None:
            if type(self._provider) is type(provider):
                return
            # Two apps paging by their own rules would page everyone twice.
            raise ImproperlyConfigured(
                f"{self.name} is already provided by {self._provider!r}, not {provider!r}."
            )
        self._provider = provider

    def get(self) -> T:
        """Return the provider in force: an app's, else the core's default."""
        if self._provider is None:
            return import_string(self._default)()
        return self._provider

    @property
    def taken_over(self) -> bool:
        return self._provider is not None


paging: Slot[Paging] = Slot("paging", default="incidents.paging.Ladder")


# --- vocabularies ---------------------------------------------------------------------


class Vocabulary:
    """The values apps may store in one core column, each with its label."""

    _all: list[Vocabulary] = []

    def __init__(self, name: str, max_length: int):
        self.name = name
        self.max_length = max_length  # the width of the column that stores the value
        self._labels: dict[str, str] = {}
        Vocabulary._all.append(self)

    def register(self, value: str, label: str) -> None:
        """Add `value`; the same value with the same label again changes nothing."""
        if not isinstance(value, str) or not value or len(value) > self.max_length:
            raise ImproperlyConfigured(
                f"A {self.name} is text of 1 to {self.max_length} characters, not {value!r}."
            )
        known = self._labels.get(value)
        if known is not None and known != label:
            # Two apps using one word for different things would mix their rows.
            raise ImproperlyConfigured(
                f"The {self.name} {value!r} is already registered as {known!r}."
            )
        self._labels[value] = str(label)

    def choices(self) -> list[tuple[str, str]]:
        return list(self._labels.items())

    def check(self, value: str, field: str) -> None:
        """Refuse a value no app registered."""
        if value not in self._labels:
            raise DomainError(
                f"Unknown {self.name} {value!r}: no installed app registers it "
                f"(known: {', '.join(self._labels)}).",
                field=field,
            )


timeline_kinds = Vocabulary("timeline kind", max_length=20)
notification_events = Vocabulary("notification event", max_length=20)


def register_timeline_kind(value: str, label: str) -> None:
    """Let services write timeline events of `value`, shown as `label`."""
    timeline_kinds.register(value, label)


def register_notification_event(value: str, label: str) -> None:
    """Let services write notifications of `value`, shown as `label`."""
    notification_events.register(value, label)


def register_vocabulary(*, kinds=(), events=()) -> None:
    """Register an app's timeline kinds and notification events (TextChoices classes or
    (value, label) pairs)."""
    for value, label in getattr(kinds, "choices", kinds):
        register_timeline_kind(value, label)
    for value, label in getattr(events, "choices", events):
        register_notification_event(value, label)


# The model fields' choices (and the API schema's enum) call these each time they are
# read, so a kind an app registers needs no migration; the migrations name the two
# functions, not their values (keep them).
def timeline_kind_choices() -> list[tuple[str, str]]:
    return timeline_kinds.choices()


def notification_event_choices() -> list[tuple[str, str]]:
    return notification_events.choices()


# --- for tests ------------------------------------------------------------------------


@contextlib.contextmanager
def restored() -> Iterator[None]:
    """Put every registration (guards, subscribers, vocabularies) back as it was once
    the block ends, whatever the block registered."""
    registries = [(registry, list(registry._callables)) for registry in Registry._all]
    slots = [(slot, slot._provider) for slot in Slot._all]
    vocabularies = [(vocabulary, dict(vocabulary._labels)) for vocabulary in Vocabulary._all]
    try:
        yield
    finally:
        for registry, callables in registries:
            registry._callables[:] = callables
        for slot, provider in slots:
            slot._provider = provider
        for vocabulary, labels in vocabularies:
            vocabulary._labels.clear()
            vocabulary._labels.update(labels)


@contextlib.contextmanager
def only(*subscribers: Callable) -> Iterator[None]:
    """Run the block with no guard or subscriber registered but `subscribers` (each
    where it was registered), and every slot back to the core's default unless its
    provider is among them; restore everything afterwards. Vocabularies stay."""
    with restored():
        for registry in Registry._all:
            registry._callables[:] = [fn for fn in registry._callables if fn in subscribers]
        for slot in Slot._all:
            if slot._provider not in subscribers:
                slot._provider = None
        yield


def isolated() -> contextlib.AbstractContextManager[None]:
    """Run the block with the core alone: no other app's guards or subscribers."""
    return only()
