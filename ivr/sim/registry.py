"""What the simulator's parts hold by id, readable as a mapping by the rest of the simulator and tests.

A part (bridges, playbacks, live recordings) owns its items and is the only one to add or remove
them; everyone else reads them as a `Mapping`, so nothing outside the part can change them behind it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T]):
    """A read-only mapping over the part's own `_items`."""

    def __init__(self) -> None:
        self._items: dict[str, T] = {}

    def __getitem__(self, key: str) -> T:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
