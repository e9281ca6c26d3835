"""The portal's tests run against real processes: boards, intake and portal on the real bus."""

from __future__ import annotations

import pytest

from tests.portal.helpers import PORTAL_ENV
from tests.support.mail import MailSink
from tests.support.stack import Stack, cleanup


@pytest.fixture(scope="module")
def mail():
    with MailSink() as sink:
        yield sink


def start_stack(mongo_url, amqp_url, mail, tmp_path_factory, names, extra=None):
    env = {"portal": dict(PORTAL_ENV)}
    for name, values in (extra or {}).items():
        env[name] = env.get(name, {}) | values
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("portal"), smtp_port=mail.port,
              extra=env)
    s.start(names)
    return s


@pytest.fixture(scope="module")
def stack(request, mongo_url, amqp_url, mail, tmp_path_factory):
    # a test module names the services it needs in STACK (intake only where files are uploaded)
    names = getattr(request.module, "STACK", ("boards", "portal"))
    s = start_stack(mongo_url, amqp_url, mail, tmp_path_factory, names,
                    getattr(request.module, "STACK_ENV", None))
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)
