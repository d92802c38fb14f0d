"""Identifiers: random execution ids in upstream's format, deterministic ids for children."""

from __future__ import annotations

import hashlib
import secrets

# The alphabet upstream uses for execution ids (no look-alike characters).
ALPHABET = "346789ABCDEFGHJKLMNPQRTUVWXYabcdefghijkmnpqrtwxyz"
ID_LENGTH = 24


def random_id(prefix: str, length: int = ID_LENGTH) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_execution_id() -> str:
    """``EX`` followed by 24 characters, as upstream."""
    return random_id("EX")


def derived_id(prefix: str, *parts: str, length: int = ID_LENGTH) -> str:
    """A stable id computed from ``parts``: the same parts always give the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    n = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        n, r = divmod(n, len(ALPHABET))
        chars.append(ALPHABET[r])
    return prefix + "".join(chars)


def child_execution_id(parent_execution_id: str, emitted_event_id: str) -> str:
    """Child ids are derived from the parent and the emitting event, so a re-run never spawns twice."""
    return derived_id("EX", parent_execution_id, emitted_event_id)
