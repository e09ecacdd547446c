"""django-q2 entry points; each calls a service."""

from . import services


def check_heartbeats() -> int:
    return services.heartbeats_check()


def evaluate_due_alerts() -> int:
    return services.alerts_evaluate_due()


def sweep_payloads() -> int:
    return services.payloads_sweep()


def prune_payloads() -> int:
    return services.payloads_prune()
