"""The campaign scheduler as a pure reducer: events in, state and contacts out, no clock, no I/O."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ivr.campaign import schedule as sch
from ivr.campaign.model import CampaignState, Rules, Target

LONDON = ZoneInfo("Europe/London")
RULES = Rules(first_call_after=3600, backoff=(3600, 86400), max_calls=3, daily_cap=100)


def at(text: str, zone: ZoneInfo = LONDON) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def target(key: str = "t1", zones: tuple[str, ...] = ("Europe/London",), found: str = "2026-12-07T08:00",
           cancel_on: dt.date = dt.date(2026, 12, 31), phone: str | None = "sealed:phone") -> Target:
    return Target(key=key, policy="sealed:policy", phone=phone, person="P1", zones=zones, amount=80.0,
                  cancel_on=cancel_on, found_at=at(found))


def run(state: CampaignState, *events: sch.Event, rules: Rules = RULES) -> tuple[CampaignState, list[sch.Action]]:
    actions: list[sch.Action] = []
    for event in events:
        result = sch.step(rules, state, event)
        state, actions = result.state, actions + result.actions
    return state, actions


def calls(actions: list[sch.Action]) -> list[sch.PlaceCall]:
    return [a for a in actions if isinstance(a, sch.PlaceCall)]


def test_a_text_comes_first_and_the_call_after_the_wait():
    state, actions = run(CampaignState(), sch.Found(target()), sch.Tick(at("2026-12-07T09:00")))
    assert [type(a) for a in actions] == [sch.SendText]
    state, actions = run(state, sch.Tick(at("2026-12-07T09:30")))
    assert actions == []
    state, actions = run(state, sch.Tick(at("2026-12-07T10:00")))
    assert calls(actions) == [sch.PlaceCall("t1", "t1-2")]
    assert state.targets["t1"].in_flight == "t1-2" and state.targets["t1"].calls == 1


def test_calls_only_in_daytime_where_the_policyholder_lives():
    shanghai = target(zones=("Asia/Shanghai",))
    # 14:00 in London is 22:00 in Shanghai: no call; the next is at 09:00 Shanghai time
    state, _ = run(CampaignState(), sch.Found(shanghai), sch.Tick(at("2026-12-07T08:00")))
    state, actions = run(state, sch.Tick(at("2026-12-07T14:00")))
    assert calls(actions) == []
    assert state.targets["t1"].next_at == at("2026-12-08T09:00", ZoneInfo("Asia/Shanghai"))
    _, actions = run(state, sch.Tick(state.targets["t1"].next_at))
    assert len(calls(actions)) == 1


def test_a_number_in_several_zones_is_called_only_when_it_is_daytime_in_all():
    both = target(zones=("America/New_York", "America/Los_Angeles"))
    state, _ = run(CampaignState(), sch.Found(both), sch.Tick(at("2026-12-07T08:00")))
    # 10:00 in New York is 07:00 in Los Angeles
    state, actions = run(state, sch.Tick(at("2026-12-07T10:00", ZoneInfo("America/New_York"))))
    assert calls(actions) == []
    assert state.targets["t1"].next_at == at("2026-12-07T09:00", ZoneInfo("America/Los_Angeles"))


def test_no_calls_on_sunday():
    state, _ = run(CampaignState(), sch.Found(target(found="2026-12-12T08:00")), sch.Tick(at("2026-12-12T08:00")))
    state, actions = run(state, sch.Tick(at("2026-12-13T11:00")))  # a Sunday
    assert calls(actions) == []
    assert state.targets["t1"].next_at == at("2026-12-14T09:00")


def test_busy_backs_off_then_the_calls_run_out():
    state, _ = run(CampaignState(), sch.Found(target()), sch.Tick(at("2026-12-07T09:00")),
                   sch.Tick(at("2026-12-07T10:00")))
    state, _ = run(state, sch.CallFailed("t1-2", "busy", at("2026-12-07T10:01")))
    assert state.targets["t1"].next_at == at("2026-12-07T11:01")
    state, actions = run(state, sch.Tick(at("2026-12-07T11:01")))
    assert calls(actions) == [sch.PlaceCall("t1", "t1-3")]
    state, _ = run(state, sch.CallEnded("t1-3", "machine", at("2026-12-07T11:02")))
    assert state.targets["t1"].next_at == at("2026-12-08T11:02")  # the second delay after the second call
    state, actions = run(state, sch.Tick(at("2026-12-08T11:02")), sch.CallFailed("t1-4", "no_answer", at("2026-12-08T11:03")),
                         sch.Tick(at("2026-12-09T12:00")))
    assert actions[-1] == sch.Finished("t1", "exhausted", None)
    assert [a.result for a in state.targets["t1"].attempts] == [None, "busy", "machine", "no_answer"]


def test_the_daily_cap_holds_calls_to_the_next_day():
    rules = Rules(text_first=False, daily_cap=2)
    found = [sch.Found(target(key=f"t{i}")) for i in range(3)]
    state, actions = run(CampaignState(), *found, sch.Tick(at("2026-12-07T10:00")), rules=rules)
    assert len(calls(actions)) == 2 and state.calls_today == 2
    waiting = [t for t in state.targets.values() if t.in_flight is None]
    assert len(waiting) == 1 and waiting[0].next_at == at("2026-12-08T09:00")
    state, actions = run(state, sch.Tick(at("2026-12-08T09:00")), rules=rules)
    assert len(calls(actions)) == 1 and state.calls_today == 1


def test_paid_after_the_text_is_the_texts_recovery_and_no_call_is_made():
    state, _ = run(CampaignState(), sch.Found(target()), sch.Tick(at("2026-12-07T09:00")))
    state, actions = run(state, sch.Resolved("t1", "paid", at("2026-12-07T10:00")), sch.Tick(at("2026-12-07T10:00")))
    assert actions == [sch.Finished("t1", "paid", "text")]
    assert state.targets["t1"].status == "done" and state.targets["t1"].calls == 0


def test_outcomes_of_an_answered_call():
    base, _ = run(CampaignState(), sch.Found(target()), sch.Tick(at("2026-12-07T09:00")), sch.Tick(at("2026-12-07T10:00")))
    state, actions = run(base, sch.CallEnded("t1-2", "promised", at("2026-12-07T10:05")))
    assert actions == [sch.Finished("t1", "promised", "outbound_call")]
    state, actions = run(base, sch.CallEnded("t1-2", "opted_out", at("2026-12-07T10:05")))
    assert actions == [sch.Finished("t1", "opted_out", None)]
    state, actions = run(base, sch.CallEnded("t1-2", "transferred", at("2026-12-07T10:05")))
    assert actions == [] and state.targets["t1"].next_at == at("2026-12-08T10:05")
    # an outcome of an attempt that is not in flight (a repeat, or unknown) changes nothing
    again, actions = run(state, sch.CallEnded("t1-2", "paid", at("2026-12-07T10:06")))
    assert actions == [] and again == state


def test_a_blocked_number_and_a_cancelled_policy_end_the_target():
    state, actions = run(CampaignState(), sch.Found(target()), sch.Blocked("t1", "do_not_call", at("2026-12-07T09:00")))
    assert actions == [sch.Finished("t1", "do_not_call", None)]
    late = target(cancel_on=dt.date(2026, 12, 6))
    _, actions = run(CampaignState(), sch.Found(late), sch.Tick(at("2026-12-07T10:00")))
    assert actions == [sch.Finished("t1", "lapsed", None)]
    _, actions = run(CampaignState(), sch.Found(target(phone=None)), sch.Tick(at("2026-12-07T10:00")))
    assert actions == [sch.Finished("t1", "no_phone", None)]


def test_a_call_with_no_outcome_times_out_and_is_retried():
    state, _ = run(CampaignState(), sch.Found(target()), sch.Tick(at("2026-12-07T09:00")), sch.Tick(at("2026-12-07T10:00")))
    state, _ = run(state, sch.Tick(at("2026-12-07T12:00")))  # attempt_timeout is 2 h
    assert state.targets["t1"].in_flight is None
    assert state.targets["t1"].attempts[-1].result == "unknown"


def test_the_state_round_trips_through_json_and_the_input_is_untouched():
    state, _ = run(CampaignState(), sch.Found(target()), sch.Tick(at("2026-12-07T09:00")), sch.Tick(at("2026-12-07T10:00")))
    assert CampaignState.model_validate_json(state.model_dump_json()) == state
    before = state.model_copy(deep=True)
    sch.step(RULES, state, sch.CallEnded("t1-2", "paid", at("2026-12-07T10:05")))
    assert state == before


def test_rules_without_any_window_are_refused_plainly():
    rules = Rules(calling_days=frozenset())
    with pytest.raises(ValueError, match="no calling window"):
        sch.next_window(rules, ("Europe/London",), at("2026-12-07T10:00"))


def test_no_more_calls_at_once_than_lines():
    rules = Rules(text_first=False, lines=2)
    found = [sch.Found(target(key=f"t{i}")) for i in range(4)]
    state, actions = run(CampaignState(), *found, sch.Tick(at("2026-12-07T10:00")), rules=rules)
    assert len(calls(actions)) == 2
    first = calls(actions)[0]
    state, actions = run(state, sch.CallFailed(first.attempt, "busy", at("2026-12-07T10:01")),
                         sch.Tick(at("2026-12-07T10:02")), rules=rules)
    assert len(calls(actions)) == 1  # a line came free; the busy one waits for its backoff


def test_finished_targets_the_book_no_longer_lists_are_forgotten_after_a_month():
    state, _ = run(CampaignState(), sch.Found(target("paid")), sch.Found(target("exhausted")),
                   sch.Resolved("paid", "paid", at("2026-12-07T09:00")), sch.Blocked("exhausted", "do_not_call", at("2026-12-07T09:00")))
    # the blocked debit is still open in the book: kept, or its calls would start again
    state, _ = run(state, sch.Listed(frozenset({"exhausted"}), at("2026-12-20T09:00")))
    assert set(state.targets) == {"paid", "exhausted"}  # within the month both stay (status, reports)
    state, _ = run(state, sch.Listed(frozenset({"exhausted"}), at("2027-01-20T09:00")))
    assert set(state.targets) == {"exhausted"}
