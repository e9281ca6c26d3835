"""A RabbitMQ node of the test's own, on free ports, that a fault test may kill -9 and restart.

The machine's shared broker (5672) is never touched: this node has its own node name,
AMQP and distribution ports, config file, data and log directories and Erlang cookie.
It runs in the foreground under Popen in a session of its own, so `kill()` can SIGKILL
exactly its processes (the launcher script, beam.smp and beam's port programs
erl_child_setup / inet_gethost) and never the shared epmd, which the node only registers
with. `start()` after `kill()` reuses the same ports and data directory, so durable
quorum queues and their messages survive, as after a crash in production.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from tests.support.infra import free_port

# Debian's /usr/sbin/rabbitmq-server wrapper re-runs itself as the rabbitmq user in
# /var/lib/rabbitmq and writes its output to /var/log/rabbitmq; the script it wraps
# takes all its settings from the environment, which is what a private node needs.
_SERVER_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)
_CTL_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmqctl",)


def _first_existing(candidates: tuple[str, ...], name: str) -> str | None:
    for path in candidates:
        if os.path.exists(path):
            return path
    return shutil.which(name)


def rabbitmq_available() -> bool:
    return _first_existing(_SERVER_CANDIDATES, "rabbitmq-server") is not None


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (beam's port programs sit in their own groups)."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().decode(errors="replace")
    except OSError:
        return False
    return state[state.rfind(")") + 2:].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class PrivateRabbit:
    """One RabbitMQ node under the test's control; `url` stays the same across restarts."""

    def __init__(self, base: Path):
        server = _first_existing(_SERVER_CANDIDATES, "rabbitmq-server")
        if server is None:
            raise RuntimeError("rabbitmq-server is not installed")
        self.server = server
        self.base = base
        self.node = f"desk-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        self.home = base / "home"
        self.log_path = base / "console.log"
        self.proc: subprocess.Popen | None = None
        self._pids: set[int] = set()
        self._prepare()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        # the bus's consistent-hash exchanges (desk_contracts.topology) need this plugin
        (self.base / "enabled_plugins").write_text("[rabbitmq_consistent_hash_exchange].\n")
        # an empty env file: /etc/rabbitmq/rabbitmq-env.conf names the shared node
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            "log.console = true\n"
            "log.console.level = info\n"
            "log.file.level = info\n"
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_"))}
        env |= {
            "HOME": str(self.home),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq"),  # .conf is appended
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        return env

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 120.0) -> None:
        if self.alive:
            return
        log = open(self.log_path, "ab")
        log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen([self.server], env=self.env(), cwd=self.base,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        self.wait_ready(timeout)
        self._pids = set(descendants(self.proc.pid))

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq node {self.node} exited: {self.log_tail()}")
            if port_open(self.port) and self.connects():
                return
            time.sleep(0.3)
        raise TimeoutError(f"rabbitmq node {self.node} not ready in {timeout}s: "
                           f"{self.log_tail()}")

    def connects(self) -> bool:
        async def probe() -> None:
            conn = await aio_pika.connect(self.url, timeout=5)
            async with conn:
                await conn.channel()

        try:
            asyncio.run(probe())
            return True
        except Exception:  # noqa: BLE001 (not up yet)
            return False

    def _own_pids(self) -> set[int]:
        pids = set(self._pids)
        if self.proc is not None:
            pids |= set(descendants(self.proc.pid))
            # anything left of this node, found by its unique name (a port program
            # reparented to init after beam died)
        for entry in os.listdir("/proc"):
            if entry.isdigit() and self.node in _cmdline(int(entry)):
                pids.add(int(entry))
        return {p for p in pids if _alive(p)}

    def kill(self) -> None:
        """SIGKILL the node's own processes: a crash, no clean shutdown, data dir kept."""
        for _ in range(3):
            pids = self._own_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self.proc is not None:
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(_alive(p) for p in pids):
                time.sleep(0.05)
        self._wait_released()

    def _wait_released(self, timeout: float = 15.0) -> None:
        """Until the AMQP port is closed and epmd has forgotten the name (restart needs both)."""
        short = self.node.split("@")[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            registered = False
            if shutil.which("epmd"):
                names = subprocess.run(["epmd", "-names"], capture_output=True, text=True,
                                       env={**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1"})
                registered = f"name {short} at" in names.stdout
            if not registered and not port_open(self.port):
                return
            time.sleep(0.1)

    def restart(self) -> None:
        """kill -9, then start again on the same ports and data directory."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """A clean stop (SIGTERM: beam runs init:stop), then SIGKILL whatever is left."""
        if self.alive:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                for pid in descendants(self.proc.pid):
                    if "beam" in _cmdline(pid):
                        os.kill(pid, signal.SIGTERM)
                self.proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        """rabbitmqctl against this node only (`-n`), with its cookie."""
        ctl = _first_existing(_CTL_CANDIDATES, "rabbitmqctl")
        return subprocess.run([ctl, "-n", self.node, *args], env=self.env(),
                              capture_output=True, text=True, timeout=60)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def keep_private_dirs() -> bool:
    return bool(os.environ.get("DESK_TEST_KEEP_PRIVATE"))


@pytest.fixture(scope="module")
def private_rabbit() -> Iterator[PrivateRabbit]:
    """A RabbitMQ node this module's tests may kill; stopped (and deleted) at the end."""
    if not rabbitmq_available():
        pytest.skip("rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)")
    base = Path(tempfile.mkdtemp(prefix="desk-test-rabbit-"))
    node = PrivateRabbit(base)
    try:
        node.start()
        yield node
    finally:
        node.stop()
        if not keep_private_dirs():
            shutil.rmtree(base, ignore_errors=True)
