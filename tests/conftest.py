"""Session-wide real infrastructure: a RabbitMQ broker and a Mongo-protocol server."""

from __future__ import annotations

import pytest

from tests.support.infra import mongo_server, rabbitmq_server


@pytest.fixture(scope="session")
def mongo_url():
    with mongo_server() as url:
        yield url


@pytest.fixture(scope="session")
def amqp_url():
    with rabbitmq_server() as url:
        yield url
