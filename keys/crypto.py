"""The one place a key secret exists in govsite: encrypted, until its owner reveals it once."""

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    material = (settings.KEY_ENCRYPTION_SECRET or settings.SECRET_KEY).encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"govsite-key-secret:" + material).digest()))


def new_secret() -> str:
    """A LiteLLM-style virtual key secret. govsite makes it so a re-run finds the same key."""
    return "sk-" + secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    """What LiteLLM stores and logs for a key: sha256 of the whole secret, `sk-` included."""
    return hashlib.sha256(secret.encode()).hexdigest()


def encrypt(secret: str) -> bytes:
    return _fernet().encrypt(secret.encode())


class CannotDecrypt(Exception):
    """The secret was encrypted with another encryption secret (it changed since)."""


def decrypt(blob: bytes) -> str:
    try:
        return _fernet().decrypt(bytes(blob)).decode()
    except InvalidToken as exc:
        raise CannotDecrypt from exc
