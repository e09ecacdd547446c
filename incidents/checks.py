"""System checks for a production deployment (`manage.py check --deploy`)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_site_url(app_configs, **kwargs):
    """Links in notifications are built from SITE_URL; localhost ones reach nobody."""
    host = urlsplit(settings.SITE_URL).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1") or not host:
        return [
            Warning(
                f"SITE_URL is {settings.SITE_URL!r}: links in notifications would point "
                "at this machine.",
                hint="Set SITE_URL to the address people use, e.g. https://sitrep.example.com.",
                id="sitrep.W001",
            )
        ]
    return []
