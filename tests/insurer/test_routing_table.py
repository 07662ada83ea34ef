"""The routing table: generated caller histories against the shipped rules (flows/routing.yaml).

Each case makes a caller (from the seeded book) and their history (written
to the real Redis), lets the router gather facts and decide with the rules
of a release, and checks the first destination. Every shipped rule must have
a case here, so a rule added without one fails this file.

The rules belong to a release (loaded, checked against its flows and swapped
with them), so the reload tests drive the router with a catalog.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ivr import yamlsource
from ivr.callrecord import CallRecord
from ivr.flow.catalog import Catalog, FlowSet, load_flow_set
from ivr.routing.facts import gather
from ivr.routing.router import Router, decide_with
from ivr.routing.rules import load_rules, load_rules_text
from tests.conftest import ROOT
from tests.insurer.conftest import persona
from tests.reload_gate import ReloadGate, copy_flows, until

RULES = ROOT / "flows" / "routing.yaml"
DAY = 86400


@pytest.fixture(scope="module")
def release() -> FlowSet:
    """The shipped flows, prompts and routing rules, as `ivr serve` loads them."""
    loaded, _ = load_flow_set(ROOT / "flows", ROOT / "prompts", routing=RULES)
    return loaded


@pytest.fixture(scope="module")
def flows(release):
    return release.flows


@dataclass
class Past:
    days_ago: float
    intents: list[str]
    queue: str | None = None


@dataclass
class Case:
    name: str
    rule: str  # the rule that must decide
    caller: str  # persona key, or "ani:<number>" for a number on nobody's file
    history: list[Past] = field(default_factory=list)
    failed_verifications: int = 0
    agent: str | None = None
    expect_start: str | None = None
    expect_intents: dict[str, str | None] = field(default_factory=dict)  # None: no intent rule fires
    expect_agent: str | None = None
    reason_has: str = ""


CASES = [
    Case("locked out", "locked_out", "policy", failed_verifications=3, expect_start="locked", reason_has="3 failed"),
    Case("failed debit", "failed_debit_first", "payment", expect_start="payment", reason_has="insufficient_funds"),
    Case("failed debit beats a repeat call", "failed_debit_first", "payment",
         history=[Past(1, ["payment"])], expect_start="payment", expect_intents={"payment": "person"}),
    Case("orphan policy", "orphan_policy_desk", "orphan", expect_start="orphan_desk", reason_has="agent has left"),
    Case("first year, says cancel", "first_year_cancel", "first_year", expect_start=None,
         expect_intents={"cancel": "save_team", "policy": None}, reason_has="first three months"),
    Case("first year beats repeat for cancel", "first_year_cancel", "first_year",
         history=[Past(2, ["cancel"])], expect_intents={"cancel": "save_team"}),
    Case("same intent within 7 days", "repeat_caller", "cancel",
         history=[Past(2, ["policy"]), Past(8, ["payment"])],
         expect_intents={"policy": "person", "payment": None, "cancel": None}, reason_has="within the last 7 days"),
    Case("repeat caller known only by number", "repeat_caller", "ani:+15557770001",
         history=[Past(0.5, ["phone"], queue="policy_service")], expect_intents={"phone": "person"}),
    Case("last agent preferred", "last_agent", "person", agent="agent-17", expect_agent="agent-17",
         reason_has="agent-17"),
    Case("nothing special: the menu", "", "cancel", history=[Past(10, ["policy"])], expect_start=None,
         expect_intents={"policy": None, "payment": None, "phone": None, "cancel": None}),
]


async def _prepare(case: Case, systems) -> dict[str, Any]:
    now = time.time()
    if case.caller.startswith("ani:"):
        ani, person = case.caller[4:], None
    else:
        ani = persona(case.caller).phone
        person = (await systems.admin.persons_by_phone(ani))[0].id
    keys = [k for k in (person, systems.history.ani_key(ani)) if k]
    for index, past in enumerate(case.history):
        ended = now - past.days_ago * DAY
        record = CallRecord(call_id=f"{case.name}-{index}", started=ended - 120, ended=ended,
                            status="transferred" if past.queue else "ended",
                            outcome=past.queue or "completed", intents=past.intents, queue=past.queue)
        await systems.history.record(record, keys[:1])
    if case.failed_verifications:
        policy = persona(case.caller).policy
        for _ in range(case.failed_verifications):
            await systems.history.add_failed_verification(policy)
    if case.agent:
        await systems.history.note_agent(keys[0], case.agent)
    return {"ani": ani, "dnis": "100", "language": None}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_first_destination(case: Case, systems, release):
    router = Router(RULES, lambda call: gather(call, systems, systems.history))
    decision = await router.decide(await _prepare(case, systems), release.routing)
    routing = decision["routing"]
    assert decision["route_start"] == case.expect_start
    for intent, expected in case.expect_intents.items():
        assert decision["route_for"].get(intent) == expected, intent
    if case.expect_agent:
        assert routing["prefer_agent"]["agent"] == case.expect_agent
    fired = [d for d in (routing["start"], *routing["intents"].values(), routing["prefer_agent"]) if d]
    if case.rule:
        decided = [d for d in fired if d["rule"] == case.rule]
        assert decided, f"{case.rule} did not fire: {fired}"
        assert case.reason_has in decided[0]["reason"]
    else:
        assert not fired


def test_every_shipped_rule_has_a_case(flows):
    rules, diagnostics = load_rules(RULES, flows)
    assert rules is not None, diagnostics
    assert {r.rule for r in rules.rules} == {c.rule for c in CASES if c.rule}


def test_rule_mistakes_point_at_the_line_with_a_suggestion(flows):
    text = RULES.read_text()
    broken = (text.replace("    to: orphan_desk", "    to: orphan_dsk")
                  .replace("when: caller.orphan", "when: caller.orfan")
                  .replace("  - rule: last_agent\n", "  - rule: last_agent\n    prefered_agent: x\n"))
    rules, diagnostics = load_rules_text(broken, "routing.yaml", flows)
    assert rules is None
    assert any(d.code == "unknown-key" and "did you mean 'prefer_agent'" in d.message for d in diagnostics)
    broken = text.replace("    to: orphan_desk", "    to: orphan_dsk").replace("when: caller.orphan", "when: caller.orfan")
    rules, diagnostics = load_rules_text(broken, "routing.yaml", flows)
    lines = text.splitlines()
    by_code = {d.code: d for d in diagnostics}
    assert "did you mean 'orphan_desk'" in by_code["unknown-destination"].message
    assert lines[by_code["unknown-destination"].line - 1].strip() == "to: orphan_desk"
    assert "did you mean 'orphan'" in by_code["unknown-fact"].message
    assert lines[by_code["unknown-fact"].line - 1].strip() == "when: caller.orphan"


def _with(flows, name: str, edit) -> dict:
    """The flows with one flow's text edited."""
    from ivr.flow.loader import load_flow_text

    loaded, diagnostics = load_flow_text(edit((ROOT / "flows" / f"{name}.yaml").read_text()), f"{name}.yaml")
    assert loaded is not None, diagnostics
    return {**flows, name: loaded.flow}


