"""The words remediation writes into the core's timeline and outbox, registered in
apps.py. The values are stored on rows: never change one."""

from django.db import models

from incidents import extensions


class Kind(models.TextChoices):
    """Timeline kinds: each step of an action item, on its incident's timeline."""

    FOLLOW_UP = "follow_up", "Follow-up work"


class Event(models.TextChoices):
    """Notification events: an item's changes and reminders, to the people concerned."""

    FOLLOW_UP = "follow_up", "Follow-up work"


def register() -> None:
    extensions.register_vocabulary(kinds=Kind, events=Event)
