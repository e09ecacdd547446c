"""Where the apps built on post-mortems plug into the review workflow (registered in
their `AppConfig.ready()`): the same pattern as incidents.hooks, one level up."""

from collections.abc import Callable

# guard(postmortem): raise a StateConflict/IncidentError to refuse publishing, saying why.
PublishGuard = Callable[..., None]

_publish_guards: list[PublishGuard] = []


def register_publish_guard(guard: PublishGuard) -> None:
    if guard not in _publish_guards:
        _publish_guards.append(guard)


def check_publish(postmortem) -> None:
    for guard in _publish_guards:
        guard(postmortem)