def test_rules_and_the_entry_flows_routes_are_checked_against_each_other(flows):
    """No expression is parsed: a rule's destination is a key of the entry flow's routes, its intent a
    choice of the intent turn, and a route no rule names (or routes in a flow calls never start on) is said."""
    text = RULES.read_text()
    assert load_rules_text(text, "routing.yaml", flows)[1] == []

    fewer = _with(flows, "main_menu", lambda t: t.replace("    locked: {transfer", "    locked_out: {transfer"))
    missing, unused = sorted(load_rules_text(text, "routing.yaml", fewer)[1], key=lambda d: d.code)
    assert missing.code == "unknown-destination" and "its routes.start has no 'locked'" in missing.message
    assert unused.code == "unused-route" and "routes.start 'locked_out'" in unused.message
    assert "did you mean 'locked_out'" in missing.message
    assert text.splitlines()[missing.line - 1].strip() == "to: locked"

    spare = text.replace("    to: orphan_desk\n", "    prefer_agent: history.last_agent\n")
    [unused] = load_rules_text(spare, "routing.yaml", flows)[1]
    assert (unused.code, unused.severity.value) == ("unused-route", "warning")
    assert "no rule sends callers to routes.start 'orphan_desk' of flow 'main_menu'" in unused.message

    elsewhere = _with(flows, "payment", lambda t: t.replace("start: verify\n", "start: verify\nroutes: {start: {x: paid}}\n"))
    [unused] = load_rules_text(text, "routing.yaml", elsewhere)[1]
    assert unused.code == "unused-route" and "flow 'payment' has routes" in unused.message

    no_cancel = _with(flows, "main_menu", lambda t: t.replace("        cancel:\n", "        cancel_policy:\n")
                      .replace("      cancel: cancel\n", "      cancel_policy: cancel\n"))
    [unknown] = load_rules_text(text, "routing.yaml", no_cancel)[1]
    assert unknown.code == "unknown-intent" and "'cancel' is not a choice of turn 'menu'" in unknown.message
    assert text.splitlines()[unknown.line - 1].strip() == "on_intent: cancel"


