"""API key format: ``nz_`` + 41 random base62 characters (44 in all).

The first 12 characters are the *prefix*: stored in clear under a unique index to find
the row; the whole key is stored only as an Argon2id hash. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import secrets
import string

KEY_NAMESPACE = "nz_"
KEY_RANDOM_LENGTH = 41
KEY_LENGTH = len(KEY_NAMESPACE) + KEY_RANDOM_LENGTH
PREFIX_LENGTH = 12
BASE62 = string.digits + string.ascii_letters
_BASE62_SET = frozenset(BASE62)


def generate_key() -> str:
    """A fresh key from the OS's CSPRNG (~244 bits of entropy)."""
    return KEY_NAMESPACE + "".join(secrets.choice(BASE62) for _ in range(KEY_RANDOM_LENGTH))


def is_well_formed(key: str) -> bool:
    return (
        len(key) == KEY_LENGTH
        and key.startswith(KEY_NAMESPACE)
        and all(c in _BASE62_SET for c in key[len(KEY_NAMESPACE) :])
    )


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


def is_well_formed_prefix(prefix: str) -> bool:
    return (
        len(prefix) == PREFIX_LENGTH
        and prefix.startswith(KEY_NAMESPACE)
        and all(c in _BASE62_SET for c in prefix[len(KEY_NAMESPACE) :])
    )


def cache_digest(key: str) -> bytes:
    """The verified-key cache's lookup key: a digest, so the cache never holds a key."""
    return hashlib.blake2b(key.encode("ascii"), digest_size=32, person=b"nz-keycache").digest()


def bearer_token(header_value: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, if well formed; else None."""
    if not header_value:
        return None
    scheme, _, token = header_value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip(" ")
    return token if is_well_formed(token) else None
