"""govsite settings: every value comes from the environment (one module, no per-env files).

Unset `DATABASE_URL`, `REDIS_URL` and `LITELLM_URL` give the embedded defaults of a first run:
SQLite under var/, jobs in-process, the sandbox gateway. Production sets them.
"""

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# litellm must never fetch its price map from the network at import: use the one it ships.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GOVSITE_VAR_DIR", BASE_DIR / "var"))

# Every environment variable this module reads, so a test can check docker-compose sets only these.
ENV_VARS_READ: set[str] = {"GOVSITE_VAR_DIR"}


def env(name: str, default: str = "") -> str:
    ENV_VARS_READ.add(name)
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name, "true" if default else "false").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    raw = env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off; govsite refuses to start.")
    SECRET_KEY = "django-insecure-demo-only-key-set-SECRET_KEY-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Reverse proxies (addresses or networks) whose X-Forwarded-For is believed (govsite.web.client_ip): the
# client's address for login limits and the audit log. Unset: REMOTE_ADDR, and the header is ignored.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an address or a network") from _exc
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "csp",
    "govsite",
    "govsite.accounts",
    "govsite.gateway",
    "audit",
    "keys",
    "budgets",
    "adoption",
    "govsite.api",
    "govsite.devtools",  # dev tooling: the sandbox, benchmarks and demo commands; production never calls it
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # After allauth's: people whose role requires a second factor enrol before using the console.
    "govsite.accounts.mfa.MfaEnrolmentMiddleware",
    "audit.middleware.RequestContextMiddleware",
]

ROOT_URLCONF = "govsite.urls"
WSGI_APPLICATION = "govsite.wsgi.application"
ASGI_APPLICATION = "govsite.asgi.application"

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
                "govsite.context_processors.site",
            ],
            # `amount` (figures grouped by thousands) on every page without a {% load %}.
            "builtins": ["govsite.templatetags.figures"],
        },
    },
]

# --- Database: PostgreSQL in production and CI, SQLite for the embedded demo.
DATABASE_URL = env("DATABASE_URL")
# Least privilege (govsite/dbroles.py): DATABASE_URL is the app's role, which owns nothing; the schema's owner
# runs `migrate` (the app's DDL at run time goes through the owner's functions). Unset: one role does both
# (SQLite, a developer's PostgreSQL user).
DATABASE_OWNER_URL = env("DATABASE_OWNER_URL")
if DATABASE_OWNER_URL and not DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_OWNER_URL is set but DATABASE_URL (the app's role) is not.")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "govsite.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
    # The demo's SQLite cannot enforce NULLS NOT DISTINCT uniqueness (PostgreSQL does); the ingest
    # service upserts on the same columns either way.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]
# A streaming replica for the dashboards, adoption, reports and evidence exports (govsite.replica); decisions,
# permission checks and pages after a change read the primary. Above REPLICA_MAX_LAG_SECONDS of lag, the primary.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL")
if DATABASE_URL and DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
# Prepared statements on PostgreSQL: a statement a connection has run DB_PREPARE_THRESHOLD times is prepared
# on the server and planned once, not at every page (the queues' and lists' joins cost more to plan than to
# run). It needs server-side parameter binding. 0 turns both off (behind a pooler in transaction mode, such as
# PgBouncer before 1.21, a prepared statement does not survive from one transaction to the next).
DB_PREPARE_THRESHOLD = env_int("DB_PREPARE_THRESHOLD", 5)
if DATABASE_URL and DB_PREPARE_THRESHOLD > 0:
    for _database in DATABASES.values():
        if _database["ENGINE"] == "django.db.backends.postgresql":
            _database.setdefault("OPTIONS", {}).update(
                {"server_side_binding": True, "prepare_threshold": DB_PREPARE_THRESHOLD}
            )
REPLICA_MAX_LAG_SECONDS = env_int("REPLICA_MAX_LAG_SECONDS", 30)
REPLICA_LAG_CHECK_SECONDS = env_int("REPLICA_LAG_CHECK_SECONDS", 2)
DATABASE_ROUTERS = ["govsite.replica.ReplicaRouter"]
# The dashboards' figures from the rollups are kept in the cache (CACHES) until a rollup changes
# (budgets/generation.py), at most this long; 0 computes them on every page. PostgreSQL only.
FIGURES_CACHE_SECONDS = env_int("FIGURES_CACHE_SECONDS", 3600)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: delivery only. Unset means jobs run in-process, right after the transaction commits.
REDIS_URL = env("REDIS_URL")
RQ_QUEUES = {"default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 300}}
# `manage.py rqworker` loads Django, the job modules, litellm's request models and its price map once,
# before it forks a child per job (govsite.worker); RQ_WORKER_CLASS=govsite.worker.PreloadedSimpleWorker
# runs jobs without forking.
RQ = {"WORKER_CLASS": env("RQ_WORKER_CLASS", "govsite.worker.PreloadedWorker")}
# The cache holds the failed-login counters (allauth) and the refused-token windows (govsite.api), so it
# must be shared by every process: Redis when there is one, else Django's database cache, whose table the
# accounts migration 0003 makes on every deployment (never a per-process memory cache).
DATABASE_CACHE_TABLE = "govsite_cache"
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": DATABASE_CACHE_TABLE,
            # Django culls a third of the entries past MAX_ENTRIES (300 by default): failures against a few
            # hundred made-up accounts would otherwise wipe the real accounts' failed-login counters.
            "OPTIONS": {"MAX_ENTRIES": env_int("DATABASE_CACHE_MAX_ENTRIES", 200_000)},
        }
    }

