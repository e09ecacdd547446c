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


@register(Tags.security, deploy=True)
def check_proxy_count(app_configs, **kwargs):
    """Behind a proxy with NUM_PROXIES=0 every client has the proxy's address: five
    failed sign-ins by anyone lock everybody out, and one throttle bucket serves all."""
    behind_proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is not None
    if behind_proxy and settings.NUM_PROXIES == 0:
        return [
            Warning(
                "BEHIND_PROXY is true but NUM_PROXIES is 0: every client would have the "
                "proxy's address, for the sign-in lockout and API throttling alike.",
                hint="Set NUM_PROXIES to the number of reverse proxies in front of Sitrep.",
                id="sitrep.W002",
            )
        ]
    return []
