"""Settings for the test suite: the real settings, made fast and deterministic."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-real-secret-" + "x" * 40)

from config.settings import *  # noqa: E402,F403
from config.settings import Q_CLUSTER  # noqa: E402

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
