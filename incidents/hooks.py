"""Where the apps built on the core plug into the incident lifecycle.

The core never imports them (DESIGN.md: remediation -> postmortems -> incidents). An app
registers its callables in `AppConfig.ready()`; `incident_transition` calls them inside
its transaction, so a refusal changes nothing and a follow-up is all-or-nothing with
the move that caused it.
"""

from collections.abc import Callable

# guard(incident, to_status): raise StateConflict to refuse the move, saying why.
TransitionGuard = Callable[..., None]
# follower(incident, from_status, to_status, actor, source): runs after the move.
TransitionFollower = Callable[..., None]

_guards: list[TransitionGuard] = []
_followers: list[TransitionFollower] = []


def register_transition_guard(guard: TransitionGuard) -> None:
    if guard not in _guards:
        _guards.append(guard)


def register_transition_follower(follower: TransitionFollower) -> None:
    if follower not in _followers:
        _followers.append(follower)


def check_transition(incident, to_status: str) -> None:
    for guard in _guards:
        guard(incident, to_status)


def after_transition(incident, *, from_status: str, to_status: str, actor, source: str) -> None:
    for follower in _followers:
        follower(incident, from_status=from_status, to_status=to_status, actor=actor, source=source)
