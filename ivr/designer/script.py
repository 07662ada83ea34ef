"""Scripted callers: replay what a caller says and check where the call ends.

Designers keep scripts next to their flows (`flows/scripts/*.yaml`); CI runs
them all. A script names the flow, how the backend answers, what the caller
does turn by turn, and what must have happened:

    script: failed payment, retry declined, then a person
    flow: payment
    backend:
      payment.retry: declined
    steps:
      - keys: "19800531"          # date of birth
      - {at: offer, say: try again}
      - {at: offer, keys: "0"}
    expect:
      outcome: {transfer: payments, reason: asked_for_agent}
      visits: [verify.check, offer, retry, declined, offer]

A backend answer may be a list, one per call of the action (the last one
repeats): `caller.identify: [declined, {outcome: ok, data: {...}}]` for a
caller number not on file, then a policy number found. An expected prompt
may name the language it must be heard in: `verify.dob@zh`. A scripted call
has no time, so it is outside every experiment's dates and hears the flow as
written, whatever the day; `arms: {menu_wording: short_menu}` puts it in an
experiment's arm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr import yamlsource
from ivr.backend.sample import sample_result
from ivr.designer.conversation import Conversation
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.flow.catalog import FlowSet
from ivr.flow.model import Language


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Reply(_Strict):
    outcome: str = "ok"
    data: dict[str, Any] | None = None


class CallerStep(_Strict):
    """One thing the caller does when the flow listens."""

    at: str | None = Field(None, description="The turn the call must be waiting in: node or flow.node")
    say: str | None = None
    confidence: float = Field(1.0, ge=0, le=1)
    alternatives: list[ev.Hypothesis] = Field(default_factory=list)
    keys: str | None = None
    silence: bool = False
    noise: bool = False
    hangup: bool = False

    def event(self) -> ev.Event:
        if self.hangup:
            return ev.Hangup()
        if self.silence:
            return ev.NoInput()
        if self.noise:
            return ev.NoMatch()
        if self.keys is not None:
            return ev.Dtmf(digits=self.keys)
        if self.say is not None:
            return ev.Speech(text=self.say, confidence=self.confidence, alternatives=self.alternatives)
        raise ValueError("a step needs say, keys, silence, noise or hangup")


class Outcome(_Strict):
    transfer: str | None = None
    reason: str | None = None
    priority: int | None = None
    hangup: str | None = None


class Expect(_Strict):
    outcome: Outcome | None = None
    visits: list[str] = Field(default_factory=list, description="Nodes visited, in this order (others may come between)")
    prompts: list[str] = Field(default_factory=list, description="Prompt keys heard, in this order")
    vars: dict[str, Any] = Field(default_factory=dict)


class Script(_Strict):
    script: str
    flow: str
    language: Language | None = None
    call: dict[str, Any] = Field(default_factory=lambda: {"ani": "+15550100"})
    arms: dict[str, str] = Field(default_factory=dict, description="Experiments' arms this caller is in "
                                 "(experiment: arm); in no other: a script hears the flow as written")
    backend: dict[str, str | Reply | list[str | Reply]] = Field(default_factory=dict)
    steps: list[CallerStep | Literal["silence", "noise", "hangup"]] = Field(default_factory=list)
    expect: Expect = Expect()


@dataclass
class ScriptResult:
    name: str
    file: str
    failures: list[str] = field(default_factory=list)
    conversation: Conversation | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


def load_script(path: Path) -> Script:
    document = yamlsource.load(path.read_text(encoding="utf-8"))
    try:
        return Script.model_validate(document.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        pos = document.source.locate(tuple(p for p in first["loc"] if not isinstance(p, str) or p in str(document.data)))
        raise ValueError(f"{path}:{pos.line}:{pos.column}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def run_script(release: FlowSet, script: Script, file: str = "") -> ScriptResult:
    result = ScriptResult(script.script, file)
    if script.flow not in release.flows:
        result.failures.append(f"flow '{script.flow}' does not exist")
        return result
    if unknown := _unknown_arms(release, script.arms):
        result.failures.extend(unknown)
        return result
    conversation = Conversation(release, script.flow, responder=_responder(script), call=script.call,
                                language=script.language, arms=script.arms)
    result.conversation = conversation
    conversation.begin()
    for number, raw in enumerate(script.steps, start=1):
        step = CallerStep(**{raw: True}) if isinstance(raw, str) else raw
        if conversation.finished:
            result.failures.append(f"step {number}: the call had already ended at {_where(conversation)}")
            return result
        if step.at and step.at not in (conversation.call_state.node, _where(conversation)):
            result.failures.append(f"step {number}: expected the call at '{step.at}', it is at '{_where(conversation)}'")
            return result
        conversation.send(step.event())
    _check_expectations(script.expect, conversation, result)
    return result


def _unknown_arms(release: FlowSet, arms: dict[str, str]) -> list[str]:
    """Pinned arms that no experiment of the release has: a typo would silently test the wrong version."""
    experiments = {name: [arm.arm for arm in experiment.arms]
                   for flow in release.flows.values() for name, experiment in flow.experiments.items()}
    problems = []
    for name, arm in arms.items():
        if name not in experiments:
            problems.append(f"arms: no flow has an experiment '{name}' (experiments: {', '.join(experiments) or 'none'})")
        elif arm not in experiments[name]:
            problems.append(f"arms: experiment '{name}' has no arm '{arm}' (arms: {', '.join(experiments[name])})")
    return problems


def _responder(script: Script):
    calls: dict[str, int] = {}

    def answer(call: act.CallBackend) -> tuple[str, dict[str, Any]]:
        reply = script.backend.get(call.name)
        if isinstance(reply, list):
            reply = reply[min(calls.get(call.name, 0), len(reply) - 1)] if reply else None
        calls[call.name] = calls.get(call.name, 0) + 1
        outcome, data = sample_result(call.name)
        if isinstance(reply, str):
            return reply, data
        if isinstance(reply, Reply):
            return reply.outcome, data if reply.data is None else reply.data
        return outcome, data
    return answer


def _where(conversation: Conversation) -> str:
    state = conversation.state
    return f"{state.flow}.{state.node}" if state else "?"


def _check_expectations(expect: Expect, conversation: Conversation, result: ScriptResult) -> None:
    state = conversation.state
    assert state is not None
    if expect.outcome:
        _check_outcome(expect.outcome, state.result, state.status, result)
    visited = _visits(conversation)
    missing = _first_missing(expect.visits, visited)
    if missing:
        result.failures.append(f"expected to visit '{missing}' (in order); path was: {' → '.join(_dedupe(visited))}")
    heard = [f"{h.key}@{h.language}" for h in conversation.transcript if h.kind == "prompt"]
    missing = _first_missing(expect.prompts, heard, _same_prompt)
    if missing:
        result.failures.append(f"expected to hear prompt '{missing}' (in order); heard: {', '.join(heard)}")
    for name, value in expect.vars.items():
        if state.variables().get(name) != value:
            result.failures.append(f"expected variable {name} = {value!r}, got {state.variables().get(name)!r}")


def _check_outcome(expected: Outcome, got: dict[str, Any], status: str, result: ScriptResult) -> None:
    if expected.transfer and (status != "transferred" or got.get("queue") != expected.transfer):
        result.failures.append(f"expected a transfer to {expected.transfer}, the call ended {status} {got}")
    if expected.reason and got.get("reason") != expected.reason:
        result.failures.append(f"expected transfer reason {expected.reason}, got {got.get('reason')}")
    if expected.priority is not None and got.get("priority") != expected.priority:
        result.failures.append(f"expected priority {expected.priority}, got {got.get('priority')}")
    if expected.hangup and (status != "ended" or got.get("outcome") != expected.hangup):
        result.failures.append(f"expected hang-up '{expected.hangup}', the call ended {status} {got}")


def _visits(conversation: Conversation) -> list[str]:
    state = conversation.state
    return [f"{turn.flow}.{turn.node}" for turn in state.path] if state else []


def _first_missing(expected: list[str], actual: list[str],
                   same: Callable[[str, str], bool] | None = None) -> str | None:
    same = same or _same_place
    position = 0
    for item in expected:
        while position < len(actual) and not same(item, actual[position]):
            position += 1
        if position == len(actual):
            return item
        position += 1
    return None


def _same_place(expected: str, actual: str) -> bool:
    return actual == expected or actual.endswith(f".{expected}") or actual.split(".", 1)[-1] == expected


def _same_prompt(expected: str, heard: str) -> bool:
    """`key` matches the key heard in any language, `key@zh` only in that language."""
    key, _, language = expected.partition("@")
    heard_key, _, heard_language = heard.partition("@")
    return _same_place(key, heard_key) and language in ("", heard_language)


def _dedupe(items: list[str]) -> list[str]:
    return [item for i, item in enumerate(items) if i == 0 or items[i - 1] != item]
