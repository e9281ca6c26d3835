"""Where the tests' broker and store come from: env URLs, else Docker, else local servers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support import secantus_launcher


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} did not open within {timeout}s")


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def mongo_server() -> Iterator[str]:
    """A Mongo-protocol server URL for the test session."""
    url = os.environ.get("DESK_TEST_MONGO_URL")
    if url:
        yield url
        return
    if docker_available():
        from testcontainers.mongodb import MongoDbContainer

        # the same shorter transaction lifetime as the SecantusDB below (mongod: whole seconds)
        lifetime = max(1, round(secantus_launcher.configured_lifetime()))
        with MongoDbContainer("mongo:7", command="--replSet rs0 --bind_ip_all --setParameter "
                              f"transactionLifetimeLimitSeconds={lifetime}") as mongo:
            host, port = mongo.get_container_host_ip(), mongo.get_exposed_port(27017)
            mongo.exec(["mongosh", "--quiet", "--eval", "rs.initiate()"])
            yield f"mongodb://{host}:{port}/?directConnection=true"
        return
    # the store with a 10 s transaction lifetime instead of 60 s: a transaction a killed
    # service left open stops blocking its documents after 10 s (secantus_launcher.py)
    with local_store() as url:
        yield url


@contextmanager
def local_store(*launcher_args: str, prefix: str = "desk-test-mongo-") -> Iterator[str]:
    """A SecantusDB of the tests' own (through secantus_launcher, `launcher_args` first)
    on a free port and a temporary directory, removed afterwards."""
    port = free_port()
    storage = tempfile.mkdtemp(prefix=prefix)
    proc = subprocess.Popen(
        secantus_launcher.command(*launcher_args, "--host", "127.0.0.1", "--port", str(port),
                                  "--storage-path", storage, "--log-level", "WARNING"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port("127.0.0.1", port)
        # SecantusDB: retryable writes off (its registry of them slows every write)
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(storage, ignore_errors=True)


@contextmanager
def rabbitmq_server() -> Iterator[str]:
    url = os.environ.get("DESK_TEST_AMQP_URL")
    if url:
        yield url
        return
    with socket.socket() as s:
        s.settimeout(1)
        local = s.connect_ex(("127.0.0.1", 5672)) == 0
    if not local and shutil.which("rabbitmq-server"):
        subprocess.run(["rabbitmq-server", "-detached"], check=False)
        wait_port("127.0.0.1", 5672, timeout=60)
        local = True
    if local:
        yield "amqp://guest:guest@127.0.0.1:5672/"
        return
    if docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13") as rabbit:
            params = rabbit.get_connection_params()
            yield f"amqp://guest:guest@{params.host}:{params.port}/"
        return
    raise RuntimeError("no RabbitMQ: set DESK_TEST_AMQP_URL or run one on 127.0.0.1:5672")
