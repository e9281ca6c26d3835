"""Credentials a service must keep (e.g. IMAP passwords), encrypted at rest.

AES-256-GCM with a key derived (HKDF-SHA256) from the service's configured secret,
so a copy of the database alone does not reveal them. The stored form is
`v1:<base64 nonce + ciphertext>`; anything else is refused rather than guessed.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v1:"


class SecretBoxError(ValueError):
    pass


class SecretBox:
    def __init__(self, secret: str, purpose: str):
        if not secret:
            raise SecretBoxError("no secret configured to encrypt credentials with")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=f"desk-secretbox:{purpose}".encode()).derive(secret.encode())
        self._aead = AESGCM(key)
        self._purpose = purpose.encode()

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), self._purpose)
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            raise SecretBoxError("not a sealed credential")
        raw = base64.b64decode(stored[len(PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], self._purpose).decode()
        except InvalidTag:
            raise SecretBoxError("the credential cannot be opened with this secret") from None
