"""Sitrep settings: one module, driven by environment variables (see README)."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. `make run` creates a local one; in production set a long "
        "random value in the environment."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Behind TLS (HTTPS=true) every cookie is secure and browsers are told to stay on HTTPS.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", HTTPS)
if env_bool("BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "incidents.apps.SitrepAdminConfig",  # django.contrib.admin, with the dashboard
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "django_q",
    "simple_history",
    "axes",
    "csp",
    "django_htmx",
    "incidents",
    "postmortems",
    "remediation",
    "alerts",
    "oncall",
    "playbooks",
    "forensics",
    # Last of ours: it chains the history rows every app above writes.
    "audit",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A NUL in a path or query string is a 400 before any view (PostgreSQL would 500).
    "incidents.middleware.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.htmx: the war-room page answers its own partial refreshes.
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Records the request's user on every history row written during the request.
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite by default; DATABASE_URL=postgres://... for production.
SQLITE_PATH = env_str("SQLITE_PATH", str(BASE_DIR / "sitrep.sqlite3"))
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{SQLITE_PATH}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write to the same file: WAL lets readers run
    # beside a writer, IMMEDIATE takes the write lock at BEGIN (no upgrade deadlock),
    # and the timeout waits for a busy lock instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # PostgreSQL's JIT compiles a query the planner thinks costly; for the admin's
    # sorted lists (a CASE over 100,000 incidents, then LIMIT 50) that took 600 ms of
    # an 800 ms query, and no query here runs long enough to win it back.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c jit=off")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out sign-in before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# Stored and computed in UTC; TIME_ZONE is what people see in the admin.
USE_TZ = True
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# django-q2: the ORM broker needs no extra service; REDIS_URL switches to Redis.
# timeout < retry, or a task still running is handed out again (ECOSYSTEM pitfall 1);
# one attempt only: retries and backoff are kept on our own outbox rows.
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER = {
    "name": "sitrep",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": 60,
    "retry": 120,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Reverse proxies in front of us, each appending the address it saw to X-Forwarded-For.
# The API throttle and the sign-in lockout both read the client address this way.
NUM_PROXIES = env_int("NUM_PROXIES", 0)
if NUM_PROXIES < 0:
    raise ImproperlyConfigured(f"NUM_PROXIES={NUM_PROXIES}: give 0 or more reverse proxies")

# --- REST API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "incidents.api.authentication.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["incidents.api.permissions.ModelPermissions"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["incidents.api.parsers.BoundedJSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "incidents.api.ordering.StableOrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["incidents.api.throttling.APIKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": env_str("API_THROTTLE_RATE", "1200/min")},
    # Only trust X-Forwarded-For as far as our own proxies set it (ECOSYSTEM pitfall 9).
    "NUM_PROXIES": NUM_PROXIES,
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "incidents.api.schema.SitrepAutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "incidents.api.errors.SitrepExceptionHandler",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sitrep API",
    "DESCRIPTION": "Declare, run and read incidents. Authenticate with "
    "`Authorization: Bearer <API key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Group operations by resource (incidents, services…), not under one "v1" tag.
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI and Redoc from our own static files: no CDN on closed networks.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from swagger.io's online validator: an outside origin, and the spec is ours.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Name the error enums once instead of letting each endpoint invent its own.
    "ENUM_NAME_OVERRIDES": {
        **{
            name: f"drf_standardized_errors.openapi_serializers.{name}.choices"
            for name in (
                "ValidationErrorEnum",
                "ClientErrorEnum",
                "ServerErrorEnum",
                *(f"ErrorCode{code}Enum" for code in (401, 403, 404, 405, 406, 415, 429, 500)),
            )
        },
        "IncidentStatusEnum": "incidents.models.Status.choices",
        # Every kind the installed apps register (read once the apps are ready).
        "TimelineKindEnum": "incidents.extensions.timeline_kind_choices",
        "ManualTimelineKindEnum": "incidents.models.MANUAL_TIMELINE_KINDS",
        "PostMortemStatusEnum": "postmortems.models.PostMortem.Status",
        "FactorCategoryEnum": "postmortems.models.ContributingFactor.Category",
        "ActionItemStatusEnum": "remediation.models.ActionItem.Status",
        "ChecklistStepStatusEnum": "playbooks.models.ChecklistStep.Status",
        "ActionItemCategoryEnum": "remediation.models.ActionItem.Category",
        "AlertStatusEnum": "alerts.models.Alert.Status",
        "AlertSourceKindEnum": "alerts.sources.kind_choices",
        "ContactMethodKindEnum": "oncall.api.pages.KIND_CHOICES",
        "OnCallRoleEnum": "oncall.models.OnCallRole",
        "IncidentRoleEnum": "incidents.models.Role",
        "EvidenceKindEnum": "forensics.models.EvidenceItem.Kind",
        "EvidenceIntegrityEnum": "forensics.models.EvidenceItem.Integrity",
        "CustodyActionEnum": "forensics.models.CustodyRecord.Action",
        # The name the detection rules' action had before custody records had one too.
        "ActionEnum": "alerts.models.DetectionRule.Action",
    },
    "POSTPROCESSING_HOOKS": ["drf_standardized_errors.openapi_hooks.postprocess_schema_enums"],
}

# The public status page, JSON and feed are cached this long (0: not at all); a change
# the public may see shows at once regardless (incidents/status_page.py: the cache).
STATUS_PAGE_CACHE_SECONDS = env_int("STATUS_PAGE_CACHE_SECONDS", 30)

# Throttle counters must be shared by every web worker: Redis when there is one.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }

SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
# History is the forensic record; reverting from it would bypass the services' rules.
SIMPLE_HISTORY_REVERT_DISABLED = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Members of this group see every confidential incident; others see only their own.
SECURITY_GROUP = env_str("SECURITY_GROUP", "Security")

# --- Notifications ---
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "sitrep@localhost")
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 5)
NOTIFY_RETRY_BASE_SECONDS = env_int("NOTIFY_RETRY_BASE_SECONDS", 30)
NOTIFY_HTTP_TIMEOUT = env_int("NOTIFY_HTTP_TIMEOUT", 10)
# Where people reach this Sitrep: links in notifications (no request to build them from).
# Unset, the address `make run` serves on (Procfile: 127.0.0.1, port WEB_PORT).
WEB_PORT = env_int("WEB_PORT", 8000)
SITE_URL = (env_str("SITE_URL") or f"http://127.0.0.1:{WEB_PORT}").rstrip("/")
# Texts and phone calls go to an SMS/voice gateway (any that takes a JSON webhook: a
# small adapter in front of Twilio, Vonage, an SMS modem), signed with the secret.
PHONE_GATEWAY_URL = env_str("PHONE_GATEWAY_URL")
PHONE_GATEWAY_SECRET = env_str("PHONE_GATEWAY_SECRET")

# --- On-call (the oncall app) ---
# How long the acknowledge link in a page works.
ONCALL_ACK_LINK_HOURS = env_int("ONCALL_ACK_LINK_HOURS", 24)
# Anyone may add a webhook to be paged by, and the worker posts to it: unless allowed
# here (a closed network, the demo's local sink), only https:// to a public address, so
# a contact method cannot aim the worker at this machine or the internal network.
ONCALL_PRIVATE_WEBHOOKS = env_bool("ONCALL_PRIVATE_WEBHOOKS", False)

# Stakeholders sign in on Sitrep's own page (they need no admin access) to read reviews.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "postmortems:list"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in lockout (django-axes), on the admin and the stakeholder sign-in alike ---
# A username is locked after AXES_FAILURE_LIMIT failures from any address (slow guessing
# from many machines), and an address after as many failures for any usernames (one machine
# spraying passwords). Either lock lasts AXES_COOLOFF_MINUTES after the latest failure;
# each try while locked, even with the right password, starts the wait again. Sessions
# already signed in and API keys are untouched: neither goes through authenticate().
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_MINUTES = env_int("AXES_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured(
        f"AXES_FAILURE_LIMIT={AXES_FAILURE_LIMIT}, AXES_COOLOFF_MINUTES={AXES_COOLOFF_MINUTES}: "
        "both must be 1 or more"
    )
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success must not wipe the address's count: an attacker would sign in to their own
# account between guesses at someone else's.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"
# No start-up banner on every manage.py command; failures are still logged as warnings.
AXES_VERBOSE = False
# The client address is the one the API throttle counts (NUM_PROXIES): without proxies
# the TCP peer, X-Forwarded-For ignored; behind N proxies the entry the outermost one of
# ours appended, counted from the right, so whatever a client wrote there is skipped.
AXES_CLIENT_IP_CALLABLE = "config.lockout.client_address"

# --- Content-Security-Policy (django-csp) on every response ---
# Our pages, the admin, Swagger UI and Redoc run only scripts served from here; an inline
# script of ours carries django-csp's nonce. Inline styles stay allowed: severity badges,
# the admin and Redoc set style attributes. Nothing loads from another origin. (Redoc's
# page alone may also start its search worker from a blob: URL: config/urls.py.)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Remediation ---
# Days from creation to an action item's default due date, by priority P1..P4.
_due_days = env_list("ACTION_ITEM_DUE_DAYS", "7,30,90,180")
if len(_due_days) != 4 or not all(days.isdigit() and int(days) > 0 for days in _due_days):
    raise ImproperlyConfigured(
        f"ACTION_ITEM_DUE_DAYS={','.join(_due_days)!r}: give four whole numbers of days "
        "for P1,P2,P3,P4, e.g. 7,30,90,180"
    )
ACTION_ITEM_DUE_DAYS = {f"P{rank}": int(days) for rank, days in enumerate(_due_days, start=1)}
# Overdue items remind their owner daily; after this many days the review's owner too.
ACTION_ITEM_ESCALATE_AFTER_DAYS = env_int("ACTION_ITEM_ESCALATE_AFTER_DAYS", 3)
# Items blocked longer than this are flagged (admin, report, a reminder).
ACTION_ITEM_BLOCKED_FLAG = timedelta(days=env_int("ACTION_ITEM_BLOCKED_FLAG_DAYS", 7))

# --- Alert intake (alerts app) -----------------------------------------------------------
# A body over this size is refused (413) before it is read; a payload of more alerts than
# this is refused whole (413) rather than half-stored.
ALERTS_MAX_BODY_BYTES = env_int("ALERTS_MAX_BODY_BYTES", 1024 * 1024)
ALERTS_MAX_PER_PAYLOAD = env_int("ALERTS_MAX_PER_PAYLOAD", 1000)
# A signed request whose timestamp header is further than this from now is a replay.
ALERTS_SIGNATURE_MAX_SKEW = timedelta(seconds=env_int("ALERTS_SIGNATURE_MAX_SKEW_SECONDS", 300))
# Processed raw payloads are kept this long (rejected and failed ones too).
ALERTS_PAYLOAD_RETENTION = timedelta(days=env_int("ALERTS_PAYLOAD_RETENTION_DAYS", 30))

# --- Forensics: the evidence locker and breach deadlines (forensics app) ------------------
# Uploaded evidence lives here, outside STATIC_ROOT and MEDIA_ROOT: nothing serves it by
# URL, only the permission-checked download that writes a custody record.
EVIDENCE_ROOT = Path(env_str("EVIDENCE_ROOT") or BASE_DIR / "evidence")
# An upload larger than this is refused (413 from the API before the body is read).
EVIDENCE_MAX_UPLOAD_BYTES = env_int("EVIDENCE_MAX_UPLOAD_MB", 2048) * 1024 * 1024
# The regulator must hear of a personal-data breach within this many hours of detection.
BREACH_NOTIFICATION_HOURS = env_int("BREACH_NOTIFICATION_HOURS", 72)
if BREACH_NOTIFICATION_HOURS < 1 or EVIDENCE_MAX_UPLOAD_BYTES < 1:
    raise ImproperlyConfigured(
        f"BREACH_NOTIFICATION_HOURS={BREACH_NOTIFICATION_HOURS}, "
        f"EVIDENCE_MAX_UPLOAD_MB={EVIDENCE_MAX_UPLOAD_BYTES // 1024 // 1024}: both must be 1 "
        "or more"
    )
# Incident types (slugs) whose incidents get a breach assessment and its deadline.
BREACH_INCIDENT_TYPES = env_list("BREACH_INCIDENT_TYPES", "security,data")
# The Django group told, with the commander, as a breach deadline nears and when it passes.
BREACH_LEGAL_GROUP = env_str("BREACH_LEGAL_GROUP", "Legal and compliance")

# --- Audit chain (audit app) ---------------------------------------------------------------
# Addresses outside this installation that each daily checkpoint (the chain's head) is
# e-mailed to, comma-separated; empty: checkpoints are only kept in the database.
AUDIT_CHECKPOINT_EMAIL = env_list("AUDIT_CHECKPOINT_EMAIL")
if any("@" not in address for address in AUDIT_CHECKPOINT_EMAIL):
    raise ImproperlyConfigured(
        f"AUDIT_CHECKPOINT_EMAIL={','.join(AUDIT_CHECKPOINT_EMAIL)!r}: give e-mail addresses, "
        "comma-separated"
    )
