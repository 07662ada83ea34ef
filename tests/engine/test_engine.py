"""The engine, construct by construct, as a caller would experience it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr import engine
from ivr.backend.catalog import ACTIONS
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.state import CallState
from ivr.flow import model
from ivr.flow.catalog import FlowSet, load_flow_set

FIXTURE = Path(__file__).parent / "fixture"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def release() -> FlowSet:
    flow_set, _ = load_flow_set(FIXTURE / "flows", FIXTURE / "prompts")
    return flow_set


class Call:
    """A test caller: keeps the state, remembers the last actions."""

    def __init__(self, release: FlowSet, language: str | None = None, **variables):
        self.release = release
        result = engine.start(release, "tour", "call-1", call={"ani": "+15550001"}, variables=variables,
                              language=language)
        self.state, self.actions = result.state, result.actions

    def send(self, event: ev.Event) -> list[act.Action]:
        result = engine.step(self.release, self.state, event)
        self.state, self.actions = result.state, result.actions
        return self.actions

    def say(self, text: str, confidence: float = 0.9, alternatives=()) -> list[act.Action]:
        return self.send(ev.Speech(text=text, confidence=confidence,
                                   alternatives=[ev.Hypothesis(text=t, confidence=c) for t, c in alternatives]))

    def keys(self, digits: str) -> list[act.Action]:
        return self.send(ev.Dtmf(digits=digits))

    def reply(self, outcome: str, **data) -> list[act.Action]:
        pending = self.state.pending
        assert pending is not None and pending.kind == "backend"
        return self.send(ev.BackendResult(name=pending.action, outcome=outcome, data=data))

    def prompts(self) -> list[str]:
        return [p.key for a in self.actions if isinstance(a, act.Play) for p in a.prompts]

    def of(self, kind: type) -> list:
        return [a for a in self.actions if isinstance(a, kind)]


def test_start_plays_greeting_with_call_data_then_listens(release):
    call = Call(release)
    assert call.prompts() == ["t.hello", "t.menu"]
    hello = call.of(act.Play)[0].prompts[0]
    assert hello.values == {"caller.first_name": "Ann"}
    assert release.prompts.render("en", hello.key, hello.values) == "Hello Ann."
    listen = call.of(act.Listen)[0]
    assert listen.mode == "choices"
    assert listen.grammar["pay my bill"] == "pay" and listen.grammar["agent"] == "global:agent"
    assert listen.keys == {"1": "pay", "2": "claim", "9": "chinese", "7": "helper", "0": "global:agent"}
    assert call.state.vars["visits"] == 1
    assert call.state.node == "menu" and call.state.pending.kind == "input"


def test_speech_and_dtmf_pick_the_same_choice(release):
    by_voice, by_key = Call(release), Call(release)
    by_voice.say("I want to pay my bill please", confidence=0.95)
    by_key.keys("1")
    for call in (by_voice, by_key):
        assert call.state.node == "number"
        assert call.state.vars["choice"] == "pay"
        assert call.prompts() == ["t.number"]


def test_noinput_escalates_then_escapes_to_a_person_with_reason(release):
    call = Call(release)
    call.send(ev.NoInput())
    assert call.prompts() == ["t.silent_1"] and call.of(act.Listen)
    call.send(ev.NoInput())
    assert call.prompts() == ["t.silent_2"]
    call.send(ev.NoInput())
    transfer = call.of(act.Transfer)[0]
    assert (transfer.queue, transfer.reason, transfer.priority) == ("service", "ivr_trouble", 4)
    assert transfer.detail.startswith("noinput") and "menu" in transfer.detail
    assert call.state.status == "transferred"
    assert call.prompts() == ["common.transfer_notice"], "the escape says it is putting the caller through"
    assert call.of(act.Play)[0].barge_in is False and call.actions[-1] == transfer


def test_a_transfer_without_a_prompt_announces_itself_in_the_call_language(release):
    by_agent, by_branch, in_chinese = Call(release), Call(release), Call(release, language="zh")
    by_agent.keys("0")
    by_branch.keys("2")
    in_chinese.keys("0")
    for call in (by_agent, by_branch, in_chinese):
        assert call.prompts() == ["common.transfer_notice"] and isinstance(call.actions[-1], act.Transfer)
    assert in_chinese.of(act.Play)[0].language == "zh"
    assert release.prompts.render("zh", "common.transfer_notice", {}) == "正在为您转接。"


def test_turns_wait_briefly_unless_the_flow_says_otherwise(release):
    listen = Call(release).of(act.Listen)[0]
    assert (listen.timeouts.noinput, listen.timeouts.interdigit) == (2.0, 2.5)
    assert (listen.timeouts.end_silence, listen.timeouts.max_speech) == (0.8, 15.0)


def test_noinput_and_nomatch_are_counted_separately(release):
    call = Call(release)
    call.send(ev.NoInput())
    call.say("banana", confidence=0.9)
    assert call.prompts() == ["t.menu_again"]
    call.send(ev.NoMatch())
    assert call.prompts() == ["t.menu_help"]
    call.send(ev.NoInput())
    assert call.prompts() == ["t.silent_2"], "second noinput, not a third error overall"
    call.send(ev.NoMatch())
    assert call.of(act.Transfer)[0].detail.startswith("nomatch")


def test_low_confidence_is_confirmed_and_yes_accepts(release):
    call = Call(release)
    call.say("pay", confidence=0.45)
    assert call.prompts() == ["common.did_you_say"]
    assert call.of(act.Play)[0].prompts[0].values == {"heard": "pay"}
    assert call.of(act.Listen)[0].mode == "confirm"
    call.say("yes")
    assert call.state.node == "number" and call.state.vars["choice"] == "pay"


def test_confirmation_no_tries_the_next_alternative(release):
    call = Call(release)
    call.say("pay", confidence=0.5, alternatives=[("pay my bill", 0.45), ("claim", 0.4)])
    call.say("no")
    assert call.prompts() == ["common.did_you_say"]
    assert call.of(act.Play)[0].prompts[0].values == {"heard": "a claim on your policy"}, \
        "skips an alternative meaning the same choice, and reads the next one's label"
    call.keys("1")  # 1 = yes
    assert call.state.status == "transferred" and call.state.result["queue"] == "claims"


def test_a_labelled_choice_is_confirmed_in_its_label_words_in_the_call_language(release):
    for language, said, heard, expected in [
            ("en", "my claim", "a claim on your policy", "Did you say a claim on your policy?"),
            ("zh", "理赔", "保单理赔", "您是说保单理赔吗？")]:
        call = Call(release, language=language)
        call.say(said, confidence=0.45)
        [did_you_say] = call.of(act.Play)[0].prompts
        assert (did_you_say.key, did_you_say.values) == ("common.did_you_say", {"heard": heard})
        assert release.prompts.render(language, did_you_say.key, did_you_say.values) == expected
        assert not did_you_say.private, "the label is the designer's words, not the caller's"
        assert call.state.pending.heard == said, "what was heard is still what the turn remembers"
        call.say("yes" if language == "en" else "是")
        assert call.state.status == "transferred" and call.state.result["queue"] == "claims"


def test_a_label_speaks_call_data_and_a_global_choice_may_have_one(release):
    call = Call(release)
    call.say("a person", confidence=0.45)
    [did_you_say] = call.of(act.Play)[0].prompts
    assert release.prompts.render("en", did_you_say.key, did_you_say.values) == "Did you say a person, Ann?"
    call.keys("1")
    assert call.of(act.Transfer)[0].reason == "asked_for_agent"


def test_an_unlabelled_choice_is_confirmed_in_the_words_heard(release):
    call = Call(release)
    call.say("pay my bill", confidence=0.45)
    [did_you_say] = call.of(act.Play)[0].prompts
    assert did_you_say.values == {"heard": "pay my bill"} and did_you_say.private


def test_confirmation_no_without_alternatives_reprompts(release):
    call = Call(release)
    call.say("claim", confidence=0.5)
    call.say("no")
    assert call.prompts() == ["t.menu_again"] and call.state.nomatch == 1


def test_speech_below_reject_threshold_is_a_nomatch(release):
    call = Call(release)
    call.say("pay", confidence=0.1)
    assert call.prompts() == ["t.menu_again"] and call.state.node == "menu"


def test_global_choice_reaches_a_person_from_any_turn(release):
    call = Call(release)
    call.keys("1")
    call.say("agent", confidence=0.9)
    transfer = call.of(act.Transfer)[0]
    assert (transfer.queue, transfer.reason) == ("service", "asked_for_agent")


def test_global_key_is_a_digit_inside_a_number(release):
    call = Call(release)
    call.keys("1")
    call.keys("0")
    assert call.state.status == "running" and call.state.buffer == "0"


def test_digits_by_keys_with_readback(release):
    call = Call(release)
    call.keys("1")
    for key in "4001234":
        assert call.keys(key) == []
    call.keys("5")  # eighth digit: max reached
    assert call.prompts() == ["common.readback_digits"]
    assert release.prompts.render("en", "common.readback_digits", call.of(act.Play)[0].prompts[0].values) == \
        "I have 4 0 0 1, 2 3 4 5. Right?"
    call.say("yes")
    assert call.state.vars["policy_number"] == "40012345"
    backend = call.of(act.CallBackend)[0]
    assert backend.name == "policy.summary" and backend.args == {"policy": "40012345"} and backend.timeout == 3


def test_a_doubtful_yes_to_a_read_back_does_not_accept_the_number(release):
    call = Call(release)
    call.keys("1")
    call.keys("40012345")
    call.say("yes", confidence=0.2)  # under the flow's reject_below (0.25)
    assert call.state.vars["policy_number"] is None
    assert call.state.node == "number" and call.state.nomatch == 1


def test_digits_too_short_after_terminator_is_a_nomatch(release):
    call = Call(release)
    call.keys("1")
    call.keys("123#")
    assert call.prompts() == ["t.menu_again"] and call.state.buffer == ""


def test_digits_readback_no_clears_and_asks_again(release):
    call = Call(release)
    call.keys("1")
    call.keys("40012345")
    call.keys("2")  # no
    assert call.state.buffer == "" and call.state.node == "number" and call.state.nomatch == 1


def test_digits_by_voice_mixed_with_keys(release):
    call = Call(release)
    call.keys("1")
    call.say("four double oh one", confidence=0.9)
    assert call.state.buffer == "4001" and call.actions == []
    call.keys("2345")
    assert call.prompts() == ["common.readback_digits"]
    assert call.state.pending.heard == "40012345"


def test_interdigit_silence_ends_a_number(release):
    call = Call(release)
    call.keys("1")
    call.keys("4001234")
    call.send(ev.NoInput())
    assert call.prompts() == ["t.menu_again"], "7 digits is too short: a nomatch, not a noinput"


def test_backend_outcomes_route_and_unhandled_ones_escape(release):
    call = Call(release)
    call.keys("1")
    call.keys("40012345")
    call.keys("1")
    call.reply("ok", amount=120.5, due="2026-12-01")
    assert call.prompts() == ["t.due", "t.sure"]
    due = call.of(act.Play)[0].prompts[0]
    assert release.prompts.render("en", due.key, due.values) == "You owe 120.50 dollars by December 1, 2026."
    assert call.of(act.Play)[1].barge_in is False
    call.say("yes")
    assert call.of(act.CallBackend)[0].name == "payment.retry"
    call.reply("timeout")
    transfer = call.of(act.Transfer)[0]
    assert transfer.reason == "ivr_trouble" and "backend_timeout" in transfer.detail


def test_a_restart_repeats_a_pending_read_but_not_a_pending_write(release):
    """Whether an action writes comes from the catalog, the only thing a resumed call can ask."""
    reading = Call(release)
    reading.keys("1")
    reading.keys("40012345")
    reading.keys("1")  # yes to the read-back
    assert reading.state.pending.action == "policy.summary" and not ACTIONS["policy.summary"].writes
    resumed = engine.resume(release, reading.state)
    assert [a.name for a in resumed.actions if isinstance(a, act.CallBackend)] == ["policy.summary"]
    writing = Call(release)
    writing.keys("1")
    writing.keys("40012345")
    writing.keys("1")
    writing.reply("ok", amount=120.5, due="2026-12-01")
    writing.say("yes")
    assert writing.state.pending.action == "payment.retry" and ACTIONS["payment.retry"].writes
    resumed = engine.resume(release, writing.state)
    assert not [a for a in resumed.actions if isinstance(a, act.CallBackend)]
    assert resumed.state.status == "transferred" and "may or may not have completed" in resumed.state.result["detail"]


def test_late_backend_reply_is_ignored(release):
    call = Call(release)
    call.keys("1")
    call.keys("40012345")
    call.keys("1")
    before = call.state
    assert call.send(ev.BackendResult(name="payment.retry", outcome="ok")) == []
    assert call.state.pending == before.pending


def test_branch_conditions_choose_queue_and_priority(release):
    first_visit = Call(release)
    first_visit.keys("2")
    assert first_visit.state.result == {"queue": "claims", "reason": "claim_progress", "priority": 6, "detail": ""}
    not_first_year = Call(release, caller={"first_name": "Bo", "first_year": False})
    not_first_year.keys("2")
    assert not_first_year.state.result["priority"] == 3


def test_sub_flow_call_and_return(release):
    call = Call(release)
    call.keys("7")
    assert call.prompts() == ["t.helper", "t.sure"]
    assert call.state.flow == "helper" and [f.node for f in call.state.stack] == ["sub"]
    call.say("yes")
    assert call.state.flow == "tour" and call.state.node == "menu" and call.state.stack == []
    call.keys("7")
    call.say("no")
    assert call.of(act.Hangup)[0].outcome == "helper_bailed" and call.state.status == "ended"


def test_language_switch_changes_prompts_and_grammar(release):
    call = Call(release)
    call.keys("9")
    assert call.state.language == "zh"
    listen = call.of(act.Listen)[0]
    assert listen.language == "zh" and listen.grammar["缴费"] == "pay" and "pay" not in listen.grammar
    assert release.prompts.render("zh", "t.menu", {}) == "缴费、理赔还是人工？"
    call.say("缴费", confidence=0.9)
    assert call.state.node == "number"


def test_chinese_caller_keys_and_voice_digits(release):
    call = Call(release, language="zh")
    call.keys("1")
    call.say("四零零一二三四五", confidence=0.9)
    assert call.state.pending.kind == "readback" and call.state.pending.heard == "40012345"
    call.say("对")
    assert call.state.vars["policy_number"] == "40012345"


def test_hangup_mid_backend_write_is_reported_as_abandoned(release):
    call = Call(release)
    call.keys("1")
    call.keys("40012345")
    call.keys("1")
    call.reply("ok", amount=1, due="2026-12-01")
    call.say("yes")
    assert call.state.pending.action == "payment.retry"
    assert call.send(ev.Hangup()) == []
    assert call.state.status == "ended"
    assert call.state.result == {"outcome": "caller_hangup", "node": "pay", "flow": "tour", "abandoned_action": "payment.retry"}
    assert call.send(ev.Dtmf(digits="1")) == [], "an ended call ignores further events"


def test_step_leaves_the_given_state_untouched(release):
    call = Call(release)
    before = call.state.model_dump()
    frozen = call.state
    engine.step(release, frozen, ev.Dtmf(digits="1"))
    assert frozen.model_dump() == before


def test_state_round_trips_through_json_mid_call(release):
    call = Call(release)
    call.keys("1")
    call.say("four double oh", confidence=0.9)
    restored = CallState.model_validate_json(call.state.model_dump_json())
    assert restored == call.state
    a = engine.step(release, restored, ev.Dtmf(digits="12345"))
    b = engine.step(release, call.state, ev.Dtmf(digits="12345"))
    assert a.actions == b.actions and a.state == b.state


def test_call_keeps_the_release_it_started_on(release, tmp_path):
    call = Call(release)
    other = FlowSet(id="different", flows=release.flows, prompts=release.prompts)
    with pytest.raises(ValueError, match="runs on release"):
        engine.step(other, call.state, ev.Dtmf(digits="1"))
    assert call.state.release == release.id and call.state.versions == {"tour": "3"}


def test_catalog_serves_old_release_to_calls_in_progress(tmp_path):
    import shutil

    from ivr.flow.catalog import Catalog

    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    catalog = Catalog(tmp_path / "flows", tmp_path / "prompts")
    old = catalog.current
    call = engine.start(old, "tour", "c1", call={})
    source = (tmp_path / "flows" / "tour.yaml").read_text()
    (tmp_path / "flows" / "tour.yaml").write_text(source.replace("version: 3", "version: 4"))
    assert not [d for d in catalog.reload() if d.severity.value == "error"]
    assert catalog.current.id != old.id and catalog.current.flows["tour"].version == 4
    pinned = catalog.get(call.state.release)
    assert pinned is old
    assert engine.step(pinned, call.state, ev.Dtmf(digits="1")).state.node == "number"


def test_flow_loop_guard_escapes_instead_of_spinning(tmp_path):
    flows, prompts = tmp_path / "flows", tmp_path / "prompts"
    flows.mkdir()
    prompts.mkdir()
    (prompts / "en.yaml").write_text("t:\n  hi: hi\n")
    (flows / "spin.yaml").write_text(
        "flow: spin\nstart: a\nvariables: {n: 0}\n"
        "defaults: {escape: {transfer: service, reason: stuck}}\n"
        "nodes:\n"
        "  a: {set: {n: =n + 1}, next: b}\n"
        "  b:\n    branch: [{if: n < 0, then: {hangup: never}}]\n    else: a\n"
    )
    release, _ = load_flow_set(flows, prompts)
    result = engine.start(release, "spin", "c", call={})
    assert result.state.status == "transferred"
    assert "flow_loop" in result.state.result["detail"]


CARD_FLOW = """\
flow: card
start: number
variables: {card: null, expiry: null}
defaults: {escape: {transfer: service, reason: trouble}}
nodes:
  number:
    ask: {prompt: t.card, digits: {min: 12, max: 19, terminator: "#", readback: false}, speech: false,
          save_as: card}
    next: expiry
  expiry:
    ask: {prompt: t.expiry, digits: {min: 4, max: 4, readback: false}, speech: false, save_as: expiry}
    next: pay
  pay:
    action: {name: payment.switch_method, args: {card: =card, expiry: =expiry}}
    next: {ok: bye, declined: number}
  bye:
    hangup: paid
