"""Talk to a flow in the terminal: type what the caller says, see what they hear.

Input lines:  words → speech (add `@0.4` for a confidence),  `#12#` → keys,
an empty line → silence,  `!noise` → speech not understood,  `!hangup`,
`!path` → the path so far,  `!quit`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TextIO

from ivr.designer.conversation import Conversation, Heard
from ivr.engine import events as ev
from ivr.engine import experiments
from ivr.engine.state import Turn

HELP = "words = speech (add @0.4 for confidence) · #123 = keys · empty = silence · !noise · !hangup · !path · !quit"


def parse_line(line: str) -> ev.Event | str:
    """An event for the engine, or a command word for the terminal."""
    text = line.strip()
    if not text:
        return ev.NoInput()
    if text.startswith("#") and len(text) > 1:
        return ev.Dtmf(digits=text[1:].replace(" ", ""))
    if text in ("!noise", "!nomatch"):
        return ev.NoMatch()
    if text == "!hangup":
        return ev.Hangup()
    if text.startswith("!"):
        return text[1:]
    match = re.fullmatch(r"(.*?)\s*@\s*(0(?:\.\d+)?|1(?:\.0+)?)", text)
    if match:
        return ev.Speech(text=match.group(1), confidence=float(match.group(2)))
    return ev.Speech(text=text, confidence=1.0)


def run(conversation: Conversation, read: Callable[[], str | None], out: TextIO,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now().astimezone()) -> int:
    """A call in the terminal happens now, like a live one: experiments run by their dates
    (scripted callers have no time, so theirs are reproducible whatever the day)."""
    conversation.call.setdefault(experiments.CALL_TIME, now().isoformat(timespec="seconds"))
    print(HELP, file=out)
    _show(conversation.begin(), conversation, out)
    while not conversation.finished:
        line = read()
        if line is None:
            break
        parsed = parse_line(line)
        if parsed == "quit":
            break
        if parsed == "path":
            _path(conversation, out)
            continue
        if isinstance(parsed, str):
            print(f"  ? unknown command !{parsed}. {HELP}", file=out)
            continue
        seen = len(conversation.call_state.path)
        heard = conversation.send(parsed)
        _understood(conversation.call_state.path[seen:], out)
        _show(heard, conversation, out)
    _path(conversation, out)
    return 0


def _understood(turns: list[Turn], out: TextIO) -> None:
    """What the engine made of the caller's input: matched choice and confidence, or the error."""
    for turn in turns:
        if turn.kind in ("input", "confirm"):
            confidence = f" ({turn.confidence:.2f})" if turn.confidence is not None else ""
            print(f"  ✓ heard {turn.heard!r} → {turn.matched or 'no match'}{confidence}", file=out)
        elif turn.kind in ("noinput", "nomatch"):
            print(f"  ✗ {turn.kind} #{turn.detail}", file=out)
        elif turn.kind in ("escape", "caller_hangup"):
            print(f"  ✗ {turn.kind}: {turn.matched or ''} {turn.detail or ''}", file=out)


def _show(heard: list[Heard], conversation: Conversation, out: TextIO) -> None:
    for item in heard:
        marks = {"prompt": "🔊", "listen": "👂", "backend": "⚙", "transfer": "☎", "hangup": "■", "experiment": "⚗"}
        if item.kind == "listen":
            state = conversation.call_state
            print(f"  {marks['listen']} listening ({item.text}) at {state.flow}.{state.node}", file=out)
        else:
            print(f"  {marks.get(item.kind, '·')} {item.text}", file=out)


def _path(conversation: Conversation, out: TextIO) -> None:
    state = conversation.state
    if state is None:
        return
    steps: list[str] = []
    for turn in state.path:
        place = f"{turn.flow}.{turn.node}"
        if not steps or steps[-1] != place:
            steps.append(place)
    print("path: " + " → ".join(steps), file=out)
    if state.experiments:
        print("experiments: " + ", ".join(f"{name}: {arm}" for name, arm in state.experiments.items()), file=out)
    print(f"status: {state.status} {state.result or ''}", file=out)
