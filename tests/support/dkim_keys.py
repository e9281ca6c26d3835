"""A mail domain with its own DKIM key for tests: signs real mail, publishes the TXT record."""

from __future__ import annotations

import base64

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class SigningDomain:
    def __init__(self, domain: str, selector: str = "s1"):
        self.domain, self.selector = domain, selector
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private = key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.txt = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
        self.dns_name = f"{selector}._domainkey.{domain}"

    def sign(self, raw: bytes) -> bytes:
        """The message with a DKIM-Signature header prepended, as the domain's MTA does."""
        signature = dkim.sign(raw, self.selector.encode(), self.domain.encode(), self.private,
                              include_headers=[b"from", b"to", b"subject", b"message-id",
                                               b"in-reply-to"])
        return signature + raw