# --- The gateway. Unset LITELLM_URL: the sandbox gateway (govsite/devtools/sandbox/) on SANDBOX_PORT.
SANDBOX_PORT = env_int("SANDBOX_PORT", 4000)
LITELLM_URL = env("LITELLM_URL").rstrip("/")
LITELLM_MASTER_KEY = env("LITELLM_MASTER_KEY")
GATEWAY_IS_SANDBOX = not LITELLM_URL
if GATEWAY_IS_SANDBOX:
    LITELLM_URL = f"http://127.0.0.1:{SANDBOX_PORT}"
    LITELLM_MASTER_KEY = LITELLM_MASTER_KEY or "sk-sandbox-master-key"
GATEWAY_PUBLIC_URL = env("GATEWAY_PUBLIC_URL", LITELLM_URL).rstrip("/")
GATEWAY_TIMEOUT_SECONDS = float(env("GATEWAY_TIMEOUT_SECONDS", "10"))
SANDBOX_DB_PATH = Path(env("SANDBOX_DB_PATH", str(VAR_DIR / "sandbox-gateway.sqlite3")))
# Secrets waiting for their single reveal are encrypted with a key derived from this (or SECRET_KEY).
KEY_ENCRYPTION_SECRET = env("KEY_ENCRYPTION_SECRET")

# --- Auth: allauth for local accounts and OpenID Connect SSO.
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"

SSO_ONLY = env_bool("SSO_ONLY", False)
OIDC_SERVER_URL = env("OIDC_SERVER_URL")
OIDC_CLIENT_ID = env("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env("OIDC_CLIENT_SECRET")
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", "groups")
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", "Company SSO")

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_ADAPTER = "govsite.accounts.adapters.AccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = False
# Failed logins are limited per account (5 in 5 minutes: the 6th attempt is refused, a correct password
# included), never per address: failures against other accounts from an office's or a proxy's address do
# not stop anyone else's login. Per address only the rate of login attempts is limited, under the
# client's own address (TRUSTED_PROXIES). allauth keeps the counters in the shared cache (CACHES).
ACCOUNT_RATE_LIMITS = {
    "login_failed": env("LOGIN_FAILED_RATE_LIMIT", "5/5m/key"),
    "login": env("LOGIN_RATE_LIMIT", "60/m/ip"),
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}
# Accounts are created by admins or by SSO; the public signup form is closed.
ACCOUNT_ALLOW_SIGNUP = env_bool("ACCOUNT_ALLOW_SIGNUP", False)
SOCIALACCOUNT_ONLY = SSO_ONLY
SOCIALACCOUNT_ADAPTER = "govsite.accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": []}}
if OIDC_SERVER_URL:
    SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"].append(
        {
            "provider_id": "sso",
            "name": OIDC_PROVIDER_NAME,
            "client_id": OIDC_CLIENT_ID,
            "secret": OIDC_CLIENT_SECRET,
            "settings": {"server_url": OIDC_SERVER_URL, "oauth_pkce_enabled": True},
        }
    )

