"""Where the apps built on post-mortems plug into the review workflow, registered in
their `AppConfig.ready()`: the core's registry (incidents.extensions), one level up.

- `publish_guard` — may refuse to publish a review, raising the domain error that says
  why; called inside `postmortem_publish`'s transaction, the review locked, before it
  changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from incidents.extensions import Registry

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from .models import PostMortem


@dataclass(frozen=True)
class PublishRequest:
    postmortem: PostMortem
    actor: AbstractBaseUser | None
    source: str


publish_guard: Registry[PublishRequest] = Registry("publish guard")