def _orphan_line() -> int:
    return RULES.read_text().splitlines().index("    to: orphan_desk") + 1


def _edit(path: Path, content: bytes) -> None:
    """Save over the rule file, dated in the future so the router sees a change."""
    path.write_bytes(content)
    os.utime(path, (time.time() + 5, time.time() + 5))


BROKEN_EDITS = {  # name: (edit of the file's bytes, code, line, column)
    "unknown destination": (lambda b: b.replace(b"to: orphan_desk", b"to: nowhere"), "unknown-destination", _orphan_line(), 9),
    "not UTF-8": (lambda b: b.replace(b"to: orphan_desk", b"to: orphan_d\xe9sk"), "encoding", _orphan_line(), 17),
    "bad YAML": (lambda b: b.replace(b"to: orphan_desk", b"to: [orphan_desk"), "yaml", _orphan_line() + 1, 11),
    "over the size cap": (lambda b: b + b"#" * yamlsource.FILE_LIMIT, "too-large", 1, 1),
}


@pytest.mark.parametrize("name", BROKEN_EDITS)
async def test_a_broken_edit_is_refused_and_the_previous_rules_keep_deciding(name, tmp_path, systems, caplog):
    edit, code, line, column = BROKEN_EDITS[name]
    path = tmp_path / "routing.yaml"
    path.write_text(RULES.read_text())
    catalog = Catalog(ROOT / "flows", ROOT / "prompts", routing=path)
    router = Router(path, lambda call: gather(call, systems, systems.history))
    call = {"ani": persona("orphan").phone}
    first, decision = await router.route(call, catalog)
    assert decision["route_start"] == "orphan_desk"
    _edit(path, edit(RULES.read_bytes()))
    with caplog.at_level(logging.ERROR, logger="ivr.flow.catalog"):  # the release is refused as a whole
        release, decision = await router.route(call, catalog)
    assert release is first and decision["route_start"] == "orphan_desk"
    assert f"still serving {first.id}" in caplog.text
    assert f"{path}:{line}:{column}: error [{code}]" in caplog.text
    caplog.clear()
    release, decision = await router.route(call, catalog)
    assert release is first and decision["route_start"] == "orphan_desk"
    assert "refused" not in caplog.text, "a broken edit is read once, not by every call until it is fixed"


def _facts(call: dict[str, Any]) -> Any:
    async def orphan() -> dict[str, Any]:
        return {"caller": {"orphan": True}, "history": {}, "call": call}
    return orphan()


