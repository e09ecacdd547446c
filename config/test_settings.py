"""Settings for the test suite: the real settings, made fast and deterministic."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-real-secret-" + "x" * 40)

from config.settings import *  # noqa: E402,F403
from config.settings import DATABASES, Q_CLUSTER  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests render pages without running collectstatic first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tasks run inline (and re-raise) unless a test starts a real cluster.
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
# Tests do not run collectstatic; WhiteNoise would only warn that staticfiles/ is missing.
MIDDLEWARE = [name for name in MIDDLEWARE if not name.startswith("whitenoise.")]  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not Django's in-memory default: the test that starts a real `qcluster`
    # process must see the test database. It lives outside the checkout so it can never
    # be committed, and the process id keeps two runs at once from sharing one file.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"sitrep-tests-{os.getpid()}.sqlite3")
    }

# Evidence written by tests outside the checkout, one folder a process (the forensics
# tests give each test a folder of its own).
EVIDENCE_ROOT = Path(tempfile.gettempdir()) / f"sitrep-evidence-{os.getpid()}"
