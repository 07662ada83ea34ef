"""Caller history in Redis and `ivr report`: calls played through the real flows, summarised, counted."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from ivr import engine, report
from ivr.backend.sample import sample_result
from ivr.callrecord import CallRecord, summarise
from ivr.cli import main
from ivr.controller import notices as note
from ivr.controller.recorder import HistoryRecorder
from ivr.designer.conversation import Conversation
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.state import MAX_PATH
from ivr.flow.catalog import load_flow_set
from ivr.history import AGENT_TTL, HISTORY_TTL, RECORD_TTL, as_facts
from ivr.sealing import Sealer
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def release():
    built, _ = load_flow_set(ROOT / "flows", ROOT / "prompts")
    return built


def play(release, moves: list, call: dict | None = None, outcomes: dict | None = None, observer=None):
    """A call through the shipped flows with sample answers; `moves` are keys, or "hangup".
    `observer` is told of the call as a controller's session would tell it (a notice per caller move)."""
    def answer(action):
        outcome, data = sample_result(action.name)
        return (outcomes or {}).get(action.name, outcome), data
    conversation = Conversation(release, "main_menu", responder=answer, call=call or {"ani": "+15550101"})
    session = SimpleNamespace(channel_id=f"c{time.monotonic_ns()}", state=None)

    def told(notice) -> None:
        if observer is not None:
            observer(session, notice)

    def stepped(move) -> None:  # the engine steps of one move, backend answers included, as one notice
        before = session.state
        if move is None:
            conversation.begin(call_id=session.channel_id)
        else:
            conversation.send(move)
        session.state = conversation.state
        told(note.StepTaken(engine.Step(session.state, []), note.turns_added(before, session.state)))

    told(note.CallStarted(conversation.call))
    stepped(None)
    for move in moves:
        stepped(ev.Hangup() if move == "hangup" else ev.Dtmf(digits=move))
    assert conversation.finished
    result = session.state.result
    if session.state.status == "transferred":
        told(note.Transferred(act.Transfer(queue=result["queue"], reason=result["reason"],
                                           priority=result["priority"])))
    else:
        told(note.HungUp(result["outcome"]) if result["outcome"] != "caller_hangup" else note.CallerLeft("hangup"))
    return conversation.state


