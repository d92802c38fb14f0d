"""The client's public surface is exactly its ``__all__``, sorted, and every name exists."""

from __future__ import annotations

import chaingraph_executor.client as client


def test_all_lists_exactly_the_public_names_sorted() -> None:
    public = sorted(
        name
        for name, value in vars(client).items()
        if not name.startswith("_") and getattr(value, "__module__", "") != "__future__"
    )
    assert client.__all__ == sorted(client.__all__)
    assert client.__all__ == public
    for name in client.__all__:
        assert getattr(client, name) is not None
