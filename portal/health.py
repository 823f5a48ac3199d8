"""The health check answered before anything else in the middleware, for docker-compose and load balancers.

Their probe comes from inside the container or the load balancer, by address (http://127.0.0.1:8000/healthz): its
Host is no name in ALLOWED_HOSTS, so Django answers 400 (DisallowedHost), and it is plain HTTP, so with
SECURE_SSL_REDIRECT on it would be sent to https. Either way a healthy production web process was reported
unhealthy. The probe is answered here, first: it reads no host, sets no cookie, needs no session (nor Redis) and
says nothing but "ok" or that the database cannot be reached, so serving it to any Host is safe."""

from __future__ import annotations

from collections.abc import Callable

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse

HEALTH_PATH = "/healthz"


def health_response() -> HttpResponse:
    """200 "ok" when the process is up and can reach its database, else 503."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return HttpResponse("database unreachable", content_type="text/plain", status=503)
    return HttpResponse("ok", content_type="text/plain")


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return health_response()
        return self.get_response(request)
