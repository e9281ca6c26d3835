"""The store the tests start (tests/support/secantus_launcher.py) reaps only idle transactions.

The tests run SecantusDB with a transaction lifetime of 10 s instead of 60 s, so a
transaction a killed service left open stops blocking its documents sooner. This checks
the launcher really sets it (an abandoned transaction's documents are writable again
after the lifetime, and not at once) and that the lifetime counts from a transaction's
last statement, not its start: one that keeps issuing statements outlives it and commits.
Each store here gets a 2 s lifetime so the checks take seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from tests.support import secantus_launcher
from tests.support.infra import local_store

pytestmark = pytest.mark.slow

LIFETIME = 2.0


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    with local_store("--transaction-lifetime-seconds", str(LIFETIME),
                     prefix="desk-test-launcher-") as url:
        yield url


def conflicting_write(client: MongoClient, doc_id: str) -> bool:
    """One transaction (no driver retries) writing the document; False on a write conflict."""
    with client.start_session() as session:
        session.start_transaction()
        try:
            client.t.docs.update_one({"_id": doc_id}, {"$set": {"by": "other"}},
                                     session=session)
            session.commit_transaction()
            return True
        except OperationFailure as exc:
            if session.in_transaction:
                session.abort_transaction()
            assert exc.has_error_label("TransientTransactionError"), exc
            return False


def test_an_abandoned_transaction_is_reaped_after_the_lifetime(store_url):
    with MongoClient(store_url) as owner, MongoClient(store_url) as other:
        owner.t.docs.insert_one({"_id": "abandoned"})
        session = owner.start_session()
        session.start_transaction()
        owner.t.docs.update_one({"_id": "abandoned"}, {"$set": {"by": "owner"}},
                                session=session)
        started = time.monotonic()
        # never committed nor aborted: as if its client had been killed
        assert not conflicting_write(other, "abandoned")
        while not conflicting_write(other, "abandoned"):
            assert time.monotonic() - started < LIFETIME + 10, "never reaped"
            time.sleep(0.1)
        waited = time.monotonic() - started
        assert waited >= LIFETIME - 0.5, f"reaped after {waited:.1f}s, before the lifetime"
        assert other.t.docs.find_one({"_id": "abandoned"})["by"] == "other"


def test_a_transaction_busy_for_longer_than_the_lifetime_commits(store_url):
    with MongoClient(store_url) as client:
        client.t.docs.insert_one({"_id": "busy", "n": 0})
        statements = 0
        with client.start_session() as session:
            session.start_transaction()
            started = time.monotonic()
            # open for 1.75 lifetimes, a statement every quarter of one
            while time.monotonic() - started < LIFETIME * 1.75:
                client.t.docs.update_one({"_id": "busy"}, {"$inc": {"n": 1}}, session=session)
                statements += 1
                time.sleep(LIFETIME / 4)
            session.commit_transaction()
        assert time.monotonic() - started > LIFETIME
        assert client.t.docs.find_one({"_id": "busy"})["n"] == statements


def test_the_lifetime_comes_from_the_flag_else_the_env_var_else_ten_seconds(monkeypatch):
    monkeypatch.delenv(secantus_launcher.ENV_VAR, raising=False)
    assert secantus_launcher.split_args(["--port", "1"]) == (10.0, ["--port", "1"])
    monkeypatch.setenv(secantus_launcher.ENV_VAR, "15")
    assert secantus_launcher.split_args(["--port", "1"]) == (15.0, ["--port", "1"])
    assert secantus_launcher.split_args(
        ["--transaction-lifetime-seconds", "3", "--port", "1"]) == (3.0, ["--port", "1"])
    assert secantus_launcher.split_args(
        ["--port", "1", "--transaction-lifetime-seconds=4"]) == (4.0, ["--port", "1"])
