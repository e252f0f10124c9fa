"""Settings, read from the environment only (django-environ); safe production defaults."""

from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

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
    "pipeline",
    "kpis",
    "handoff",
    "alerts",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Resolves (tenant, principal, scopes) and runs the rest of the request inside one
    # transaction scoped to that tenant (ORM managers and PostgreSQL row-level security).
    "tenants.middleware.TenantMiddleware",
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
    # NOTE: tests create and migrate the test database through "owner" and point "default"
    # at it (tests/conftest.py: django_db_setup).
    # `migrate` defaults to the owner alias (tenants/management/commands/migrate.py).
    DATABASES = {"owner": _owner_db, "default": _app_db}
else:
    # SQLite: one connection; row-level security does not exist there (ORM scoping only).
    _owner_db["OPTIONS"] = {"timeout": 20}
    DATABASES = {"default": _owner_db}

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

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

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

# KPI snapshots: dirty days handled per refresh transaction.
KPI_REFRESH_MAX_DAYS = env.int("KPI_REFRESH_MAX_DAYS", default=400)
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
# The sweep catches dirty days whose refresh task was lost (worker down, broker restart).
CELERY_BEAT_SCHEDULE = {
    "kpis-refresh-dirty-sweep": {"task": "kpis.refresh_dirty_sweep", "schedule": 60.0},
    "alerts-evaluate-all": {"task": "alerts.evaluate_all", "schedule": 15 * 60.0},
    # Each tenant's weekly and monthly reports, due at its local midnight.
    "reports-generate-due": {"task": "reports.generate_due_all", "schedule": crontab(minute=5)},
    "kpis-rebuild-all-nightly": {
        "task": "kpis.rebuild_all",
        "schedule": crontab(hour=18, minute=30),  # 03:30 in Tokyo
    },
}

# The cache coalesces snapshot refreshes across web and worker processes, so it must be
# shared (Redis) whenever a real worker runs; in-process memory is enough for eager mode.
CACHE_URL = env.str(
    "CACHE_URL",
    default=REDIS_URL or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else ""),
)
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
