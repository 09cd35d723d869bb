"""Password hashing (argon2id via argon2-cffi) and the password policy."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
# argon2 hashes anything, but a megabyte password per login attempt is a cheap DoS.
MAX_LENGTH = 256

# Common passwords long enough to pass the length rule (shorter ones fail it anyway), compared
# case-insensitively. A small list by design: it stops the obvious, not a determined guesser.
COMMON_PASSWORDS = frozenset({
    "123456789012", "1234567890123", "12345678901234", "123456123456", "111111111111",
    "000000000000", "123123123123", "qwertyuiopas", "qwerty123456", "qwertyqwerty",
    "1q2w3e4r5t6y", "1qaz2wsx3edc", "zaq12wsxcde3", "asdfghjkl123", "asdfasdfasdf",
    "password1234", "password123!", "password12345", "passwordpassword", "password1!password",
    "p@ssw0rd1234", "p@ssword1234", "passw0rd1234", "iloveyou1234", "letmein12345",
    "welcome12345", "welcome123456", "changeme1234", "changeme12345", "adminadmin12",
    "administrator", "admin1234567", "admin123456789", "secret123456", "trustno11234",
    "monkey123456", "dragon123456", "football1234", "baseball1234", "sunshine1234",
    "princess1234", "superman1234", "starwars1234", "abc123abc123", "abcdefghijkl",
    "abcd1234abcd", "patchbay1234", "patchbaypatchbay", "correcthorsebatterystaple",
})

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problems(password: str, username: str | None = None) -> list[str]:
    """What the password policy finds wrong with ``password`` (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Use at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if username and username.strip() and username.strip().lower() in lowered:
        problems.append("Do not use the username in the password.")
    if lowered in COMMON_PASSWORDS:
        problems.append("This password is too common.")
    if password and len(set(password)) < 4:
        problems.append("Use more than three different characters.")
    return problems


# Verified against when the username does not exist, so a miss costs what a hit costs and
# response times do not tell which usernames exist.
@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_or_burn(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        verify_password(_dummy_hash(), password)
        return False
    return verify_password(password_hash, password)