# --- Multi-factor authentication (allauth.mfa; govsite/accounts/mfa.py): an authenticator app (TOTP),
# security keys (WebAuthn) and recovery codes, for password accounts. People who sign in through SSO rely
# on their identity provider's second factor and are never asked here.
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = False  # a security key is a second factor, never the only one
MFA_ADAPTER = "govsite.accounts.mfa.MfaAdapter"  # TOTP secrets and recovery-code seeds encrypted at rest
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", "govsite")
MFA_RECOVERY_CODES_SHOW_ONCE = True  # like a key's secret: shown once, then only new codes
# WebAuthn needs https; only tests and the demo (DEBUG, at http://localhost:8000: browsers refuse an IP address
# as a security key's site) may allow plain http.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env_bool("MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN", DEBUG)
# MFA_REQUIRED: people holding one of MFA_REQUIRED_ROLES (org roles admin/finance/auditor, or "approver" of any
# team) who sign in with a password must enrol before using the console, and approving a key or an increase,
# changing roles or policy and exporting evidence ask for the second factor again when the last one is older
# than MFA_STEP_UP_SECONDS. Off by default so a first run (make demo) signs in with the password alone.
MFA_REQUIRED = env_bool("MFA_REQUIRED", False)
MFA_REQUIRED_ROLES = frozenset(env_list("MFA_REQUIRED_ROLES", "admin,finance,approver"))
if _unknown_roles := MFA_REQUIRED_ROLES - {"admin", "finance", "auditor", "approver", "member"}:
    raise ImproperlyConfigured(f"MFA_REQUIRED_ROLES: unknown role(s) {sorted(_unknown_roles)}")
MFA_STEP_UP_SECONDS = env_int("MFA_STEP_UP_SECONDS", 15 * 60)

# --- REST framework: authenticated by default.
REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "govsite.api.errors.exception_handler",
}

# The OpenAPI schema (drf-spectacular): /api/schema/, and `check` generates it too.
SPECTACULAR_SETTINGS = {
    "TITLE": "govsite API",
    "DESCRIPTION": (
        "The governance console's REST API: key requests and approvals, keys, budgets and increases, "
        "spend and adoption summaries, the audit log and evidence exports. It applies the same rules as "
        "the site. Authenticate with a personal API token (`Authorization: Bearer gst_...`, made under "
        "Settings → API tokens) or, from the browser, the session (writes need the CSRF token). Errors are "
        '`{"error": {"code", "message", "fields"}}`; `fields` names each field in error.'
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        # Key requests and budget increases share their statuses (pending, approved, rejected, cancelled).
        "RequestStatusEnum": "keys.models.KeyRequest.Status",
        "KeyStatusEnum": "keys.models.VirtualKey.Status",
    },
}

# A refused API token is audited once per window per token and source, with the count of the window before.
API_TOKEN_REFUSAL_WINDOW_SECONDS = env_int("API_TOKEN_REFUSAL_WINDOW_SECONDS", 900)

# --- Email.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "govsite <govsite@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Product settings.
ADOPTION_MIN_GROUP = env_int("ADOPTION_MIN_GROUP", 5)
# Keys
KEY_MAX_MONTHLY_BUDGET = env("KEY_MAX_MONTHLY_BUDGET", "100000")
KEY_ROTATION_GRACE_HOURS = env_int("KEY_ROTATION_GRACE_HOURS", 24)
GATEWAY_COMMAND_MAX_ATTEMPTS = env_int("GATEWAY_COMMAND_MAX_ATTEMPTS", 8)
GATEWAY_COMMAND_LEASE_SECONDS = env_int("GATEWAY_COMMAND_LEASE_SECONDS", 300)
# The ledger
LEDGER_PULL_OVERLAP_SECONDS = env_int("LEDGER_PULL_OVERLAP_SECONDS", 120)
LEDGER_PULL_INITIAL_LOOKBACK_HOURS = env_int("LEDGER_PULL_INITIAL_LOOKBACK_HOURS", 24)
# The completeness pass (budgets.completeness): rows LiteLLM writes late are booked all the same.
LEDGER_COMPLETENESS_INTERVAL_MINUTES = env_int("LEDGER_COMPLETENESS_INTERVAL_MINUTES", 15)
LEDGER_COMPLETENESS_TRAILING_HOURS = env_int("LEDGER_COMPLETENESS_TRAILING_HOURS", 3)
LEDGER_COMPLETENESS_DAY_DELAY_HOURS = env_int("LEDGER_COMPLETENESS_DAY_DELAY_HOURS", 25)
ALERT_DELIVERY_MAX_ATTEMPTS = env_int("ALERT_DELIVERY_MAX_ATTEMPTS", 10)
ANOMALY_MULTIPLIER = env("ANOMALY_MULTIPLIER", "5")
ANOMALY_MIN_SPEND = env("ANOMALY_MIN_SPEND", "5")
# The auditor workspace
LEDGER_RETENTION_MONTHS = env_int("LEDGER_RETENTION_MONTHS", 25)
# The ledger's monthly partitions (PostgreSQL) are made this many months ahead by a scheduled job.
LEDGER_PARTITIONS_AHEAD_MONTHS = env_int("LEDGER_PARTITIONS_AHEAD_MONTHS", 3)
LEAVER_REVOCATION_SLA_HOURS = env_int("LEAVER_REVOCATION_SLA_HOURS", 24)
EVIDENCE_EXPORT_DIR = Path(env("EVIDENCE_EXPORT_DIR") or VAR_DIR / "exports")
# FOCUS files of the ledger (budgets.finops): built here by the worker, served to finance from here.
FOCUS_EXPORT_DIR = Path(env("FOCUS_EXPORT_DIR") or VAR_DIR / "focus-exports")
FOCUS_EXPORT_MAX_ATTEMPTS = int(env("FOCUS_EXPORT_MAX_ATTEMPTS") or 6)
# Signed checkpoints of the audit chain (audit.checkpoints), outside the database: the files, and the Ed25519
# key that signs them (PEM or base64 in the environment, or a PEM file made on first use when absent).
AUDIT_CHECKPOINT_DIR = Path(env("AUDIT_CHECKPOINT_DIR") or VAR_DIR / "audit-checkpoints")
AUDIT_CHECKPOINT_KEY = env("AUDIT_CHECKPOINT_KEY")
AUDIT_CHECKPOINT_KEY_FILE = Path(env("AUDIT_CHECKPOINT_KEY_FILE") or VAR_DIR / "audit-key" / "checkpoint-ed25519.pem")
AUDIT_CHECKPOINT_INTERVAL_MINUTES = env_int("AUDIT_CHECKPOINT_INTERVAL_MINUTES", 60)

