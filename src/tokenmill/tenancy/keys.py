"""API key material: random secrets, their hashes, ids and display prefixes."""

from __future__ import annotations

import hashlib
import secrets

SECRET_PREFIX = "tm-"
PREFIX_CHARS = 10  # "tm-" and 7 random characters: enough to recognise a key, far too few to use one


def new_secret() -> str:
    """A fresh API key secret: "tm-" and 32 random bytes (256 bits), URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """sha256 hex of a secret; with 256 bits of entropy a plain, fast hash cannot be brute-forced."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_id(kind: str) -> str:
    """A public id such as "ten_0f3a..." or "key_9b2c...": safe to show and log."""
    assert kind in ("ten", "key"), kind
    return f"{kind}_{secrets.token_hex(8)}"


def prefix_of(secret: str) -> str:
    """The first characters of a secret, stored to recognise a key in lists."""
    return secret[:PREFIX_CHARS]
