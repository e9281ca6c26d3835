"""Fixtures for process-level tests: the five services on the real broker and store."""

from __future__ import annotations

import pytest

from tests.support.mail import MailSink
from tests.support.stack import Stack, cleanup


@pytest.fixture(scope="module")
def mail():
    with MailSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def stack(mongo_url, amqp_url, mail, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("stack"), smtp_port=mail.port)
    s.start()
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)
