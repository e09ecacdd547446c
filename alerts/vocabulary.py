"""The words alerts write into the core's timeline, registered in apps.py. The values
are stored on rows: never change one."""

from django.db import models

from incidents import extensions


class Kind(models.TextChoices):
    """Timeline kinds: an alert fired, fired again, resolved; all of a group resolved."""

    ALERT = "alert", "Alert"


def register() -> None:
    extensions.register_vocabulary(kinds=Kind)