class Written:
    """A caller history that keeps what the recorder writes."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self.outcomes: list[dict[str, str]] = []
        self.sealer = Sealer.generate()

    def ani_key(self, ani: str | None) -> str:
        return "ani:key" if ani else ""

    async def record(self, call: CallRecord, callers: list[str], outcome: dict[str, str] | None = None) -> None:
        self.records.append(call)
        if outcome is not None:
            self.outcomes.append(outcome)


async def recorded(release, moves: list, **options) -> tuple[CallRecord, object]:
    """The record the controller's recorder writes of a call, built as it went, and the call's last state."""
    written = Written()
    recorder = HistoryRecorder(written, clock=lambda: 10.0)
    state = play(release, moves, observer=recorder, **options)
    await recorder.drain()
    [record] = written.records
    return record, state


def test_journeys_of_a_call_are_read_from_its_path(release):
    contained = summarise(play(release, ["1", "19800531", "9", "2"]), 0, 10)
    assert contained.intents == ["policy"] and contained.contained
    assert [(j.journey, j.outcome) for j in contained.journeys] == [("policy_query", "contained")]
    transferred = summarise(play(release, ["2", "19800531", "0"]), 0, 10)
    assert transferred.status == "transferred" and transferred.journeys[0].outcome == "transferred"
    assert (transferred.queue, transferred.reason) == ("payments", "asked_for_agent")
    dropped = summarise(play(release, ["4", "19800531", "hangup"]), 0, 10)
    assert dropped.journeys[0].outcome == "abandoned" and dropped.last_node == "cancellation.reason"
    two = summarise(play(release, ["1", "19800531", "9", "1", "3", "hangup"]), 0, 10)  # verified once
    assert two.intents == ["policy", "phone"] and two.last_node == "phone_update.id_digits"
    assert [j.outcome for j in two.journeys] == ["contained", "abandoned"]


CALLS = [  # (moves, backend outcomes) of every call played in this file
    (["1", "19800531", "9", "2"], None), (["2", "19800531", "0"], None), (["4", "19800531", "hangup"], None),
    (["1", "19800531", "9", "1", "3", "hangup"], None), (["4", "19800531", "5"], None),
    (["1", "19800531", "0"], None), (["2", "19800531", "hangup"], None), (["4", "19800531", "2", "1"], None),
    (["2", "19800531", "1", "2"], None), (["2", "19800531", "3", "20261215", "1", "2"], None),
    (["2", "19800531", "1", "0"], {"payment.retry": "declined"}), (["2", "19800531", "2"], {"payment.failure": "declined"}),
    (["3", "19800531", "hangup"], None),
]


@pytest.mark.parametrize("moves, outcomes", CALLS)
async def test_the_record_written_as_the_call_goes_is_the_one_its_path_gives(release, moves, outcomes):
    record, state = await recorded(release, moves, outcomes=outcomes)
    assert record.to_json() == summarise(state, 10.0, 10.0, "ani:key").to_json()


async def test_a_call_longer_than_its_path_keeps_its_first_journey(release):
    """250 turns of the menu after a policy query: the engine's path has long lost the journey, the record has not."""
    moves = ["1", "19800531", "9", "1"] + ["8"] * 250 + ["0"]  # policy, anything else: yes; english x250; a person
    record, state = await recorded(release, moves)
    assert len(state.path) == MAX_PATH and all(t.flow == "main_menu" for t in state.path)
    assert record.intents == ["policy"] and [(j.journey, j.outcome) for j in record.journeys] == [
        ("policy_query", "contained")]
    assert (record.status, record.queue, record.reason) == ("transferred", "customer_service", "asked_for_agent")
    assert record.last_node == "main_menu.menu" and record.path[-1] == "main_menu.menu"
    assert summarise(state, 0, 1).journeys == [], "the path alone no longer knows"


def test_the_routing_decision_applied_is_in_the_record(release):
    call = {"ani": "+15550106", "route_start": "orphan_desk",
            "routing": {"start": {"rule": "orphan_policy_desk", "to": "orphan_desk", "reason": "agent left"}}}
    record = summarise(play(release, [], call=call), 0, 1)
    assert record.route == {"rule": "orphan_policy_desk", "to": "orphan_desk", "reason": "agent left"}
    assert (record.queue, record.reason) == ("orphan_desk", "orphan_policy")


async def test_history_keeps_calls_per_caller_with_expiry(systems, redis_client, prefix, release):
    history = systems.history
    now = time.time()
    for index, moves in enumerate([["1", "19800531", "9", "2"], ["4", "19800531", "5"]]):
        record = summarise(play(release, moves), now - 3600 * (2 - index), now - 3600 * (2 - index) + 60)
        await history.record(record, ["C-1", "ani:abc"])
    calls = await history.past_calls("C-1")
    assert [c.intents for c in calls] == [["cancel"], ["policy"]]  # newest first
    assert calls[0].queue == "save_specialists" and calls[0].cancel_reason == "other"
    facts = as_facts(calls, None, 0, now)
    assert facts["intents_7d"] == ["cancel", "policy"] and facts["cancel_intents_30d"] == 1
    await history.note_agent("C-1", "agent-3")
    assert await history.last_agent("C-1") == "agent-3"
    ttl = {key: await redis_client.ttl(prefix + key) for key in ("hist:C-1", "caller:C-1")}
    assert HISTORY_TTL - 60 < ttl["hist:C-1"] <= HISTORY_TTL and AGENT_TTL - 60 < ttl["caller:C-1"] <= AGENT_TTL
    record_ttl = await redis_client.ttl(f"{prefix}rec:{calls[0].call_id}")
    assert RECORD_TTL - 60 < record_ttl <= RECORD_TTL
    await history.add_failed_verification("40012345")
    assert await redis_client.ttl(f"{prefix}verify:fail:40012345") == -2  # the policy number is not a key in clear
    keyed = f"{prefix}verify:fail:{history.sealer.digest('policy', '40012345')}"
    assert 0 < await redis_client.ttl(keyed) <= 86400


