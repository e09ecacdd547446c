"""Sign-in lockout (django-axes): password guessing stops after a few tries, per username
and per address, on the admin and the stakeholder sign-in alike; API keys are untouched."""

import io
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from tests.api import client_for
from tests.conftest import make_user

PASSWORD = "correct horse battery"
ADMIN_LOGIN = "/admin/login/"
STAKEHOLDER_LOGIN = "/accounts/login/"
LOCKED = (
    "Sign-in is locked after too many failed attempts for this account or from this "
    "address; try again in 15 minutes."
)
HOME = "198.51.100.7"


@pytest.fixture
def alice(commander):
    commander.set_password(PASSWORD)
    commander.save()
    return commander


@pytest.fixture
def sam(db, django_user_model):
    """A stakeholder: signs in on /accounts/login/ (not staff)."""
    user = make_user(django_user_model, "sam", "Stakeholders")
    user.set_password(PASSWORD)
    user.save()
    return user


def sign_in(client, url, username, password, address=HOME, **headers):
    return client.post(
        url, {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def assert_locked(response):
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert response["Retry-After"] == str(15 * 60)


def assert_signs_in(client, url, user, address=HOME):
    response = sign_in(client, url, user.username, PASSWORD, address)
    assert response.status_code == 302, response.content.decode()[:500]
    assert signed_in(client)
    client.logout()


def fail(client, url, username, times, address=HOME):
    for _ in range(times):
        response = sign_in(client, url, username, "not-the-password", address)
    return response


# The defaults in force: 5 failures, 15 minutes (config/settings.py, from the environment).
def test_defaults_are_five_failures_and_fifteen_minutes():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]


@pytest.mark.parametrize("url, persona", [(ADMIN_LOGIN, "alice"), (STAKEHOLDER_LOGIN, "sam")])
def test_five_wrong_passwords_lock_and_the_right_one_is_then_refused(client, request, url, persona):
    user = request.getfixturevalue(persona)
    fourth = fail(client, url, user.username, 4)
    assert fourth.status_code == 200  # the form again, with its error
    assert "too many failed sign-ins" not in fourth.content.decode()

    assert_locked(fail(client, url, user.username, 1))
    right = sign_in(client, url, user.username, PASSWORD)
    assert_locked(right)
    assert not signed_in(client)
    assert "registration/locked_out.html" in [template.name for template in right.templates]
    # More guesses change nothing: none of them is even checked against the password.
    for _ in range(15):
        assert sign_in(client, url, user.username, "guess").status_code == 429
    assert_locked(sign_in(client, url, user.username, PASSWORD))


def test_lock_holds_on_the_other_sign_in_page_too(client, alice):
    fail(client, STAKEHOLDER_LOGIN, "alice", 5)
    assert_locked(sign_in(client, ADMIN_LOGIN, "alice", PASSWORD))


def test_username_is_locked_whatever_address_the_guesses_come_from(client, alice):
    for n in range(5):
        fail(client, ADMIN_LOGIN, "alice", 1, address=f"198.51.100.{10 + n}")
    assert_locked(sign_in(client, ADMIN_LOGIN, "alice", PASSWORD, address="192.0.2.99"))


def test_address_is_locked_whatever_usernames_it_tries(client, alice, sam):
    for username in ("root", "admin", "bob", "carol", "dave"):
        fail(client, STAKEHOLDER_LOGIN, username, 1)
    # Sam never failed, yet his right password from that address is refused...
    assert_locked(sign_in(client, STAKEHOLDER_LOGIN, "sam", PASSWORD))
    # ...while from anywhere else he, and alice, sign in at once.
    assert_signs_in(client, STAKEHOLDER_LOGIN, sam, address="192.0.2.50")
    assert_signs_in(client, ADMIN_LOGIN, alice, address="192.0.2.51")


def test_forged_forwarded_for_does_not_dodge_the_address_lock(client, alice):
    # No proxy is configured (NUM_PROXIES=0): X-Forwarded-For is the client's own text.
    for n, username in enumerate(("root", "admin", "bob", "carol", "dave")):
        sign_in(client, ADMIN_LOGIN, username, "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    response = sign_in(client, ADMIN_LOGIN, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert_locked(response)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {HOME}


def test_lock_ends_fifteen_minutes_after_the_last_try(client, alice):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        fail(client, ADMIN_LOGIN, "alice", 5)
        clock.shift(timedelta(minutes=10))
        # A try while locked, even the right one, starts the wait again...
        assert_locked(sign_in(client, ADMIN_LOGIN, "alice", PASSWORD))
        clock.shift(timedelta(minutes=14, seconds=59))
        assert_locked(sign_in(client, ADMIN_LOGIN, "alice", PASSWORD))
        # ...and fifteen quiet minutes end it.
        clock.shift(timedelta(minutes=15, seconds=1))
        assert_signs_in(client, ADMIN_LOGIN, alice)


def test_a_success_does_not_wipe_the_address_count(client, alice, sam):
    """Signing in to one's own account between guesses must not reset the address."""
    fail(client, STAKEHOLDER_LOGIN, "alice", 4)
    assert_signs_in(client, STAKEHOLDER_LOGIN, sam)
    assert_locked(fail(client, STAKEHOLDER_LOGIN, "alice", 1))


def test_reset_username_command_unlocks(client, alice):
    fail(client, ADMIN_LOGIN, "alice", 5)
    assert_locked(sign_in(client, ADMIN_LOGIN, "alice", PASSWORD, address="192.0.2.8"))
    out = io.StringIO()
    call_command("axes_reset_username", "alice", stdout=out)
    assert "attempts removed" in out.getvalue()
    assert_signs_in(client, ADMIN_LOGIN, alice, address="192.0.2.8")


def test_superuser_unlocks_from_the_admin(client, alice, django_user_model):
    fail(client, ADMIN_LOGIN, "alice", 5, address="192.0.2.9")
    root = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    admin = type(client)()
    admin.force_login(root)
    index = admin.get("/admin/apps/").content.decode()  # /admin/ is the dashboard
    assert 'href="/admin/axes/accessattempt/"' in index
    changelist = admin.get("/admin/axes/accessattempt/?q=alice")
    assert changelist.status_code == 200
    assert "alice" in changelist.content.decode()
    attempt = AccessAttempt.objects.get(username="alice")
    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert_signs_in(client, ADMIN_LOGIN, alice, address="192.0.2.9")


def test_commanders_do_not_see_the_attempts(commander_client):
    assert "/admin/axes/" not in commander_client.get("/admin/").content.decode()
    assert commander_client.get("/admin/axes/accessattempt/").status_code == 403


def test_locked_users_api_key_and_open_session_still_work(client, alice, declare):
    incident = declare()
    api = client_for(alice)
    console = type(client)()
    console.force_login(alice)
    fail(client, ADMIN_LOGIN, "alice", 5)
    assert_locked(sign_in(client, ADMIN_LOGIN, "alice", PASSWORD))

    response = api.get("/api/v1/incidents/", REMOTE_ADDR=HOME)
    assert response.status_code == 200
    assert incident.reference in response.content.decode()
    # The lock stops new sign-ins, not people already at work (SessionAuthentication too).
    assert console.get("/admin/incidents/incident/", REMOTE_ADDR=HOME).status_code == 200
    assert console.get("/api/v1/incidents/", REMOTE_ADDR=HOME).status_code == 200


# --- the settings, read from the environment in a fresh process -------------------------

PROBE = r"""
import json
import django
django.setup()
from axes.helpers import get_client_ip_address
from django.conf import settings
from django.test import RequestFactory
from rest_framework.throttling import BaseThrottle

cases = [
    {"REMOTE_ADDR": "10.0.0.1"},
    {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.20"},
    {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.20"},
    {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "junk, 198.51.100.20, 10.0.0.2"},
    {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 192.168.1.5, 10.0.0.2"},
]
seen = []
for meta in cases:
    request = RequestFactory().post("/admin/login/", **meta)
    seen.append([get_client_ip_address(request), BaseThrottle().get_ident(request)])
print(json.dumps({
    "limit": settings.AXES_FAILURE_LIMIT,
    "cooloff": settings.AXES_COOLOFF_TIME.total_seconds(),
    "seen": seen,
}))
"""


def probe(script=PROBE, **env):
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "probe-" + "x" * 50,
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=60,
    )
    return done


def test_limits_come_from_the_environment():
    done = probe(AXES_FAILURE_LIMIT="3", AXES_COOLOFF_MINUTES="2")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert (answer["limit"], answer["cooloff"]) == (3, 120)


@pytest.mark.parametrize(
    "name, value", [("AXES_FAILURE_LIMIT", "0"), ("AXES_COOLOFF_MINUTES", "five")]
)
def test_nonsense_limits_are_refused_at_start(name, value):
    done = probe("import config.settings", **{name: value})
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and name in done.stderr


def test_client_address_is_the_one_the_api_throttle_uses():
    """The lockout and DRF's throttle agree on who the client is, proxies or none."""
    # No proxy (the tests' own settings): test_forged_forwarded_for_does_not_dodge_...
    expected = {
        # One proxy: the entry it appended, the rightmost (the peer when it sent none).
        "1": ["10.0.0.1", "198.51.100.20", "198.51.100.20", "10.0.0.2", "10.0.0.2"],
        # Two proxies: the second from the right, what the outer one saw.
        "2": ["10.0.0.1", "198.51.100.20", "6.6.6.6", "198.51.100.20", "192.168.1.5"],
    }
    for proxies, addresses in expected.items():
        done = probe(NUM_PROXIES=proxies)
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout.splitlines()[-1])["seen"]
        assert [lockout for lockout, _ in seen] == addresses, proxies
        assert all(lockout == drf for lockout, drf in seen), proxies
