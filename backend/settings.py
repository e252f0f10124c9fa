"""Settings, read from the environment only (django-environ); safe production defaults."""

import warnings
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from backend.ops.logs import logging_config
from backend.ops.sentry import sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# NOTE: a local .env file is a convenience for development; the process environment wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

_DEV_SECRET = "insecure-development-key-do-not-use-in-production"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (production mode)."
    )

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# A failed CSRF check answers JSON on the API (backend/views.py), HTML in the admin.
CSRF_FAILURE_VIEW = "backend.views.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "strawberry_django",
    "tenants",
    "notifications",
    "pipeline",
    "kpis",
    "handoff",
    "alerts",
    "reports",
    "console",
]

MIDDLEWARE = [
    # Health probes answer first: no session, tenant, transaction or host check
    # (backend/ops/health.py); then one log line per request (backend/ops/logs.py).
    "backend.ops.health.ProbeMiddleware",
    "backend.ops.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and JS) served by the app itself in production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Resolves (tenant, principal, scopes) and runs the rest of the request inside one
    # transaction scoped to that tenant (ORM managers and PostgreSQL row-level security).
    "tenants.middleware.TenantMiddleware",
    # The admin in the request tenant's language and time zone (Tenant.language, .timezone).
    "tenants.admin_locale.AdminLocaleMiddleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database -------------------------------------------------------------------------
# DATABASE_URL is the schema owner's connection: migrations run with it. On PostgreSQL the
# application itself connects as a separate role (DATABASE_APP_USER, default kpi_app) that
# is neither superuser, nor table owner, nor BYPASSRLS, so row-level security holds for it.
_owner_db = env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
IS_POSTGRES = _owner_db["ENGINE"] == "django.db.backends.postgresql"
for _db in (_owner_db,):
    _db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True
    _db["ATOMIC_REQUESTS"] = False  # TenantMiddleware opens the request transaction.
    if _db["ENGINE"] == "django.db.backends.postgresql":
        # A black-holed database fails a request (and the readiness probe) instead of hanging.
        _db.setdefault("OPTIONS", {}).setdefault(
            "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
        )

if IS_POSTGRES:
    _app_db = (
        env.db("DATABASE_APP_URL")
        if env.str("DATABASE_APP_URL", default="")
        else {
            **_owner_db,
            "USER": env.str("DATABASE_APP_USER", default="kpi_app"),
            "PASSWORD": env.str("DATABASE_APP_PASSWORD", default=""),
        }
    )
    _app_db.setdefault("CONN_MAX_AGE", _owner_db["CONN_MAX_AGE"])
    _app_db["CONN_HEALTH_CHECKS"] = True
    _app_db.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", _owner_db["OPTIONS"]["connect_timeout"]
    )
    # NOTE: tests create and migrate the test database through "owner" and point "default"
    # at it (tests/conftest.py: django_db_setup).
    # `migrate` defaults to the owner alias (tenants/management/commands/migrate.py).
    DATABASES = {"owner": _owner_db, "default": _app_db}
else:
    # SQLite: one connection; row-level security does not exist there (ORM scoping only).
    _owner_db["OPTIONS"] = {"timeout": 20}
    DATABASES = {"default": _owner_db}
    # The activities' covering index (INCLUDE columns) is a PostgreSQL optimization; SQLite
    # builds it without them, which changes no result. Not worth a warning on every command.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

