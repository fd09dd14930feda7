"""Dashboard passwords, stored as scrypt hashes (memory-hard, in the standard library).

A stored hash reads ``scrypt$N$r$p$salt$key`` (salt and key in URL-safe base64), so the cost
can be raised later without breaking older hashes: ``needs_rehash`` says when to upgrade one
at the next successful login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# 2**15 iterations of 8-block rows: 32 MiB of memory and ~0.1 s per hash on a small machine.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
KEY_BYTES = 32
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
# Verified against when the account is unknown, so a wrong username costs as much time as a
# wrong password (no way to tell which usernames exist from the response time).
_DUMMY_SALT = b"carebot-no-such-account"


class PasswordError(ValueError):
    """A password that may not be set, with the reason."""


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise PasswordError("a password cannot be only spaces")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=2 * 128 * r * n + 1024 * 1024,
        dklen=KEY_BYTES,
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    check_password_rules(password)
    salt = secrets.token_bytes(16)
    key = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True if ``password`` matches ``stored``; False for no hash or a malformed one."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        scheme, n, r, p, salt, key = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        derived = _derive(password, _unb64(salt), int(n), int(r), int(p))
        return hmac.compare_digest(derived, _unb64(key))
    except ValueError:
        _derive(password, _DUMMY_SALT, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        return False


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$")
