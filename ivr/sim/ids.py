"""Identifier factories that look like Asterisk's.

Channel unique ids are ``<epoch>.<sequence>`` (``<systemname>-<epoch>.<sequence>`` when
asterisk.conf sets a system name, as several Asterisk servers behind one controller need), Local, Snoop and Announcer
channel names carry an eight-digit hex counter (``Local/x@ctx-0000002a;1``),
bridges get UUIDs.
"""
from __future__ import annotations

import itertools
import random
import uuid

from .clock import Clock


class IdFactory:
    def __init__(self, clock: Clock, system_name: str = "") -> None:
        self._clock = clock
        self._prefix = f"{system_name}-" if system_name else ""  # asterisk.conf `systemname`
        self._seq = itertools.count(0)
        self._local = itertools.count(0)
        self._trunk = itertools.count(1)
        self._snoop = itertools.count(0)
        self._announcer = itertools.count(0)

    def unique_id(self) -> str:
        return f"{self._prefix}{int(self._clock.wall())}.{next(self._seq)}"

    def local_suffix(self) -> str:
        return f"{next(self._local):08x}"

    def trunk_suffix(self) -> str:
        return f"{next(self._trunk):08x}"

    def snoop_suffix(self) -> str:
        """``Snoop/<spied id>-00000000``: one counter for all snoops, from 0."""
        return f"{next(self._snoop):08x}"

    def announcer_suffix(self) -> str:
        """``Announcer/ARI-00000002;2``: one counter for all bridge playbacks."""
        return f"{next(self._announcer):08x}"

    @staticmethod
    def bridge_id() -> str:
        return str(uuid.uuid4())

    @staticmethod
    def pointer() -> str:
        """The ``0x7f...`` tail of UnicastRTP channel names."""
        return f"0x7f{random.randrange(16**10):010x}"
