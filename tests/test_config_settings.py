"""Settings come from the environment and are production-safe when told so."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    environment = {
        key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
    }
    # A production environment: none of the test run's own variables.
    for name in ("SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE", "DEBUG", "HTTPS", "SITE_URL"):
        environment.pop(name, None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_variables():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="sitrep.example.com",
        HTTPS="true",
        SITE_URL="https://sitrep.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_links_would_point_at_localhost():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="sitrep.example.com",
        HTTPS="true",
    )
    assert result.returncode != 0
    assert "sitrep.W001" in result.stderr + result.stdout


def test_check_deploy_warns_without_https():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="sitrep.example.com",
    )
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout


def test_missing_secret_key_stops_start_up_with_a_clear_message():
    result = manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_bad_boolean_is_refused():
    result = manage("check", SECRET_KEY="x" * 50, DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_check_deploy_warns_behind_a_proxy_with_no_proxy_count():
    production = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "sitrep.example.com",
        "HTTPS": "true",
        "SITE_URL": "https://sitrep.example.com",
        "BEHIND_PROXY": "true",
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production)
    assert result.returncode != 0
    assert "sitrep.W002" in result.stderr + result.stdout
    result = manage("check", "--deploy", "--fail-level", "WARNING", NUM_PROXIES="1", **production)
    assert result.returncode == 0, result.stdout + result.stderr


def site_url(**env):
    # WEB_PORT empty unless given: the test run's own environment must not decide.
    environment = {"SECRET_KEY": "x" * 50, "WEB_PORT": "", **env}
    code = "from django.conf import settings; print(settings.SITE_URL)"
    result = manage("shell", "-c", code, **environment)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_site_url_defaults_to_the_port_the_server_listens_on():
    assert site_url() == "http://127.0.0.1:8000"
    assert site_url(WEB_PORT="8765") == "http://127.0.0.1:8765"
    # Said outright, it wins; a trailing slash is dropped.
    assert site_url(WEB_PORT="8765", SITE_URL="https://sitrep.example.com/") == (
        "https://sitrep.example.com"
    )
