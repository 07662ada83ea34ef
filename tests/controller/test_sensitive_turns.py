"""A sensitive (keypad-only) turn: nothing the caller says in it reaches a recogniser, a recording or a log."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pydantic
import pytest

from ivr.controller.session import CallSession, Services
from ivr.controller.speech import StreamListener
from ivr.engine import actions as act

TIMEOUTS = act.Timeouts(noinput=5, end_silence=0.8, max_speech=15, interdigit=3)


def listen(sensitive: bool) -> act.Listen:
    return act.Listen(mode="digits", language="en", min_digits=4, max_digits=19, speech=not sensitive,
                      sensitive=sensitive, timeouts=TIMEOUTS)


class Workers:
    """The speech workers as the listener sees them: what each turn was fed."""

    def __init__(self) -> None:
        self.started: list[act.Listen] = []

    async def start_turn(self, call_id: str, turn: act.Listen) -> None:
        self.started.append(turn)


class Listener:
    """A CallListener that notes what the session tells it."""

    barge_in = True
    generation = 0
    media_id = snoop_id = None

    def __init__(self) -> None:
        self.pre_roll: list[bool] = []
        self.turns: list[act.Listen] = []

    def keep_pre_roll(self, keep: bool) -> None:
        self.pre_roll.append(keep)

    async def start_turn(self, turn: act.Listen) -> int:
        self.turns.append(turn)
        return len(self.turns)


def test_a_sensitive_turn_that_takes_speech_cannot_be_built():
    with pytest.raises(pydantic.ValidationError, match="keys only"):
        act.Listen(mode="digits", language="en", speech=True, sensitive=True, timeouts=TIMEOUTS)
    assert not listen(sensitive=True).speech


async def test_audio_heard_from_a_sensitive_turn_on_is_no_pre_roll_for_the_next_turn():
    listener = StreamListener(SimpleNamespace(workers=Workers()), ari=SimpleNamespace(), app="ivr", call_id="c1",
                              deliver=lambda item: None)
    listener._on_payload(b"before")
    assert list(listener.recent) == [b"before"], "between ordinary turns the last 300 ms are kept"
    listener.keep_pre_roll(False)  # a card number is being keyed, maybe said aloud too
    assert not listener.recent
    listener._on_payload(b"4111")
    assert not listener.recent
    listener.keep_pre_roll(True)  # the next turn that takes speech
    listener._on_payload(b"after")
    await listener.start_turn(listen(sensitive=False))
    fed = [listener.audio.get_nowait() for _ in range(listener.audio.qsize())]
    assert fed == [b"after"]
    await asyncio.sleep(0)


async def test_the_session_tells_its_listener_whether_a_turn_is_sensitive_and_opens_no_speech_turn_for_it():
    services = Services(ari=SimpleNamespace(), store=SimpleNamespace(), backend=SimpleNamespace(),
                        media=SimpleNamespace(), app="ivr")
    session = CallSession(services, "c1")
    session.listener = listener = Listener()
    try:
        await session._execute([listen(sensitive=True)])
        assert listener.pre_roll == [False] and listener.turns == [], "no recogniser hears a keypad-only turn"
        session.turn_started = False
        await session._execute([listen(sensitive=False)])
        assert listener.pre_roll == [False, True] and len(listener.turns) == 1
    finally:
        session._cancel_timer()
