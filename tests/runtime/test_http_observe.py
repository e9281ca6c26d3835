"""Every HTTP request of a service: its correlation id echoed (the caller's, or a new one,
also in the handler's log context) and counted by route and status — an error too."""

from __future__ import annotations

import uuid

import pytest
import structlog
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from desk_runtime.http import _Observe
from desk_runtime.metrics import HTTP_REQUESTS


def served(service: str, route: str, status: str) -> float:
    return HTTP_REQUESTS.labels(service, "GET", route, status)._value.get()


@pytest.fixture
def client():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    app = FastAPI()
    app.add_middleware(_Observe, service=service)

    @app.get("/things/{thing}")
    async def thing(thing: str, request: Request) -> dict:
        return {"state": request.state.correlation_id,
                "logged": structlog.contextvars.get_contextvars().get("correlation_id")}

    @app.get("/broken")
    async def broken() -> dict:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as c:
        yield service, c


def test_the_callers_correlation_id_is_used_echoed_and_in_the_log_context(client):
    service, c = client
    r = c.get("/things/7", headers={"X-Correlation-Id": "c-42"})
    assert r.status_code == 200 and r.headers["x-correlation-id"] == "c-42"
    assert r.json() == {"state": "c-42", "logged": "c-42"}
    assert served(service, "/things/{thing}", "200") == 1


def test_a_request_without_one_gets_a_new_one_and_an_error_is_counted(client):
    service, c = client
    first, second = c.get("/things/1"), c.get("/things/2")
    assert str(uuid.UUID(first.headers["x-correlation-id"]))
    assert first.headers["x-correlation-id"] != second.headers["x-correlation-id"]
    assert first.json()["state"] == first.headers["x-correlation-id"]
    assert c.get("/broken").status_code == 500
    assert served(service, "/broken", "500") == 1
    assert c.get("/nowhere").status_code == 404
    assert served(service, "unmatched", "404") == 1
