"""The words the oncall app writes into the core's timeline and outbox."""

from django.db import models

from incidents import extensions


class Kind(models.TextChoices):
    PAGING = "paging", "Paging"


class Event(models.TextChoices):
    PAGE = "page", "Page"
    PAGE_PROBLEM = "page_problem", "Paging problem"
    CONTACT_TEST = "contact_test", "Contact method test"


def register() -> None:
    extensions.register_vocabulary(kinds=Kind, events=Event)