# --- i18n, static.
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT") or None  # collectstatic target; WhiteNoise also serves from the finders
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Security. With DEBUG off these are the production settings (`check --deploy` is clean).
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12)
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Content-Security-Policy (django-csp 4): every page, the API docs included. Scripts only from the site's own
# files (no inline script, no event-handler attribute, no eval); styles only from its stylesheets (plotly.js
# and Swagger UI style what they draw through the DOM, which style-src does not govern; plotly's own
# stylesheet is served by the site, adoption.charts). Nothing is loaded from, sent to or framed by another host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],  # blob: the chart toolbar's PNG export draws the chart from one
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    },
}

# Static files are served by the site itself (WhiteNoise), never from a CDN.
WHITENOISE_USE_FINDERS = True

# --- Logging: one JSON object per line, with request_id, user_id and job_id (govsite.logs), from the web, the RQ
# workers (RQ["WORKER_CLASS"]) and cron; secrets are masked before a line is written. LOG_FORMAT=text for a
# terminal.
LOG_FORMAT = env("LOG_FORMAT", "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "govsite.logs.json_formatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", **({"formatter": "json"} if LOG_FORMAT == "json" else {})}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        # RQ's loggers write through the root's JSON handler, not handlers of their own.
        "rq": {"handlers": [], "propagate": True},
        # The access line is govsite.request's (govsite.logs.LogContextMiddleware); Django's repeats 4xx/5xx.
        "django.server": {"level": "WARNING"},
    },
}
MIDDLEWARE.append("govsite.logs.LogContextMiddleware")  # last: after the user and the request id are set


# --- Metrics: /metrics in Prometheus' format (govsite.ops): django-prometheus' requests, database and cache
# families, and govsite's own, computed from the database at each scrape. Only a scraper bearing METRICS_TOKEN
# or coming from METRICS_ALLOWED_NETWORKS (its address as govsite.web.client_ip reads it) is answered.
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = []
for _network in env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128"):
    try:
        METRICS_ALLOWED_NETWORKS.append(ipaddress.ip_network(_network, strict=False))
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r} is not an address or a network") from _exc
# /readyz fails its pull check when the spend pull's watermark is further behind than this.
READYZ_MAX_PULL_LAG_SECONDS = env_int("READYZ_MAX_PULL_LAG_SECONDS", 15 * 60)
INSTALLED_APPS.append("django_prometheus")
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    *MIDDLEWARE,
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# Database metrics wrap each connection's engine (queries, errors, connections by alias), every alias alike.
METRICS_DATABASE = env_bool("METRICS_DATABASE", True)
_INSTRUMENTED_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
if METRICS_DATABASE:
    for _database in DATABASES.values():
        _database["ENGINE"] = _INSTRUMENTED_ENGINES.get(_database["ENGINE"], _database["ENGINE"])
_INSTRUMENTED_CACHES = {
    "django.core.cache.backends.redis.RedisCache": "govsite.cache_metrics.RedisCache",
    "django.core.cache.backends.db.DatabaseCache": "govsite.cache_metrics.DatabaseCache",
}
for _cache in CACHES.values():
    _cache["BACKEND"] = _INSTRUMENTED_CACHES.get(_cache["BACKEND"], _cache["BACKEND"])
# Machines probe over plain http inside the network, whatever SECURE_SSL_REDIRECT says for people.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
