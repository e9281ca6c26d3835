"""Fixtures for the agent workspace's tests: the real services as processes, a real browser."""

from __future__ import annotations

import pytest

from tests.support.browser import chromium
from tests.support.mail import MailSink
from tests.support.stack import Stack, cleanup


@pytest.fixture(scope="module")
def mail():
    with MailSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def stack(mongo_url, amqp_url, mail, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("web"), smtp_port=mail.port)
    s.start(("boards", "sla", "portal", "intake"))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)


@pytest.fixture(scope="module")
def browser(stack):
    # depends on the stack so it closes first (Playwright's loop must be gone before the
    # stack's clean-up runs its own)
    with chromium() as b:
        yield b
