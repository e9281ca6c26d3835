"""The FastAPI app every service serves: health, readiness, metrics, request logging."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import Match

from pymongo.errors import ConnectionFailure, PyMongoError

from desk_runtime.logging import bound_contextvars, get_logger
from desk_runtime.mongo import StoreUnavailable
from desk_runtime.metrics import HTTP_REQUESTS, HTTP_SECONDS
from desk_runtime.service import ServiceRuntime
from desk_runtime.tracing import tag_correlation

log = get_logger(__name__)
RETRY_AFTER_SECONDS = 5
# a stop: open HTTP requests get this long; a service's own stop hook (e.g. notify's
# sends in flight, NOTIFY_STOP_GRACE_SECONDS) at most ON_STOP_TIMEOUT
GRACEFUL_HTTP_SECONDS = 5.0
ON_STOP_TIMEOUT = 25.0


class DomainError(Exception):
    """A refusal the caller can act on; carries its HTTP status."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Invalid(DomainError):
    status_code = 422
    code = "invalid"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"


def require_admin(request: Request) -> None:
    """FastAPI dependency: the caller presents the service's `admin_token` as a Bearer token.

    Compared in constant time; an unset token disables the admin endpoints entirely.
    """
    import hmac

    expected = request.app.state.runtime.settings.admin_token
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if not expected:
        raise Forbidden("admin endpoints are disabled (no admin token configured)")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(),
                                                             expected.encode()):
        raise Unauthorized("a valid admin Bearer token is required")


def _route_of(request: Request) -> str:
    # FastAPI records the matched route in the scope; routes of an included router are
    # only found there (the app's own route list holds the router, which has no path)
    matched = getattr(request.scope.get("route"), "path", None)
    if isinstance(matched, str):
        return matched
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return getattr(route, "path", "other")
    return "unmatched"


class _Observe:
    """Every HTTP request: its correlation id (the caller's `X-Correlation-Id` or a new
    one, in the logs, on the trace and echoed in the answer) and its count and duration.

    A plain ASGI middleware: Starlette's `@app.middleware("http")` runs each request's
    app in a task of its own behind a memory stream (a tenth of intake's time per POST
    in a burst, by a profile)."""

    def __init__(self, app, service: str):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = next((value.decode("latin-1") for name, value in scope["headers"]
                               if name == b"x-correlation-id"), "") or str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        tag_correlation(correlation_id)  # on the HTTP server span, when tracing is on
        echo = (b"x-correlation-id", correlation_id.encode("latin-1"))
        status = 500  # what an exception that escapes the app becomes

        async def answer(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echo]}
            await send(message)

        started = time.perf_counter()
        try:
            with bound_contextvars(correlation_id=correlation_id):
                await self.app(scope, receive, answer)
        finally:
            route = _route_of(Request(scope))
            HTTP_REQUESTS.labels(self.service, scope["method"], route, status).inc()
            HTTP_SECONDS.labels(self.service, scope["method"], route).observe(
                time.perf_counter() - started)


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if on_start is not None:
            await on_start()
        try:
            yield
        finally:
            # the service's own stop (bounded: a hook that hangs must not keep the process
            # alive past an orchestrator's grace period), then the runtime's, whatever
            # became of the hook
            try:
                if on_stop is not None:
                    await asyncio.wait_for(on_stop(), ON_STOP_TIMEOUT)
            except TimeoutError:
                log.error("service.on_stop_timed_out", after=ON_STOP_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 (stopping: report, then stop the runtime)
                log.error("service.on_stop_failed", error=repr(exc)[:300])
            finally:
                await runtime.stop()

    app = FastAPI(title=title, lifespan=lifespan, version="1.0.0")
    app.state.runtime = runtime
    runtime.tracing.instrument(app)  # HTTP server spans, when tracing is on

    app.add_middleware(_Observe, service=runtime.name)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        body = {"error": exc.code, "message": exc.message}
        if exc.details:
            body["details"] = exc.details
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(PyMongoError)
    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        """The store is away (or too slow to answer in time): tell the caller to come
        back; nothing was accepted. Any other store error is a bug: a 500."""
        if not (isinstance(exc, ConnectionFailure | StoreUnavailable)
                or getattr(exc, "timeout", False)):
            raise exc
        log.warning("http.store_unavailable", path=request.url.path, error=repr(exc)[:200])
        return JSONResponse({"error": "unavailable",
                             "message": "the service's store is unavailable; retry shortly"},
                            status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "alive", "service": runtime.name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await runtime.ready()
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503,
                            headers={} if ok else {"Retry-After": "1"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(app: FastAPI, host: str, port: int) -> None:
    import uvicorn

    # SIGTERM: requests in flight get GRACEFUL_HTTP_SECONDS to finish (each is bounded by
    # its store timeouts anyway), then the lifespan stops the service (bounded, see
    # ServiceRuntime.stop)
    # loop "auto": uvloop (a dependency of desk-runtime) where it is installed — on a burst
    # it cut the services' CPU per request by ~15 % (bench/pipeline.py) — else asyncio's
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                loop="auto", timeout_graceful_shutdown=GRACEFUL_HTTP_SECONDS)