"""


@pytest.fixture
def card_release(tmp_path) -> FlowSet:
    (tmp_path / "flows").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "flows" / "card.yaml").write_text(CARD_FLOW)
    (tmp_path / "prompts" / "en.yaml").write_text("t:\n  card: Key your card number.\n  expiry: And the expiry.\n")
    flow_set, diagnostics = load_flow_set(tmp_path / "flows", tmp_path / "prompts")
    assert not [d for d in diagnostics if d.severity.value == "error"], diagnostics
    return flow_set


def test_card_numbers_are_withheld_from_the_state_kept_at_rest(card_release):
    card = "4111111111111111"
    state = engine.start(card_release, "card", "c1", call={}).state
    state = engine.step(card_release, state, ev.Dtmf(digits=card[:6])).state
    assert state.buffer == card[:6] and card[:6] not in state.at_rest().model_dump_json()   # half keyed
    state = engine.step(card_release, state, ev.Dtmf(digits=card[6:] + "#")).state
    state = engine.step(card_release, state, ev.Dtmf(digits="1228")).state
    assert state.vars["card"] == card and state.pending.kind == "backend"      # in memory, for the gateway
    rest = state.at_rest()
    assert card not in rest.model_dump_json() and "1228" not in rest.model_dump_json()
    assert rest.vars["card"] == rest.vars["expiry"] == "[withheld]" and rest.node == state.node
    result = engine.step(card_release, state, ev.BackendResult(name="payment.switch_method", outcome="ok", data={}))
    assert result.state.vars["card"] is None and result.state.at_rest() is result.state   # nothing left to hide


def _keyed_card(release: FlowSet) -> engine.Step:
    state = engine.start(release, "card", "c1", call={}).state
    state = engine.step(release, state, ev.Dtmf(digits="4111111111111111#")).state
    return engine.step(release, state, ev.Dtmf(digits="1228"))


@pytest.mark.parametrize("outcome", ["ok", "declined", "error"])
def test_the_engine_wipes_a_keyed_card_once_the_action_that_uses_it_returns(card_release, outcome):
    """No `set` clears the card in CARD_FLOW: the gateway gets it, then it is gone, whatever it answered."""
    keyed = _keyed_card(card_release)
    [sent] = [a for a in keyed.actions if isinstance(a, act.CallBackend)]
    assert sent.args == {"card": "4111111111111111", "expiry": "1228"}
    after = engine.step(card_release, keyed.state, ev.BackendResult(name=sent.name, outcome=outcome, data={}))
    assert after.state.vars["card"] is None and after.state.vars["expiry"] is None
    assert after.state.secret_vars == [] and after.state.at_rest() is after.state
    assert keyed.state.vars["card"] == "4111111111111111", "the given state is left untouched"
    if outcome == "declined":       # asked again: the new number is kept until the next answer, then wiped too
        assert after.state.node == "number"
        again = engine.step(card_release, after.state, ev.Dtmf(digits="5500000000000004#")).state
        assert again.vars["card"] == "5500000000000004" and again.secret_vars == ["card"]


def test_the_engine_wipes_a_keyed_card_when_its_flow_returns(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "en.yaml").write_text("t:\n  card: Key your card number.\n  sure: Sure?\n")
    (tmp_path / "flows" / "outer.yaml").write_text(
        "flow: outer\nstart: keyed\ndefaults: {escape: {transfer: service}}\nnodes:\n"
        "  keyed:\n    call: card_only\n    next: {done: sure}\n"
        "  sure:\n    ask: {prompt: t.sure, confirm: true}\n    next: {yes: {hangup: done}, no: keyed}\n")
    (tmp_path / "flows" / "card_only.yaml").write_text(
        "flow: card_only\nstart: number\nvariables: {card: null}\ngives: [card]\ndefaults: {escape: {transfer: service}}\n"
        "nodes:\n  number:\n    ask: {prompt: t.card, digits: {min: 4, max: 19, readback: false}, speech: false, save_as: card}\n"
        "    next: {return: done}\n")
    release, _ = load_flow_set(tmp_path / "flows", tmp_path / "prompts")
    state = engine.start(release, "outer", "c1", call={}).state
    returned = engine.step(release, state, ev.Dtmf(digits="4111#")).state
    assert (returned.flow, returned.node, returned.status) == ("outer", "sure", "running")
    assert returned.vars["card"] is None and returned.secret_vars == []


def test_the_engine_wipes_a_keyed_card_when_the_call_ends_before_the_action(card_release):
    state = engine.start(card_release, "card", "c1", call={}).state
    state = engine.step(card_release, state, ev.Dtmf(digits="4111111111111111#")).state
    assert state.node == "expiry" and state.vars["card"] == "4111111111111111"   # held for the gateway
    assert engine.step(card_release, state, ev.Hangup()).state.vars["card"] is None
    escaped = engine.step(card_release, state, ev.NoInput()).state                  # no reprompts: a person
    assert escaped.status == "transferred" and escaped.vars["card"] is None


def test_the_shipped_payment_flow_leaves_wiping_card_numbers_to_the_engine():
    flows = load_flow_set(ROOT / "flows", ROOT / "prompts")[0].flows
    keyed = model.keypad_only_variables(flows["payment"])
    assert keyed == {"card_number", "card_expiry"}
    assert not [n for n in flows["payment"].nodes.values() if isinstance(n, model.SetNode) and keyed & set(n.set)]


def test_a_keypad_only_turn_is_sensitive_and_a_spoken_one_is_not(card_release, release):
    [card] = engine.start(card_release, "card", "c1", call={}).actions[-1:]
    assert isinstance(card, act.Listen) and card.sensitive and not card.speech
    call = Call(release)
    call.keys("1")
    [number] = call.of(act.Listen)
    assert number.mode == "digits" and number.speech and not number.sensitive, "a policy number may be said"


def test_a_call_resumed_without_its_card_number_goes_to_a_person(card_release):
    state = engine.start(card_release, "card", "c1", call={}).state
    state = engine.step(card_release, state, ev.Dtmf(digits="4111111111111111#")).state
    assert state.node == "expiry" and state.pending.kind == "input"
    saved = CallState.model_validate_json(state.at_rest().model_dump_json())     # what a restart finds in Redis
    result = engine.resume(card_release, saved)
    [transfer] = [a for a in result.actions if isinstance(a, act.Transfer)]
    assert transfer.queue == "service" and "card" in result.state.path[-2].detail
    assert result.actions == [transfer], "prompts without the transfer notice: nothing to announce it with"
    assert not any(isinstance(a, act.CallBackend) for a in result.actions)


def test_an_escape_in_a_flow_without_one_goes_to_the_fallback_queue(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "en.yaml").write_text("t:\n  hello: Hello.\n")
    (tmp_path / "flows" / "bare.yaml").write_text(
        "flow: bare\nstart: lookup\nnodes:\n"
        "  lookup:\n    action: {name: policy.summary, args: {policy: \"1\"}}\n    next: {ok: {hangup: done}}\n")
    release, _ = load_flow_set(tmp_path / "flows", tmp_path / "prompts")
    state = engine.start(release, "bare", "c1", call={}).state
    result = engine.step(release, state, ev.BackendResult(name="policy.summary", outcome="error"))
    [transfer] = [a for a in result.actions if isinstance(a, act.Transfer)]
    assert (transfer.queue, transfer.reason) == (act.FALLBACK_QUEUE, "backend_error")


def test_a_turn_that_requires_its_terminator_asks_again_after_a_pause(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "en.yaml").write_text("t:\n  dob: Date of birth, or ID digits and hash.\n  again: Again.\n")
    (tmp_path / "flows" / "dob.yaml").write_text(
        "flow: dob\nstart: dob\nvariables: {answer: null}\ndefaults: {escape: {transfer: service, reason: trouble}}\n"
        "nodes:\n  dob:\n    ask:\n      prompt: t.dob\n"
        '      digits: {min: 4, max: 8, terminator: "#", terminator_required: true, readback: false}\n'
        "      save_as: answer\n      nomatch: [t.again]\n    next: {hangup: done}\n")
    release, _ = load_flow_set(tmp_path / "flows", tmp_path / "prompts")

    def keyed(*events: ev.Event) -> engine.Step:
        state = engine.start(release, "dob", "c1", call={}).state
        for event in events:
            result = engine.step(release, state, event)
            state = result.state
        return result

    paused = keyed(ev.Dtmf(digits="1980"), ev.NoInput())
    assert paused.state.node == "dob" and paused.state.buffer == "" and paused.state.nomatch == 1
    assert [p.key for a in paused.actions if isinstance(a, act.Play) for p in a.prompts] == ["t.again"]
    assert keyed(ev.Dtmf(digits="4567#")).state.vars["answer"] == "4567"
    assert keyed(ev.Dtmf(digits="19800531")).state.vars["answer"] == "19800531"     # max keys end it too


DEFAULTED_FLOW = """\
flow: lookup
start: summary
defaults:
  escape: {transfer: service, reason: trouble}
  backend_error: down
  backend_timeout: {transfer: service, reason: slow_backend}