async def test_a_routing_edit_is_read_on_a_worker_thread_while_calls_go_on(tmp_path, monkeypatch):
    path = tmp_path / "routing.yaml"
    path.write_text(RULES.read_text())
    catalog = Catalog(ROOT / "flows", ROOT / "prompts", routing=path)
    router = Router(path, _facts)
    gate = ReloadGate(monkeypatch, wait=2)  # let go by a coroutine on the loop
    events = gate.events
    _edit(path, RULES.read_bytes().replace(b"to: orphan_desk", b"to: locked"))

    deciding = asyncio.create_task(router.route({}, catalog))
    await until(lambda: "reload started" in events, 5)
    events.append("call served")
    gate.let_go.set()
    release, decision = await deciding
    assert decision["route_start"] == "locked"
    assert release is catalog.current, "the call runs on the release its rules came from"
    assert events == ["reload started", "call served", "reload let go by the loop: True"]


async def test_a_slow_reload_leaves_calls_to_the_previous_rules_until_it_is_done(tmp_path, monkeypatch):
    path = tmp_path / "routing.yaml"
    path.write_text(RULES.read_text())
    catalog = Catalog(ROOT / "flows", ROOT / "prompts", routing=path)
    router = Router(path, _facts, budget=0.05)
    gate = ReloadGate(monkeypatch)
    _edit(path, RULES.read_bytes().replace(b"to: orphan_desk", b"to: locked"))

    assert (await router.route({}, catalog))[1]["route_start"] == "orphan_desk"
    assert (await router.route({}, catalog))[1]["route_start"] == "orphan_desk"
    gate.let_go.set()

    async def locked() -> bool:
        return (await router.route({}, catalog))[1]["route_start"] == "locked"
    await until(locked, 5, "the new rules never took over")
    assert gate.builds == 1, "the same reading went on, not a second one"


async def test_slow_facts_start_the_call_unrouted(systems, release):
    import asyncio

    async def slow(call):
        await asyncio.sleep(2)
        return {}
    router = Router(RULES, slow, budget=0.1)
    assert await router.decide({"ani": "+15550101"}, release.routing) == {}


async def test_the_caller_number_tells_the_language_the_call_starts_in(systems, release):
    """The record's language joins the call data at call start, whatever the rules decide."""
    from ivr.engine.language import start_language

    router = Router(RULES, lambda call: gather(call, systems, systems.history))
    chinese = {"ani": persona("chinese").phone, "dnis": "100", "language": "en"}
    chinese.update(await router.decide(chinese, release.routing))
    assert chinese["caller_language"] == "zh" and chinese["route_start"] is None
    assert start_language(chinese, {"100": "en"}) == "zh"
    stranger = {"ani": "+15557770002", "dnis": "18005550188", "language": "en"}
    stranger.update(await router.decide(stranger, release.routing))
    assert stranger["caller_language"] is None
    assert start_language(stranger, {"18005550188": "zh"}) == "zh"


async def test_destinations_are_checked_against_the_flows_of_the_same_release(tmp_path):
    """A flow edit that drops a destination the rules use is refused with the rules' line (SIGHUP);
    the flows and rules edited together are taken together, and decide together."""
    flows = copy_flows(tmp_path)
    catalog = Catalog(flows, ROOT / "prompts", routing=flows / "routing.yaml")
    first = catalog.current
    menu = flows / "main_menu.yaml"
    assert "    orphan_desk: orphan_desk\n" in menu.read_text()
    menu.write_text(menu.read_text().replace("    orphan_desk: orphan_desk\n", "    orphans: orphan_desk\n"))
    diagnostics = await catalog.request_reload()
    assert catalog.current is first
    assert [(Path(d.file).name, d.line, d.code) for d in diagnostics if d.severity.value == "error"] == \
        [("routing.yaml", _orphan_line(), "unknown-destination")]
    _edit(flows / "routing.yaml", RULES.read_bytes().replace(b"to: orphan_desk", b"to: orphans"))
    assert not [d for d in await catalog.request_reload() if d.severity.value == "error"]
    assert catalog.current is not first
    release, decision = await Router(flows / "routing.yaml", _facts).route({}, catalog)
    assert release is catalog.current and decision["route_start"] == "orphans"
    assert first.routing is not None and decide_with(first.routing, await _facts({}))["route_start"] == "orphan_desk"
