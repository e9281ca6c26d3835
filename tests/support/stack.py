"""Runs the services as real processes on the real broker and store, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import httpx
from desk_contracts.topology import Topology
from desk_runtime.bus import delete_topology
from pymongo import AsyncMongoClient, MongoClient

from tests.support.infra import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "boards", "sla", "notify", "portal")


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra_env: dict[str, str] | None = None, wait: bool = True) -> None:
        env = {**os.environ, **self.env, **(extra_env or {})}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", self.name], env=env, cwd=ROOT,
                                     stdout=log, stderr=log)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, like a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Stack:
    mongo_url: str
    amqp_url: str
    workdir: Path
    smtp_port: int = 0
    namespace: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    extra: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=lambda: {n: free_port() for n in SERVICES})
    # more replicas of a service beside `services[name]` (its first one), each on its own
    # ports; the services point at each other through the first replica's address
    replicas: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    # every service's LEASE_SECONDS (partition and singleton leases, replica membership)
    # and OUTBOX_COMMITTER_LEASE_SECONDS (events a dead committer left unpublished): a test
    # that kills processes sets them short, so a dead one's work is taken over in seconds
    # instead of the defaults' 10 (sla's leases: 15); None keeps each service's default
    lease_seconds: float | None = None

    ADMIN_TOKEN = "test-admin-token"
    SLA_READ_TOKEN = "test-sla-read-token"
    MTA_TOKEN = "test-mta-token"
    PORTAL_TOKEN = "test-portal-to-intake-token"
    REPLY_SECRET = "test-reply-secret"
    LINK_SECRET = "test-link-secret"
    KB_PORTAL_TOKEN = "test-portal-to-boards-token"

    def url(self, name: str) -> str:
        """Where a service listens (known before it starts, so services can point at each other)."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def env_for(self, name: str) -> dict[str, str]:
        p = name.upper() + "_"
        env = {
            p + "AMQP_URL": self.amqp_url,
            p + "MONGO_URL": self.mongo_url,
            p + "MONGO_DB": f"{self.namespace}_{name}",
            p + "BUS_NAMESPACE": self.namespace,
            p + "HTTP_PORT": str(self.ports.get(name) or free_port()),
            p + "LOG_LEVEL": "INFO",
            p + "OUTBOX_POLL_SECONDS": "0.2",
        }
        if self.lease_seconds is not None:
            env[p + "LEASE_SECONDS"] = str(self.lease_seconds)
            env[p + "OUTBOX_COMMITTER_LEASE_SECONDS"] = str(self.lease_seconds)
        if name == "boards":
            env |= {"BOARDS_DEMO_CATALOG": "true",
                    "BOARDS_BOOTSTRAP_ADMIN_TOKEN": self.ADMIN_TOKEN,
                    "BOARDS_SLA_URL": self.url("sla"),
                    "BOARDS_SLA_TOKEN": self.SLA_READ_TOKEN,
                    "BOARDS_INTAKE_URL": self.url("intake"),
                    "BOARDS_LINK_SECRET": self.LINK_SECRET,
                    "BOARDS_PORTAL_TOKEN": self.KB_PORTAL_TOKEN,
                    "BOARDS_PORTAL_URL": self.url("portal"),
                    "BOARDS_COOKIE_SECURE": "false"}  # plain http://127.0.0.1 in tests
        if name == "notify":
            env |= {"NOTIFY_SMTP__PORT": str(self.smtp_port),
                    "NOTIFY_REPLY_TOKEN_SECRET": self.REPLY_SECRET,
                    "NOTIFY_RETRY_BASE_SECONDS": "0.2",
                    "NOTIFY_DISPATCH_POLL_SECONDS": "0.1",
                    "NOTIFY_LINK_SECRET": self.LINK_SECRET,
                    "NOTIFY_ADMIN_TOKEN": self.ADMIN_TOKEN,
                    "NOTIFY_BOARDS_URL": self.url("boards"),
                    "NOTIFY_PORTAL_URL": self.url("portal")}
        if name == "portal":
            env |= {"PORTAL_LINK_SECRET": self.LINK_SECRET,
                    "PORTAL_PUBLIC_URL": self.url("portal"),
                    "PORTAL_ADMIN_TOKEN": self.ADMIN_TOKEN,
                    "PORTAL_INTAKE_TOKEN": self.PORTAL_TOKEN,
                    "PORTAL_SMTP__PORT": str(self.smtp_port),
                    "PORTAL_INTAKE_URL": self.url("intake"),
                    "PORTAL_BOARDS_URL": self.url("boards"),
                    "PORTAL_BOARDS_TOKEN": self.KB_PORTAL_TOKEN}
        if name == "sla":
            env |= {"SLA_READ_TOKEN": self.SLA_READ_TOKEN}
        if name == "intake":
            env |= {"INTAKE_REPLY_TOKEN_SECRET": self.REPLY_SECRET,
                    "INTAKE_LINK_SECRET": self.LINK_SECRET,
                    "INTAKE_ADMIN_TOKEN": self.ADMIN_TOKEN,
                    "INTAKE_MTA_TOKEN": self.MTA_TOKEN,
                    "INTAKE_PORTAL_TOKEN": self.PORTAL_TOKEN,
                    "INTAKE_MAIL_RETRY_SECONDS": "1",
                    # the SMTP listener's port: stack.ports["intake_smtp"]
                    "INTAKE_SMTP_PORT": str(self.ports.setdefault("intake_smtp", free_port()))}
        env |= self.extra.get(name, {})
        return env

    def start(self, names: tuple[str, ...] = SERVICES) -> None:
        for name in names:
            env = self.env_for(name)
            proc = ServiceProcess(name, env, int(env[name.upper() + "_HTTP_PORT"]),
                                  self.workdir / f"{name}.log")
            self.services[name] = proc
            proc.start(wait=False)
        for name in names:
            self.services[name].wait_ready()

    def start_replicas(self, name: str, count: int, wait: bool = True) -> list[ServiceProcess]:
        """`count` more processes of `name` on the same store and queues (own HTTP and,
        for intake, SMTP ports; own log file)."""
        started = []
        for _ in range(count):
            index = len(self.replicas.setdefault(name, [])) + 1
            env = self.env_for(name) | {name.upper() + "_HTTP_PORT": str(free_port())}
            if name == "intake":
                env["INTAKE_SMTP_PORT"] = str(free_port())
            proc = ServiceProcess(name, env, int(env[name.upper() + "_HTTP_PORT"]),
                                  self.workdir / f"{name}.{index}.log")
            self.replicas[name].append(proc)
            proc.start(wait=False)
            started.append(proc)
        if wait:
            for proc in started:
                proc.wait_ready()
        return started

    def all_of(self, name: str) -> list[ServiceProcess]:
        """Every process of a service: its first replica, then the others."""
        first = [self.services[name]] if name in self.services else []
        return first + self.replicas.get(name, [])

    def stop(self) -> None:
        for procs in self.replicas.values():
            for proc in procs:
                proc.stop()
        for proc in self.services.values():
            proc.stop()

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]


