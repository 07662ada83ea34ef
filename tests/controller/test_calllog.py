"""The operator's call lines: one per turn, one per call end, nothing personal in clear, text or JSON."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

from ivr.controller import notices as note
from ivr.controller.calllog import CallLog
from ivr.engine import Step
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.state import CallState, Pending, Turn
from ivr.logsetup import FIELDS, JsonFormatter
from ivr.speech.turn import TurnEnded
from tests.controller.conftest import make_rig

LOGGER = "ivr.controller.calllog"
DOB = "19800531"


def call_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]


def fields_of(record: logging.LogRecord) -> dict:
    return getattr(record, FIELDS)


def everything_logged(caplog) -> str:
    """Every record as an operator's log store would hold it: text and JSON forms."""
    formatter = JsonFormatter()
    return "\n".join(r.getMessage() + "\n" + formatter.format(r) for r in caplog.records)


async def test_keypad_call_logs_each_turn_and_its_end(tmp_path, redis_url, caplog):
    caplog.set_level(logging.DEBUG, logger="ivr")
    async with make_rig(tmp_path, redis_url) as rig:  # the call log is part of every built application
        call = rig.call()
        await call.wait_prompt(2)
        await call.press("1")
        await call.wait_until(lambda c: any(p.media_uri.endswith("verify.dob") for p in c.prompts))
        await call.press(DOB, interval=0.12)
        await call.wait_until(lambda c: any(p.media_uri.endswith("policy.what_next") for p in c.prompts))
        await call.press("0")
        await call.wait_continued()
        for _ in range(50):
            if any(fields_of(r)["event"] == "call_end" for r in call_lines(caplog)):
                break
            await asyncio.sleep(0.05)
    lines = call_lines(caplog)
    turns = [fields_of(r) for r in lines if fields_of(r)["event"] == "turn"]
    menu, dob = turns[0], next(t for t in turns if t["node"] == "ask_dob")
    assert (menu["flow"], menu["node"], menu["keyed"]) == ("main_menu", "menu", "1")
    assert menu["prompts"][:2] == ["main.welcome", "main.menu"] and menu["outcome"] == "chose policy"
    assert 0 <= menu["latency_ms"] < 2000, "from the key to the next prompt"
    assert dob["keyed"] == "*" * len(DOB) and dob["outcome"] == "captured" and dob["prompts"] == ["verify.dob"]
    assert [t["turn"] for t in turns] == list(range(1, len(turns) + 1))
    end = fields_of(lines[-1])
    assert end["event"] == "call_end" and end["outcome"] == "transferred"
    assert (end["queue"], end["reason"]) == ("policy_service", "asked_for_agent")
    assert end["turns"] == len(turns) and end["duration_s"] > 0
    text = lines[-1].getMessage()
    assert text.startswith(f"call {call.channel_id} ended: outcome=transferred queue=policy_service")
    logged = everything_logged(caplog)
    assert DOB not in logged and "15550100" not in logged, "dates of birth and caller numbers never in clear"


def _session(state: CallState | None = None) -> SimpleNamespace:
    return SimpleNamespace(channel_id="c-1", state=state, playing=[])


def _state(node: str, path: list[Turn], pending: Pending | None = None, status: str = "running") -> CallState:
    return CallState(call_id="c-1", release="r1", flow="verify", node=node, language="en", path=path,
                     pending=pending, status=status)


def _listen(mode: str, sensitive: bool = False) -> act.Listen:
    return act.Listen(mode=mode, language="en", min_digits=8, max_digits=8, sensitive=sensitive, speech=not sensitive,
                      timeouts=act.Timeouts(noinput=5, end_silence=0.8, max_speech=15, interdigit=3))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _step(log: CallLog, session, state: CallState, actions: list[act.Action]) -> None:
    """The session's notice of an engine step from its current state to `state`."""
    before, session.state = session.state, state
    log(session, note.StepTaken(Step(state, actions), note.turns_added(before, state)))


def _spoken_turn(log: CallLog, clock: Clock, session, text: str, mode: str, outcome_path: list[Turn],
                 pending: Pending | None = None) -> None:
    """A turn asked with one prompt, answered by voice, followed by the next prompt 0.4 s after the voice."""
    start = [Turn(flow="verify", node="ask", kind="prompt", matched="verify.dob")]
    log(session, note.CallStarted({"ani": "+15550100", "dnis": "8001"}))
    _step(log, session, _state("ask", start),
          [act.Play(prompts=[act.PromptRef(key="verify.dob")], language="en"), _listen(mode)])
    clock.now += 3.0
    log(session, note.SpeechHeard(TurnEnded(event=ev.Speech(text=text, confidence=0.71), at=2.5, speech_end=2.3)))
    _step(log, session, _state("next", start + outcome_path, pending),
          [act.Play(prompts=[act.PromptRef(key="policy.what_next")], language="en")])
    clock.now += 0.2
    session.playing = [("pb-2", True)]
    log(session, note.PromptStarted("pb-2"))


