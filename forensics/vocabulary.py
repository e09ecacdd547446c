"""The words forensics writes into the core's timeline and outbox, registered in apps.py.
The values are stored on rows: never change one."""

from django.db import models

from incidents import extensions


class Kind(models.TextChoices):
    """Timeline kinds."""

    EVIDENCE = "evidence", "Evidence"
    BREACH = "breach", "Breach notification"


class Event(models.TextChoices):
    """Notification events."""

    EVIDENCE_INTEGRITY = "evidence_integrity", "Evidence integrity changed"
    BREACH_DEADLINE = "breach_deadline", "Breach notification deadline"


def register() -> None:
    extensions.register_vocabulary(kinds=Kind, events=Event)
