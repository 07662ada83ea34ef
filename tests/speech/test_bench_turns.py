"""`ivr bench turns` runs end to end on one caller per mode and measures every kind of turn.

Only that it measures (its figures are the benchmark's business, not a test's)."""

from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("flite") is None, reason="flite makes the voices")]


def test_bench_turns_measures_choices_yes_no_and_barge_in(redis_url, monkeypatch):
    from ivr.bench import turns

    monkeypatch.setenv("IVR_REDIS_URL", redis_url)
    report = turns.run(calls=1, concurrent=1, recogniser="pocketsphinx")
    assert report["recogniser"] == "pocketsphinx"
    stream, record = report["modes"]["stream"], report["modes"]["record"]
    for mode, kinds in ((stream, ("choices", "yes_no", "barge_in")), (record, ("choices", "yes_no"))):
        for kind in kinds:
            assert mode[kind]["measured"] == 1 and mode[kind]["latency_ms"]["p50"] is not None, (kind, mode[kind])
    assert stream["choices"]["next_prompts"] == {"main.anything_else": 1}
    assert stream["yes_no"]["next_prompts"] == {"main.goodbye": 1}
    assert "barge_in" not in record and set(report["goals"]) >= {"barge_in_p95_le_250ms", "yes_no_p95_le_300ms"}
