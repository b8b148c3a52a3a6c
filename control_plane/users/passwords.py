"""Password hashing with argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).

argon2-cffi's default (RFC 9106's second recommendation, 64 MiB and 4 lanes) took 1.2 s a
verification on this project's loaded 2-core machine, against 0.18 s for these parameters: a
sign-in must not cost a second of CPU. Hashes record their parameters, and a sign-in re-hashes a
password stored with other ones (``needs_rehash``), so they can be raised later.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_CHARS = 256  # hashing cost grows with length: refuse novels before hashing them

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified when a sign-in names no user (or one without a password), so such an attempt takes as
# long as a wrong password and does not tell which e-mails exist.
_decoy: list[str] = []


def _decoy_hash() -> str:
    if not _decoy:
        _decoy.append(_hasher.hash("decoy password that matches nothing"))
    return _decoy[0]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _decoy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when ``stored`` was hashed with weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored)
