"""Fixtures of the runtime tests."""

from __future__ import annotations

import uuid

import pytest
from pymongo import AsyncMongoClient


@pytest.fixture
async def db(mongo_url):
    """A database of its own on the tests' store, dropped afterwards."""
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"t{uuid.uuid4().hex[:10]}_runtime"
    yield client[name]
    await client.drop_database(name)
    await client.close()
