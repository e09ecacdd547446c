"""django-q2 task functions: thin, they call the reminders."""

from . import reminders


def send_reminders() -> int:
    return reminders.send_reminders()
