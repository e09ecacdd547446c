"""The words post-mortems write into the core's timeline and outbox, registered in
apps.py. The values are stored on rows: never change one."""

from django.db import models

from incidents import extensions


class Kind(models.TextChoices):
    """Timeline kinds: each step of the review, on the incident's timeline."""

    REVIEW = "review", "Post-incident review"


class Event(models.TextChoices):
    """Notification events: a review step someone has to act on, a published review."""

    REVIEW = "review", "Post-incident review"
    REVIEW_PUBLISHED = "review_published", "Post-incident review published"


def register() -> None:
    extensions.register_vocabulary(kinds=Kind, events=Event)
