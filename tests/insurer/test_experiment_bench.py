"""The main menu's experiment with simulated callers: arms assigned by the engine, decided by the report."""

from __future__ import annotations

from ivr.bench.experiment import run


def test_a_clear_difference_between_arms_is_decided():
    result = run(callers=600, follows={"full_menu": 0.95, "short_menu": 0.6})
    arms = {a["arm"]: a for a in result["result"]["arms"]}
    assert set(arms) == {"full_menu", "short_menu"}
    assert 240 <= arms["short_menu"]["calls"] <= 360  # equal shares, by the keyed caller hash
    assert arms["short_menu"]["containment"]["rate"] < arms["full_menu"]["containment"]["rate"]
    assert result["result"]["summary"] == ["arm short_menu contains fewer callers than full_menu (p < 0.001)"]


def test_too_few_callers_are_not_enough_to_decide():
    result = run(callers=120, follows={"full_menu": 0.9, "short_menu": 0.87})
    [verdict] = result["result"]["summary"]
    assert "not enough data yet" in verdict and "more calls needed" in verdict
