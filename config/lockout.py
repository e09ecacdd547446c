"""The page a locked-out sign-in gets, on the admin and the stakeholder sign-in alike."""

import math

from axes.helpers import get_cool_off
from django.shortcuts import render
from rest_framework.throttling import BaseThrottle


def client_address(request) -> str | None:
    """The address the lockout counts: the one the API throttle counts (NUM_PROXIES)."""
    return BaseThrottle().get_ident(request)


def lockout_response(request, original_response=None, credentials=None):
    """Render the lockout page: 429, with how long to wait (django-axes' AXES_LOCKOUT_CALLABLE)."""
    # Every try while locked starts the wait again (axes records it), so from this answer
    # the whole cool-off lies ahead.
    seconds = int(get_cool_off(request).total_seconds())
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes": math.ceil(seconds / 60)},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
