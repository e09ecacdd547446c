"""django-q2 task functions: thin, they call services."""

from .services import escalation, paging


def advance_pages() -> int:
    return paging.pages_advance()


def escalate_stuck() -> int:
    return escalation.escalate_stuck()
