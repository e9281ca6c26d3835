"""SIGTERM stops a service within seconds even when its store and its broker are gone.

An orchestrator sends SIGTERM and, after its grace period, SIGKILL (Kubernetes: 30 s by
default); an operator's `systemctl stop` expects the process to go. A stop used to write its
farewells to the store one after another (each partition lease released, the member record
removed, the client's sessions ended), each waiting out the driver's 3 s server selection
with the store gone: 18.7 s per service, so orphaned services outlived a killed test stack.
The stop is now bounded (`ServiceRuntime.stop`); this test kills the store and the broker
under running services and times their exit after SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.support.private_rabbit import PrivateRabbit, private_rabbit  # noqa: F401 (fixture)
from tests.support.private_store import PrivateStore, private_store  # noqa: F401 (fixture)
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

# what the brief of a stop is: well under an orchestrator's grace period
EXIT_WITHIN = 10.0
# uvicorn ends a process it stopped on a signal by raising that signal again (-15 as
# Popen reports it); a clean return is fine as well
STOPPED = {0, -signal.SIGTERM}
SERVICES = ("sla", "portal")  # ready on their own (no other service needed)


def wait_exit(proc: subprocess.Popen, timeout: float) -> float | None:
    """Seconds until `proc` exited, or None if it is still running after `timeout`."""
    started = time.monotonic()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - started


def test_sigterm_stops_services_promptly_with_store_and_broker_gone(
        private_store: PrivateStore, private_rabbit: PrivateRabbit,  # noqa: F811
        tmp_path):
    stack = Stack(private_store.url, private_rabbit.url, tmp_path, lease_seconds=3.0)
    try:
        stack.start(SERVICES)
        private_store.kill()
        private_rabbit.kill()
        time.sleep(1.0)  # the services notice: their consumers and store calls fail
        for name in SERVICES:
            stack[name].proc.send_signal(signal.SIGTERM)
        took = {name: wait_exit(stack[name].proc, EXIT_WITHIN) for name in SERVICES}
        slow = {name: stack[name].log_path.read_text()[-2000:]
                for name, seconds in took.items() if seconds is None}
        assert not slow, f"still running {EXIT_WITHIN} s after SIGTERM: {slow}"
        codes = {name: stack[name].proc.returncode for name in SERVICES}
        assert set(codes.values()) <= STOPPED, codes
        for name in SERVICES:  # the stop said what it did, and that it saw no store
            assert '"service.stopped"' in stack[name].log_path.read_text(), name
    finally:
        for proc in stack.services.values():
            proc.kill()
