"""The knowledge base's process-level tests share one stack: boards and the portal on the
real bus and store (the portal reads articles through boards' API, as in production)."""

from __future__ import annotations

import pytest

from tests.portal.helpers import PORTAL_ENV
from tests.support.mail import MailSink
from tests.support.stack import Stack, cleanup


@pytest.fixture(scope="package")
def mail():
    with MailSink() as sink:
        yield sink


@pytest.fixture(scope="package")
def stack(mongo_url, amqp_url, mail, tmp_path_factory):
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("kb"), smtp_port=mail.port,
              extra={"portal": dict(PORTAL_ENV)})
    s.start(("boards", "portal"))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)