# A streaming replica of the primary for GraphQL query operations (backend/replica.py);
# reached as the app role, so row-level security holds there too. PostgreSQL only.
if IS_POSTGRES and env.str("DATABASE_REPLICA_URL", default=""):
    _replica_db = env.db("DATABASE_REPLICA_URL")
    _replica_db["CONN_MAX_AGE"] = _owner_db["CONN_MAX_AGE"]
    _replica_db["CONN_HEALTH_CHECKS"] = True
    _replica_db["ATOMIC_REQUESTS"] = False
    _replica_db.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", _owner_db["OPTIONS"]["connect_timeout"]
    )
    # Tests read the test database through it rather than create another one.
    _replica_db["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica_db
DATABASE_ROUTERS = ["backend.replica.ReplicaRouter"]

DATABASE_APP_ROLE = DATABASES["default"]["USER"] if IS_POSTGRES else ""
DATABASE_APP_PASSWORD = DATABASES["default"].get("PASSWORD", "") if IS_POSTGRES else ""
# Tests flush tables between transactional tests, which needs TRUNCATE; production does not.
DATABASE_APP_GRANT_TRUNCATE = env.bool("DATABASE_APP_GRANT_TRUNCATE", default=False)
# The app role's statement_timeout (ALTER ROLE ... SET, applied after every migrate): a
# runaway statement is cancelled instead of holding a connection and its locks. A full
# rebuild of a large tenant raises it for its own transaction only.
DATABASE_APP_STATEMENT_TIMEOUT = env.str("DATABASE_APP_STATEMENT_TIMEOUT", default="30s")
DATABASE_APP_LONG_STATEMENT_TIMEOUT = env.str(
    "DATABASE_APP_LONG_STATEMENT_TIMEOUT", default="30min"
)
# The key of the proof that binds a transaction's tenant setting to this application
# (tenants/tenant_proof.py); empty: derived from DJANGO_SECRET_KEY. Changing it (or the
# secret key it derives from) takes a `migrate`, which stores the new key for the policies.
DATABASE_RLS_KEY = env.str("DATABASE_RLS_KEY", default="")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# --- Admin languages: Django's own catalogs plus ours (locale/) for model and admin labels.
LANGUAGES = [("ja", "日本語"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
# `collectstatic` (run in the Docker image) gathers the admin's files into STATIC_ROOT and
# WhiteNoise serves them, compressed. In debug mode it serves them from the apps directly.
# NOTE: not the manifest storage: it would make every template that links a static file
# fail until collectstatic has run (tests and `make run` never run it).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if DEBUG:
    # NOTE: in debug mode the files come from the apps (WhiteNoise's finders): an empty
    # STATIC_ROOT is expected there, not worth a warning on every `make run`.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

# --- Web console (/app/) ---------------------------------------------------------------
# Session sign-in for the console (and for views behind login_required).
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:app"
LOGOUT_REDIRECT_URL = "console:login"

# --- Security defaults (production mode unless DJANGO_DEBUG) ----------------------------
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Batches of records arrive as one GraphQL request; anything larger is refused up front.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("GRAPHQL_MAX_BODY_BYTES", default=5 * 1024 * 1024)
# Rows (of every kind together) one ingestRecords request may carry; a larger batch is
# refused whole with BATCH_TOO_LARGE. Partners split bigger imports into several requests.
INGEST_MAX_BATCH_ROWS = env.int("INGEST_MAX_BATCH_ROWS", default=5000)
# The largest CRM export `importCrmFile` accepts (a multipart upload; DATA_UPLOAD_MAX_MEMORY_SIZE
# does not count files). Larger exports: split them, or `manage.py import_crm`.
CRM_IMPORT_MAX_UPLOAD_BYTES = env.int("CRM_IMPORT_MAX_UPLOAD_BYTES", default=20 * 1024 * 1024)

# KPI snapshots: dirty days handled per refresh transaction.
KPI_REFRESH_MAX_DAYS = env.int("KPI_REFRESH_MAX_DAYS", default=400)
# kpiTree responses are cached per tenant KPI read version (kpis/graphql/tree_cache.py) for
# at most this many seconds; 0 turns the cache off.
KPI_TREE_CACHE_SECONDS = env.int("KPI_TREE_CACHE_SECONDS", default=300)
# After a change, one request computes a cached answer while the others asking the same wait
# for it, up to this long (then compute it themselves); the computing request's claim lapses
# after KPI_TREE_CACHE_LOCK_SECONDS if it never finishes (a killed worker).
KPI_TREE_CACHE_WAIT_SECONDS = env.float("KPI_TREE_CACHE_WAIT_SECONDS", default=2.0)
KPI_TREE_CACHE_LOCK_SECONDS = env.int("KPI_TREE_CACHE_LOCK_SECONDS", default=10)
# Analyse bulk-loaded pipeline tables before snapshot work when autovacuum has not yet
# (pipeline/statistics.py); needs the schema owner's connection (PostgreSQL).
PLANNER_STATISTICS_UPKEEP = env.bool("PLANNER_STATISTICS_UPKEEP", default=True)

# --- GraphQL ---------------------------------------------------------------------------
GRAPHQL_MAX_DEPTH = env.int("GRAPHQL_MAX_DEPTH", default=10)
GRAPHQL_MAX_ALIASES = env.int("GRAPHQL_MAX_ALIASES", default=15)
GRAPHQL_MAX_TOKENS = env.int("GRAPHQL_MAX_TOKENS", default=5000)
GRAPHQL_MAX_PAGE_SIZE = env.int("GRAPHQL_MAX_PAGE_SIZE", default=100)
GRAPHQL_INTROSPECTION = env.bool("GRAPHQL_INTROSPECTION", default=DEBUG)
GRAPHIQL = env.bool("GRAPHIQL", default=DEBUG)

STRAWBERRY_DJANGO = {
    "FIELD_DESCRIPTION_FROM_HELP_TEXT": True,
    "TYPE_DESCRIPTION_FROM_MODEL_DOCSTRING": True,
    "MUTATIONS_DEFAULT_HANDLE_ERRORS": True,
}

# --- API tokens ------------------------------------------------------------------------
API_TOKEN_PREFIX = "kpi"
# last_used_at is written at most this often per token, not on every request.
API_TOKEN_LAST_USED_RESOLUTION_SECONDS = 60
# Per-token rate limits, per minute (tenants/rate_limits.py): the defaults for tokens that
# set none of their own. Counted in the cache below, so shared by every web process on Redis.
API_TOKEN_RATE_REQUESTS_PER_MINUTE = env.int("API_TOKEN_RATE_REQUESTS_PER_MINUTE", default=600)
API_TOKEN_RATE_ROWS_PER_MINUTE = env.int("API_TOKEN_RATE_ROWS_PER_MINUTE", default=60_000)

# --- Celery ----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Without a broker, tasks run eagerly in-process (zero-setup demo); with one, a worker runs them.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL or None)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
# TRICKY: Redis redelivers unacknowledged tasks after the visibility timeout; it must stay
# above the hard time limit or a long task runs twice while still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
# --- Celery queues: latency-sensitive work never waits behind bulk work -----------------
# `default`: a tenant's snapshot refresh after a write, alert evaluation, the minute sweep,
# the worker heartbeat. `bulk`: full rebuilds, the nightly fan-out, planner statistics
# upkeep. `notifications`: deliveries (webhooks, e-mail), so a slow endpoint never holds up
# refreshes or evaluations. docker-compose runs a worker per kind (`-Q default,notifications`
# and `-Q bulk`); a worker started without -Q consumes every queue declared here (`make
# worker` does that).
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = {"default": {}, "bulk": {}, "notifications": {}}
CELERY_TASK_ROUTES = {
    "kpis.rebuild_tenant": {"queue": "bulk"},
    "kpis.rebuild_all": {"queue": "bulk"},
    "pipeline.analyze_stale_tables": {"queue": "bulk"},
    # Report generation reads whole periods of every scope: bulk work, never before a refresh.
    "reports.*": {"queue": "bulk"},
    "notifications.*": {"queue": "notifications"},
    # Qualifying leads and SLA steps are short, per tenant and user-visible: not bulk work.
    "handoff.*": {"queue": "default"},
}
# TRICKY: Celery must not replace the logging set up from LOGGING below (its root handler
# plus Django's printed every line twice); backend/celery.py answers its setup_logging.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The local hour at which each tenant's nightly rebuild is queued (kpis.rebuild_all runs
# hourly and queues the tenants for which it is now this hour in their own time zone, when
# their data changed since their last rebuild; on their local Monday whatever changed).
KPI_NIGHTLY_REBUILD_HOUR = env.int("KPI_NIGHTLY_REBUILD_HOUR", default=3)
HEALTH_HEARTBEAT_INTERVAL = env.int("HEALTH_HEARTBEAT_INTERVAL", default=30)
# The sweep catches dirty days whose refresh task was lost (worker down, broker restart).
# The hourly fan-out rebuilds, at each tenant's local night, the tenants whose data changed
# since their last rebuild, and every tenant on its local Monday (that also corrects edits
# made below the services, such as raw SQL, which no change marker sees). Statistics upkeep
# analyses bulk-loaded tables.
CELERY_BEAT_SCHEDULE = {
    "kpis-refresh-dirty-sweep": {"task": "kpis.refresh_dirty_sweep", "schedule": 60.0},
    "alerts-evaluate-all": {"task": "alerts.evaluate_all", "schedule": 15 * 60.0},
    # Behaviour windows (clicked twice in 14 days) move with the clock, not only with data.
    "handoff-evaluate-all": {"task": "handoff.evaluate_all", "schedule": 60 * 60.0},
    # Handoff SLA reminders, escalations and overdue returns (戻し).
    "handoff-sla-all": {"task": "handoff.sla_all", "schedule": 5 * 60.0},
    # Each tenant's weekly and monthly reports, due at its local midnight.
    "reports-generate-due": {"task": "reports.generate_due_all", "schedule": crontab(minute=5)},
    "kpis-rebuild-all-hourly": {"task": "kpis.rebuild_all", "schedule": crontab(minute=30)},
    "ops-worker-heartbeat": {
        "task": "ops.worker_heartbeat",
        "schedule": float(HEALTH_HEARTBEAT_INTERVAL),
    },
    "notifications-retry-due-webhooks": {
        "task": "notifications.retry_due_webhooks",
        "schedule": 60.0,
    },
    "pipeline-analyze-stale-tables": {
        "task": "pipeline.analyze_stale_tables",
        "schedule": 5 * 60.0,
    },
}


# --- Notifications ---------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="KPI platform <kpi@localhost>")
# Where people reach this server: links in e-mails and webhook payloads (no request to ask).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# Webhook targets on private, loopback, link-local or metadata addresses are refused unless
# this is on (tests; an integration on a private network on purpose).
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=3.0)
WEBHOOK_TOTAL_TIMEOUT_SECONDS = env.float("WEBHOOK_TOTAL_TIMEOUT_SECONDS", default=10.0)
# Waits before each retry of a failed delivery; dead letter after the last one.
WEBHOOK_RETRY_BACKOFF_SECONDS = env.list(
    "WEBHOOK_RETRY_BACKOFF_SECONDS", cast=int, default=[60, 300, 1800, 7200, 21600]
)
# Seals the webhook signing secrets at rest (default: SECRET_KEY; changing it means rotating
# every endpoint's secret).
WEBHOOK_SECRET_KEY = env.str("WEBHOOK_SECRET_KEY", default="")

# The cache coalesces snapshot refreshes across web and worker processes, so it must be
# shared (Redis) whenever a real worker runs; in-process memory is enough for eager mode.
CACHE_URL = env.str(
    "CACHE_URL",
    default=REDIS_URL or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else ""),
)
# NOTE: short socket timeouts: a black-holed Redis fails fast (the per-token rate limiter
# then fails open) instead of hanging every request.
_CACHE_TIMEOUT = env.float("CACHE_SOCKET_TIMEOUT", default=1.0)
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {
                "socket_connect_timeout": _CACHE_TIMEOUT,
                "socket_timeout": _CACHE_TIMEOUT,
            },
        }
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Operations: logs, health probes, error tracking -------------------------------------
# One line per request and per task (backend/ops/logs.py): JSON for log collectors, text
# for a person at a terminal; JSON unless in debug mode.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'text' or 'json'.")
LOGGING = logging_config(level=env.str("LOG_LEVEL", default="INFO"), log_format=LOG_FORMAT)

# /readyz (backend/ops/health.py): a worker heartbeat older than this (seconds) is "not
# ready" when a broker is configured (0: not checked); more dirty days due now than
# HEALTH_MAX_DUE_DIRTY_DAYS is "not ready" (0: counted, never failing).
HEALTH_WORKER_HEARTBEAT_MAX_AGE = env.int("HEALTH_WORKER_HEARTBEAT_MAX_AGE", default=300)
HEALTH_MAX_DUE_DIRTY_DAYS = env.int("HEALTH_MAX_DUE_DIRTY_DAYS", default=0)
HEALTH_CHECK_TIMEOUT_SECONDS = env.float("HEALTH_CHECK_TIMEOUT_SECONDS", default=2.0)

# Error tracking: on only when SENTRY_DSN is set; credentials are scrubbed before sending.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    sentry_init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        release=env.str("SENTRY_RELEASE", default=""),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )
