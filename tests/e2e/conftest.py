"""Real-browser tests: Playwright driving Debian's Chromium against live_server."""

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in the test thread, and Django refuses ORM
# calls there unless told otherwise (pytest-django sets up the database inside that loop).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Playwright cannot download its own browser here; the closed network also needs
    # Chromium's background traffic switched off.
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
        ],
    }


@pytest.fixture
def logged_in_page(page, live_server, commander):
    commander.set_password("correct horse battery")
    commander.save()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", commander.username)
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return page
