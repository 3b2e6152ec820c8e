"""Encrypting connector tokens at rest (Fernet, key derived from settings)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from core.errors import ServiceUnavailable


class SecretBox:
    """Encrypts and decrypts short secrets with a key derived from ``secret_key``.

    Args:
        secret_key: ``TONEHUB_SECRET_KEY``; empty means no box (refuse).
    """

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            self._fernet: Fernet | None = None
            return
        digest = hashlib.sha256(b"tonehub-tokens\\0" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def _box(self) -> Fernet:
        if self._fernet is None:
            raise ServiceUnavailable(
                "TONEHUB_SECRET_KEY is not set: connector tokens cannot be stored."
            )
        return self._fernet

    def seal(self, plain: str) -> str:
        """Encrypt."""
        return self._box().encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        """Decrypt.

        Raises:
            ServiceUnavailable: The key changed since the token was stored.
        """
        try:
            return self._box().decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ServiceUnavailable(
                "A stored token cannot be decrypted with TONEHUB_SECRET_KEY."
            ) from exc