nodes:
  summary:
    action: {name: policy.summary}
    next: {ok: claim, declined: {hangup: none}}
  claim:
    action: {name: claim.status}
    next: {ok: {hangup: done}, declined: {hangup: none}, error: {hangup: own_error}}
  down:
    transfer: service
    reason: backend_down
"""


def _backend_outcomes(tmp_path, *outcomes: str) -> engine.Step:
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "prompts").mkdir(exist_ok=True)
    (tmp_path / "flows" / "lookup.yaml").write_text(DEFAULTED_FLOW)
    (tmp_path / "prompts" / "en.yaml").write_text("t:\n  hello: Hello.\n")
    release, diagnostics = load_flow_set(tmp_path / "flows", tmp_path / "prompts")
    assert [d.code for d in diagnostics] == ["system-prompt"], diagnostics
    result = engine.start(release, "lookup", "c1", call={})
    for outcome in outcomes:
        result = engine.step(release, result.state, ev.BackendResult(name=result.state.pending.action, outcome=outcome))
    return result


def test_an_action_that_does_not_say_where_its_error_goes_takes_the_flow_default(tmp_path):
    assert _backend_outcomes(tmp_path, "error").state.result["reason"] == "backend_down"        # a node
    assert _backend_outcomes(tmp_path, "timeout").state.result["reason"] == "slow_backend"      # an inline target
    assert _backend_outcomes(tmp_path, "ok", "error").state.result == {"outcome": "own_error"}   # its own wins
    own_timeout = _backend_outcomes(tmp_path, "ok", "timeout").state.result
    assert own_timeout["reason"] == "slow_backend"     # claim says nothing about timeout: the default again


VALUES_FLOW = """\
flow: values
start: assign
variables: {attempts: 1, options: null, note: null}
defaults: {escape: {transfer: service, reason: trouble}}
nodes:
  assign:
    set:
      language: zh
      attempts: =attempts + 1
      options: [downgrade, pause]
      note: null
      greeting: hello there
      price: 12.5
    next: send
  send:
    action: {name: sms.confirm, args: {about: payment, times: =attempts, flags: {urgent: true}}}
    next: {ok: {hangup: done}}
