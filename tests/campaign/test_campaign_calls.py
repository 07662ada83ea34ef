"""The rescue campaign end to end: the sample book, the campaign, the simulator's Asterisk (originate,
the shipped [ivr-outbound] with AMD(), scripted phones) and the controller running the outbound flow."""

from __future__ import annotations

import pytest

from ivr.bench.campaign import Population, run

pytestmark = pytest.mark.slow

NOBODY_PAYS_BY_TEXT = {"pay_after_text": 0.0, "opt_out": 0.0}


def test_policyholders_who_answer_are_verified_and_recover_their_premium_on_the_call():
    everyone_answers = Population(**NOBODY_PAYS_BY_TEXT, human=1.0, machine=0.0, busy=0.0, unreachable=0.0,
                                  right_person=1.0, pay_now=0.6, promise=0.4, agent=0.0)
    result = run(days=0.3, targets=3, population=everyone_answers)
    campaign = result["campaign"]
    assert campaign["targets"] == 3 and campaign["done"] == 3
    assert sum(campaign["results"].get(r, 0) for r in ("paid", "promised")) == 3
    assert campaign["recovered_by"] == {"outbound_call": 3}
    assert result["recovered_by_channel"] == {"outbound_call": 3}
    assert campaign["texts"] == 3  # each was texted before the first call


def test_machines_busy_lines_and_wrong_people_are_tried_again_later():
    nobody_right = Population(**NOBODY_PAYS_BY_TEXT, human=0.4, machine=0.4, busy=0.2, unreachable=0.0,
                              right_person=0.0)
    result = run(days=0.3, targets=3, population=nobody_right)
    campaign = result["campaign"]
    assert campaign["done"] == 0 and campaign["open"] == 3
    assert set(campaign["call_results"]) <= {"machine", "busy", "not_reached"}
    assert sum(campaign["call_results"].values()) == result["calls_placed"] >= 3
