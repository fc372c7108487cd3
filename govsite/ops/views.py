"""`/readyz` and `/metrics`: for machines (an orchestrator, Prometheus), not people."""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from govsite.ops.health import readiness
from govsite.ops.metrics import GovsiteCollector
from govsite.web import client_ip

# govsite's own families, in a registry of their own: computed from the database on each scrape.
GOVSITE_REGISTRY = CollectorRegistry(auto_describe=False)
GOVSITE_REGISTRY.register(GovsiteCollector())


@never_cache
@require_GET
def readyz(request):
    ready, body = readiness()
    return JsonResponse(body, status=200 if ready else 503)


def metrics_allowed(request) -> bool:
    """A scraper bearing METRICS_TOKEN, or one whose address is in METRICS_ALLOWED_NETWORKS."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
            return True
    address = client_ip(request)
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.METRICS_ALLOWED_NETWORKS)


def _process_metrics() -> bytes:
    # gunicorn's workers each count their own requests: with PROMETHEUS_MULTIPROC_DIR they are added up.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@never_cache
@require_GET
def metrics(request):
    if not metrics_allowed(request):
        return JsonResponse(
            {"error": {"code": "forbidden", "message": "Metrics need METRICS_TOKEN or an allowed network."}},
            status=403,
        )
    return HttpResponse(_process_metrics() + generate_latest(GOVSITE_REGISTRY), content_type=CONTENT_TYPE_LATEST)
