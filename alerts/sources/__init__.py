"""Payload formats: one small module per monitoring system, registered in FORMATS.

A format turns a decoded JSON body into `ParsedAlert`s or raises `PayloadError` naming
what is wrong; it never touches the database."""

from . import alertmanager, generic, grafana  # noqa: E402, F401  - register the formats
from .base import FORMATS, ParsedAlert, PayloadError, PayloadFormat, get_format, register

__all__ = ["FORMATS", "ParsedAlert", "PayloadError", "PayloadFormat", "get_format", "register"]


def kind_choices() -> list[tuple[str, str]]:
    return [(kind, fmt.label) for kind, fmt in FORMATS.items()]
