"""Channel variables, as ``Set()`` and ``POST /variable`` change them and the dialplan reads them.

A name with parentheses is a dialplan function: ``CALLERID(num|name|all)``
changes the caller id (ChannelCallerId), ``TALK_DETECT(set|remove)`` starts
or stops talk detection, ``MASTER_CHANNEL(VAR)`` sets VAR on the queue
caller whose agent runs a Gosub; any other function is stored as written.
A plain name is a variable (ChannelVarset).  Reading also answers the
built-ins (``CHANNEL``, ``UNIQUEID``, ``EXTEN``, ``CONTEXT``, ``PRIORITY``)
and, on an externalMedia channel, its ``channelvars``.
"""
from __future__ import annotations

from . import events as ev
from .emitter import Emitter
from .model import CallerId, Channel
from .talkdetect import TalkDetector


class Variables:
    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter

    def set(self, ch: Channel, name: str, value: str) -> None:
        """Set a variable or dialplan function as ``Set()``/``POST /variable`` do."""
        func, _, arg = name.partition("(")
        arg = arg.rstrip(")")
        if not _:
            ch.set_var(name, value)
            self.emitter.emit(ev.varset(self.emitter.ts(), ch, name, value))
            return
        func = func.upper()
        if func == "CALLERID":
            self._set_callerid(ch, arg.lower(), value)
        elif func == "TALK_DETECT":
            self._talk_detect(ch, arg.lower(), value)
        elif func == "MASTER_CHANNEL":
            master = ch.master
            if master is not None and not master.destroyed:
                self.set(master, arg, value)
        else:
            ch.variables[name] = value

    def _set_callerid(self, ch: Channel, part: str, value: str) -> None:
        if part in ("num", "number"):
            ch.caller.number = value
        elif part == "name":
            ch.caller.name = value
        elif part == "all":
            ch.caller = CallerId.parse(value)
        self.emitter.emit(ev.caller_id(self.emitter.ts(), ch))

    def _talk_detect(self, ch: Channel, action: str, value: str) -> None:
        if ch.talk_detect is not None:
            ch.talk_detect.stop()
            ch.talk_detect = None
        if action == "set":
            parts = [p for p in value.split(",")]
            silence_ms = int(parts[0]) if parts and parts[0].strip() else 2500
            threshold = int(parts[1]) if len(parts) > 1 and parts[1].strip() else 256
            ch.talk_detect = TalkDetector(self.emitter, ch, silence_ms, threshold)
            ch.talk_detect.start()

    def get(self, ch: Channel, name: str) -> str | None:
        upper = name.upper()
        if upper.startswith("CALLERID("):
            part = name[9:-1].lower()
            return {"num": ch.caller.number, "number": ch.caller.number, "name": ch.caller.name,
                    "all": f'"{ch.caller.name}" <{ch.caller.number}>'}.get(part)
        builtin = {"CHANNEL": ch.name, "UNIQUEID": ch.id, "EXTEN": ch.location.exten,
                   "CONTEXT": ch.location.context, "PRIORITY": str(ch.location.priority)}
        if upper in builtin:
            return builtin[upper]
        if ch.channelvars and name in ch.channelvars:
            return ch.channelvars[name]
        return ch.get_var(name)