"""


def test_values_are_taken_as_written_and_equals_computes_them(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "flows" / "values.yaml").write_text(VALUES_FLOW.replace("start: assign", "languages: [en, zh]\nstart: assign"))
    for language in ("en", "zh"):
        (tmp_path / "prompts" / f"{language}.yaml").write_text("t:\n  hi: hi\n")
    release, diagnostics = load_flow_set(tmp_path / "flows", tmp_path / "prompts")
    assert [d.code for d in diagnostics if d.severity.value == "error"] == []
    result = engine.start(release, "values", "c1", call={})
    vars_ = result.state.vars
    assert (vars_["language"], vars_["attempts"], vars_["options"], vars_["note"]) == ("zh", 2, ["downgrade", "pause"], None)
    assert (vars_["greeting"], vars_["price"]) == ("hello there", 12.5)
    assert result.state.language == "zh", "a literal language switches the call's language"
    [sent] = [a for a in result.actions if isinstance(a, act.CallBackend)]
    assert sent.args == {"about": "payment", "times": 2, "flags": {"urgent": True}}
    written = release.flow("values").nodes["assign"].set["options"]
    assert isinstance(written, model.Fixed) and written.value is not vars_["options"], "a call never shares the flow's list"
    assert CallState.model_validate_json(result.state.model_dump_json()) == result.state


def test_a_value_that_is_only_an_equals_sign_is_refused_where_it_is():
    from ivr.flow.loader import load_flow_text
    _, diagnostics = load_flow_text(VALUES_FLOW.replace("note: null\n      greeting", "note: =\n      greeting"), "v.yaml")
    assert [(d.line, d.code) for d in diagnostics] == [(11, "structure")]
    assert "write an expression after =" in diagnostics[0].message


ROUTED_FLOW = """\
flow: front
start: greet
routes:
  start:
    payment: payment_first
    locked: {transfer: service, reason: locked, priority: 7}
  intent_turn: menu
  intent:
    person: {transfer: service, reason: repeat_caller, priority: 7}