async def test_report_counts_containment_reasons_and_drop_off(systems, release):
    history = systems.history
    now = time.time()
    calls = [
        ["1", "19800531", "9", "2"],          # policy, contained
        ["1", "19800531", "9", "2"],          # policy, contained
        ["1", "19800531", "0"],               # policy, asked for a person
        ["2", "19800531", "hangup"],          # payment, hung up at the offer
        ["4", "19800531", "2", "1"],          # cancel, downgrade accepted: to the save team
    ]
    for index, moves in enumerate(calls):
        await history.record(summarise(play(release, moves), now - 100 + index, now - 50 + index), [])
    old = summarise(play(release, ["1", "19800531", "9", "2"]), now - 5 * 86400, now - 5 * 86400)
    await history.record(old, [])  # outside the window
    built = report.build(await history.records(now - 3600, now), now - 3600, now)
    assert built["calls"] == 5 and built["outcomes"] == {"contained": 2, "transferred": 2, "abandoned": 1}
    assert built["journeys"]["policy_query"] == {"entered": 3, "contained": 2, "transferred": 1, "abandoned": 0,
                                                 "other": 0, "containment": 0.667}
    assert built["journeys"]["payment"]["abandoned"] == 1 and built["journeys"]["cancellation"]["transferred"] == 1
    assert {(t["queue"], t["reason"]) for t in built["transfer_reasons"]} == {
        ("policy_service", "asked_for_agent"), ("save_specialists", "downgrade_accepted")}
    assert built["drop_off"] == [{"node": "payment.offer", "calls": 1}]
    text = report.render(built)
    assert "policy_query" in text and "67%" in text and "payment.offer" in text


def test_report_shows_how_many_failed_premiums_were_recovered(release):
    calls = [
        (["2", "19800531", "1", "2"], None),                                # retried now: paid
        (["2", "19800531", "3", "20261215", "1", "2"], None),               # promise to pay by a date
        (["2", "19800531", "1", "0"], {"payment.retry": "declined"}),       # declined, then a person
        (["2", "19800531", "hangup"], None),                                # hung up at the offer
        (["1", "19800531", "9", "2"], None),                                # policy only: not counted
        (["2", "19800531", "2"], {"payment.failure": "declined"}),         # no failed premium: not counted
    ]
    records = [summarise(play(release, moves, outcomes=outcomes), 10, 20) for moves, outcomes in calls]
    assert [r.payment for r in records] == ["paid", "promised", "open", "open", None, None]
    built = report.build(records, 0, 30)
    assert built["payment_recovery"] == {"callers": 4, "paid": 1, "promised": 1, "open": 2, "recovered": 0.5,
                                         "target": 0.9}
    assert "failed premiums: 4 callers, paid now 1, promised 1, not recovered 2: recovered 50% (target over 90%)" \
        in report.render(built)


def test_ivr_report_command_reads_redis(redis_url, capsys, release):
    import asyncio

    from ivr.history import CallerHistory
    from ivr.sealing import Sealer

    async def write():
        history = CallerHistory.from_url(redis_url, Sealer.generate())
        now = time.time()
        await history.record(summarise(play(release, ["3", "19800531", "hangup"]), now - 10, now - 5), [])
        await history.close()
    asyncio.run(write())
    assert main(["report", "--redis", redis_url, "--since", "1m", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["calls"] >= 1 and "phone_update" in built["journeys"]
    assert main(["report", "--redis", redis_url, "--since", "yesterday-ish"]) == 2


def test_report_window_parsing():
    assert report.parse_when("24h", 100_000) == 100_000 - 86400
    assert report.parse_when("now", 5) == 5
    with pytest.raises(ValueError):
        report.parse_when("soon", 0)
