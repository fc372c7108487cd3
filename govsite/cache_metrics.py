"""The cache backends of settings.CACHES, counting gets, hits and misses in django-prometheus' families
(`django_cache_get_total`, `..._hits_total`, `..._misses_total`, `..._get_fail_total`), for Django's own
Redis cache and its database cache (django-prometheus' own Redis wrapper needs django-redis, which govsite
does not use). A foundation module: it imports no app.
"""

from __future__ import annotations

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django_prometheus.cache.metrics import (
    django_cache_get_fail_total,
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)

_MISSING = object()


def _counted_get(backend: str, get, key, default, version):
    django_cache_get_total.labels(backend=backend).inc()
    try:
        value = get(key, _MISSING, version=version)
    except Exception:
        django_cache_get_fail_total.labels(backend=backend).inc()
        raise
    if value is _MISSING:
        django_cache_misses_total.labels(backend=backend).inc()
        return default
    django_cache_hits_total.labels(backend=backend).inc()
    return value


class RedisCache(DjangoRedisCache):
    def get(self, key, default=None, version=None):
        return _counted_get("redis", super().get, key, default, version)


class DatabaseCache(DjangoDatabaseCache):
    def get(self, key, default=None, version=None):
        return _counted_get("database", super().get, key, default, version)