defaults: {escape: {transfer: service, reason: trouble}}
nodes:
  payment_first:
    play: t.hello
    next: menu
  greet:
    play: t.hello
    next: menu
  menu:
    ask: {prompt: t.menu, choices: {policy: {dtmf: "1"}, claim: {dtmf: "2"}}, speech: false}
    next: {policy: {hangup: policy}, claim: again}
  again:
    ask: {prompt: t.menu, choices: {policy: {dtmf: "1"}}, speech: false}
    next: {policy: {hangup: policy_second}}
"""
DECISIONS = {"start": {"rule": "failed_debit_first", "to": "payment", "reason": "failed debit"},
             "intents": {"policy": {"rule": "repeat_caller", "to": "person", "reason": "called yesterday"}}}


@pytest.fixture
def routed_release(tmp_path) -> FlowSet:
    (tmp_path / "flows").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "flows" / "front.yaml").write_text(ROUTED_FLOW)
    (tmp_path / "prompts" / "en.yaml").write_text("t:\n  hello: Hello.\n  menu: Policy or claim?\n")
    release, diagnostics = load_flow_set(tmp_path / "flows", tmp_path / "prompts")
    assert [d.code for d in diagnostics] == ["system-prompt"], diagnostics
    return release


def test_the_engine_follows_a_start_route_and_copies_the_decision(routed_release):
    routed = engine.start(routed_release, "front", "c1", call={"route_start": "payment", "routing": DECISIONS})
    assert [t.node for t in routed.state.path if t.kind == "prompt"] == ["payment_first", "menu"]
    assert routed.state.vars["routing"] == DECISIONS["start"]
    [route] = [t for t in routed.state.path if t.kind == "route"]
    assert (route.matched, route.detail) == ("payment", "start: failed_debit_first")
    locked = engine.start(routed_release, "front", "c1", call={"route_start": "locked", "routing": {}})
    assert locked.state.result["reason"] == "locked" and locked.state.vars["routing"] is None
    for call in ({}, {"route_start": None}, {"route_start": "nowhere"}):     # unrouted, or a route this flow lacks
        plain = engine.start(routed_release, "front", "c1", call=call).state
        assert plain.path[1].node == "greet" and plain.vars["routing"] is None


def test_the_engine_follows_an_intent_route_once_the_intent_turn_is_answered(routed_release):
    call = {"route_for": {"policy": "person"}, "routing": DECISIONS}
    state = engine.start(routed_release, "front", "c1", call=call).state
    routed = engine.step(routed_release, state, ev.Dtmf(digits="1")).state
    assert routed.result["reason"] == "repeat_caller" and routed.vars["routing"] == DECISIONS["intents"]["policy"]
    other = engine.step(routed_release, state, ev.Dtmf(digits="2")).state          # no rule for claim: menu's next
    assert other.node == "again" and other.vars["routing"] is None
    second = engine.step(routed_release, other, ev.Dtmf(digits="1")).state         # only the intent turn is routed
    assert second.result == {"outcome": "policy_second"}
    unrouted = engine.start(routed_release, "front", "c1", call={}).state
    assert engine.step(routed_release, unrouted, ev.Dtmf(digits="1")).state.result == {"outcome": "policy"}
