"""django-q2 task functions: thin, they call services."""

from . import services


def prune_idempotency_records() -> int:
    return services.idempotency_records_prune()
