"""Keys derived from SECRET_KEY (HKDF-SHA256), one per purpose.

A key used for one thing only cannot be turned against another: knowing the key that hashes
API keys does not sign a JWT, and SECRET_KEY itself signs nothing.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# HKDF ``info`` labels: changing one changes its key (and invalidates what it protects).
JWT_SIGNING = b"patchbay/jwt-signing/v1"
API_KEY_HASHING = b"patchbay/api-key-hashing/v1"


@lru_cache(maxsize=8)
def derived_key(secret_key: str, label: bytes) -> str:
    """A 256-bit key for ``label``, as 64 hex characters."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label)
    return hkdf.derive(secret_key.encode("utf-8")).hex()