def auth(stack: Stack) -> dict:
    return {"Authorization": f"Bearer {stack.ADMIN_TOKEN}"}


def sla_auth(stack: Stack) -> dict:
    """What boards' workspace presents to sla's read endpoints."""
    return {"Authorization": f"Bearer {stack.SLA_READ_TOKEN}"}


def mta_auth(stack: Stack) -> dict:
    """What the MTA presents to intake's `POST /v1/inbound/email` pipe."""
    return {"Authorization": f"Bearer {stack.MTA_TOKEN}"}


def wait_until(fn, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s (last: {last!r})")


def cards_for_request(stack: Stack, request_id: str) -> list[dict]:
    r = httpx.get(f"{stack['boards'].url}/v1/cards", params={"request_id": request_id},
                  headers=auth(stack), timeout=10)
    r.raise_for_status()
    return r.json()["items"]


def card_for(stack: Stack, request_id: str) -> dict:
    return wait_until(lambda: cards_for_request(stack, request_id))[0]


def cleanup(mongo_url: str, amqp_url: str, namespace: str) -> None:
    async def clean() -> None:
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            await delete_topology(await conn.channel(), Topology(namespace))
        client = AsyncMongoClient(mongo_url)
        for name in await client.list_database_names():
            if name.startswith(namespace):
                await client.drop_database(name)
        await client.close()

    asyncio.run(clean())


def mongo_find(url: str, db: str, coll: str, query: dict) -> list[dict]:
    """Documents of one of a service's collections, read as an operator would.

    The synchronous client, so it also works inside Playwright's sync API, which already
    runs an event loop in the test's thread.
    """
    with MongoClient(url, tz_aware=True) as client:
        return list(client[db][coll].find(query))
