"""Intake's process-level fixtures: boards + intake + notify on the real broker and store."""

from __future__ import annotations

import json

import pytest

from tests.intake.helpers import wait_for_catalog
from tests.support.dkim_keys import SigningDomain
from tests.support.mail import MailSink
from tests.support.stack import Stack, cleanup

MAX_MESSAGE_BYTES = 2 * 1024 * 1024
MAX_ATTACHMENT_BYTES = 1024 * 1024
# a customer domain that DKIM-signs its mail (its key pinned in intake: no DNS here), the
# authserv-id of "our MX" whose Authentication-Results intake trusts, an organisation
SIGNED = SigningDomain("signed.example")
TRUSTED_MX = "mx.desk-test.example"
ORGANISATIONS = {"org": {"domains": ["org.example"]}}


@pytest.fixture(scope="package")
def sink():
    with MailSink() as s:
        yield s


@pytest.fixture(scope="package")
def desk(mongo_url, amqp_url, sink, tmp_path_factory):
    """One stack for the e-mail tests (SMTP, IMAP, HTTP) and the attachments API."""
    s = Stack(mongo_url, amqp_url, tmp_path_factory.mktemp("intake-stack"), smtp_port=sink.port,
              extra={"intake": {"INTAKE_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
                                "INTAKE_MAX_ATTACHMENT_BYTES": str(MAX_ATTACHMENT_BYTES),
                                "INTAKE_IMAP_POLL_SECONDS": "3600",
                                "INTAKE_BOUNCE_WAIT_SECONDS": "3",
                                "INTAKE_REPLY_WAIT_SECONDS": "15",
                                "INTAKE_DKIM_KEYS": json.dumps({SIGNED.dns_name: SIGNED.txt}),
                                "INTAKE_DKIM_DNS": "false",
                                "INTAKE_TRUSTED_AUTHSERV_IDS": json.dumps([TRUSTED_MX]),
                                "INTAKE_ORGANISATIONS": json.dumps(ORGANISATIONS)}})
    s.start(("boards", "intake", "notify"))
    wait_for_catalog(s)
    yield s
    s.stop()
    cleanup(mongo_url, amqp_url, s.namespace)