def test_spoken_digits_are_masked_and_timed_from_the_end_of_the_voice(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Clock()
    log, session = CallLog(clock), _session()
    said = "one nine eight zero zero five three one"
    _spoken_turn(log, clock, session, said, "digits",
                 [Turn(flow="verify", node="ask", kind="input", heard=said, confidence=0.71, matched=DOB),
                  Turn(flow="verify", node="ask", kind="captured", matched="ok", detail="8 digits")])
    [line] = call_lines(caplog)
    turn = fields_of(line)
    assert turn["said"] == "********" and turn["confidence"] == 0.71 and turn["outcome"] == "captured"
    assert turn["latency_ms"] == 400, "0.2 s of the turn's end after the voice, then 0.2 s to the prompt"
    assert DOB not in everything_logged(caplog) and "nine" not in everything_logged(caplog)


def test_low_confidence_choice_is_shown_with_its_confirmation(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Clock()
    log, session = CallLog(clock), _session()
    _spoken_turn(log, clock, session, "payment 2", "choices",
                 [Turn(flow="verify", node="ask", kind="input", heard="payment 2", confidence=0.71, matched="payment")],
                 Pending(kind="confirm", choice="payment", heard="payment"))
    log(session, note.HungUp("completed"))
    turn, end = (fields_of(r) for r in call_lines(caplog))
    assert turn["said"] == "payment *" and turn["outcome"] == "chose payment, asked to confirm"
    assert end["outcome"] == "completed" and end["turns"] == 1


def test_keypad_only_turn_shows_nothing_of_the_keys(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Clock()
    log, session = CallLog(clock), _session()
    log(session, note.CallStarted({}))
    _step(log, session, _state("card", []),
          [act.Play(prompts=[act.PromptRef(key="payment.card")], language="en"), _listen("digits", sensitive=True)])
    for digit in "4111111111111111#":
        log(session, note.KeyPressed(digit))
    transfer = act.Transfer(queue="payments", reason="gateway_timeout", priority=6)
    _step(log, session, _state("card", [Turn(flow="verify", node="card", kind="captured", matched="ok",
                                             detail="16 digits")], status="transferred"), [transfer])
    log(session, note.Transferred(transfer))
    turn, end = (fields_of(r) for r in call_lines(caplog))
    assert turn["keyed"] == "[withheld]" and "latency_ms" not in turn
    assert (end["outcome"], end["queue"], end["reason"], end["priority"]) == ("transferred", "payments",
                                                                             "gateway_timeout", 6)
    assert "4111" not in everything_logged(caplog)


def test_caller_hanging_up_mid_turn_is_logged_as_such(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    log, session = CallLog(Clock()), _session()
    log(session, note.CallStarted({}))
    _step(log, session, _state("menu", []),
          [act.Play(prompts=[act.PromptRef(key="main.menu")], language="en"), _listen("choices")])
    log(session, note.CallerLeft("ChannelHangupRequest"))
    turn, end = (fields_of(r) for r in call_lines(caplog))
    assert (turn["node"], turn["outcome"], turn["prompts"]) == ("menu", "caller hung up", ["main.menu"])
    assert end["outcome"] == "caller hung up" and end["turns"] == 1


def test_json_lines_carry_the_fields_as_keys(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Clock()
    log, session = CallLog(clock), _session()
    _spoken_turn(log, clock, session, "payment", "choices",
                 [Turn(flow="verify", node="ask", kind="input", heard="payment", confidence=0.9, matched="payment")])
    [record] = call_lines(caplog)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "INFO" and data["logger"] == LOGGER and data["time"].endswith("+00:00")
    assert {k: data[k] for k in ("event", "call", "turn", "flow", "node", "prompts", "said", "confidence",
                                 "latency_ms", "outcome")} == {
        "event": "turn", "call": "c-1", "turn": 1, "flow": "verify", "node": "ask", "prompts": ["verify.dob"],
        "said": "payment", "confidence": 0.71, "latency_ms": 400, "outcome": "chose payment"}
    assert data["message"] == record.getMessage()


def test_a_failure_in_the_call_log_never_reaches_the_call(caplog):
    """Sessions notify observers inline: an exception here would end the caller's call."""
    log, session = CallLog(Clock()), _session()
    log(session, note.StepTaken(object(), ()))  # not a Step
    assert "call log failed on StepTaken" in caplog.text
