"""A SecantusDB (the store) of the test's own, on a free port, that a fault test may kill -9.

`start()` after `kill()` reuses the port and the storage directory, so the data a
service committed is there again, as after a crash in production.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import secantus_launcher
from tests.support.infra import free_port
from tests.support.private_rabbit import keep_private_dirs, port_open, descendants


class PrivateStore:
    """A SecantusDB process of the test's own; kill -9 and restart keep port and storage."""

    def __init__(self, base: Path, *, sync_on_commit: bool = True):
        self.base = base
        self.port = free_port()
        self.storage = base / "data"
        self.log_path = base / "secantus.log"
        # a commit the store acknowledged survives its kill -9: what is tested is the
        # desk's recovery, not the store's (configurable) durability window
        self.sync_on_commit = sync_on_commit
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true&retryWrites=false"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        if self.alive:
            return
        self.base.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        # the tests' transaction lifetime (10 s, not 60 s): see secantus_launcher.py
        cmd = secantus_launcher.command("--host", "127.0.0.1", "--port", str(self.port),
                                        "--storage-path", str(self.storage),
                                        "--log-level", "WARNING")
        if self.sync_on_commit:
            cmd.append("--sync-on-commit")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        from pymongo import MongoClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"store exited: {self.log_tail()}")
            try:
                with MongoClient(self.url, serverSelectionTimeoutMS=1000) as client:
                    client.admin.command("ping")
                return
            except Exception:  # noqa: BLE001 (not up yet)
                time.sleep(0.2)
        raise TimeoutError(f"store not ready in {timeout}s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: the store vanishes mid-transaction, storage kept."""
        if self.proc is None:
            return
        for pid in descendants(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and port_open(self.port):
            time.sleep(0.05)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@pytest.fixture(scope="module")
def private_store() -> Iterator[PrivateStore]:
    """A SecantusDB this module's tests may kill; stopped (and deleted) at the end."""
    base = Path(tempfile.mkdtemp(prefix="desk-test-store-"))
    store = PrivateStore(base)
    try:
        store.start()
        yield store
    finally:
        store.stop()
        if not keep_private_dirs():
            shutil.rmtree(base, ignore_errors=True)
