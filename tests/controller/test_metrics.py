"""Prometheus metrics (ivr/metrics.py): /metrics scraped during and after real calls through the simulator.

The numbers an operator watches must move with the calls: calls in progress
up while callers are in the menu and back to 0 when they have gone, calls by
outcome, transfers by queue and reason, journeys by how they ended
(containment), turn latency, reconnects of the events websocket. Labels stay
bounded and never carry a number that could be a caller's.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from types import SimpleNamespace

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ConnectionError as RedisConnectionError

from ivr.ari import AriClient, AriConnectionError
from ivr.controller import notices as note
from ivr.engine import actions as act
from ivr.engine import events as ev
from ivr.engine.machine import Step
from ivr.engine.state import Turn
from ivr.metrics import OTHER, LabelCap, Metrics
from ivr.redis_server import free_port
from ivr.redisguard import RedisGuard
from ivr.speech.turn import TurnEnded
from tests.controller.conftest import heard, make_rig

DOB = "19800531"


class Scrape:
    """One scrape of /metrics, parsed as Prometheus parses it."""

    def __init__(self, text: str) -> None:
        self.samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
        return sum(s.value for s in self.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    def label_values(self) -> set[str]:
        return {value for sample in self.samples if sample.name.startswith("ivr_")
                for value in sample.labels.values()}


async def scrape(url: str) -> Scrape:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200 and response.content_type == "text/plain"
        return Scrape(await response.text())


async def until(url: str, condition: Callable[[Scrape], bool], timeout: float = 10.0) -> Scrape:
    """Scrape until `condition` holds (the notices of a call's last step come just after the simulator sees it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        scraped = await scrape(url)
        if condition(scraped) or asyncio.get_running_loop().time() > deadline:
            return scraped
        await asyncio.sleep(0.05)


async def test_scraped_during_calls_the_numbers_move(tmp_path, redis_url):
    port = free_port()
    async with make_rig(tmp_path, redis_url, metrics_port=port) as rig:
        url = f"http://127.0.0.1:{port}/metrics"
        before = await scrape(url)
        assert before.value("ivr_calls_in_progress") == 0 and before.value("ivr_ari_connected") == 1
        assert before.value("ivr_calls_total") == 0 and before.value("ivr_ari_reconnects_total") == 0

        policy, agent, gone = rig.call(ani="+15550101"), rig.call(ani="+15550102"), rig.call(ani="+15550103")
        for call in (policy, agent, gone):
            await call.wait_until(lambda c: heard(c, "main.menu"), timeout=15)
        during = await scrape(url)
        assert during.value("ivr_calls_in_progress") == 3
        assert during.value("ivr_calls_started_total", how="new") == 3

        await agent.press("0")                                   # a person, please
        await agent.wait_continued()
        await gone.hangup()                                      # hangs up in the menu
        await gone.wait_ended()
        await policy.press("1")                                  # the policy journey, contained
        await policy.wait_until(lambda c: heard(c, "verify.dob"))
        middle = await until(url, lambda s: s.value("ivr_calls_in_progress") == 1)
        assert middle.value("ivr_calls_in_progress") == 1, "two callers have left, one is still here"
        await policy.press(DOB, interval=0.1)
        await policy.wait_until(lambda c: heard(c, "policy.what_next"))
        await policy.press("9")
        await policy.wait_until(lambda c: heard(c, "main.anything_else"))
        await policy.press("2")
        await policy.wait_ended()

        after = await until(url, lambda s: s.value("ivr_calls_total") == 3)
        assert after.value("ivr_calls_in_progress") == 0
        assert after.value("ivr_calls_total", outcome="transferred") == 1
        assert after.value("ivr_calls_total", outcome="caller_hangup") == 1
        assert after.value("ivr_calls_total", outcome="completed") == 1
        assert after.value("ivr_transfers_total", queue="customer_service", reason="asked_for_agent") == 1
        assert after.value("ivr_journeys_total", journey="policy_query", outcome="contained") == 1
        assert after.value("ivr_journeys_total") == 1, "the other two callers never entered a journey"
        # key turns that led to a prompt: agent's 0 (the transfer notice), policy's 1, date of birth, 9, 2
        turns = after.value("ivr_turn_latency_seconds_count", input="keys")
        assert turns >= 4
        assert 0 < after.value("ivr_turn_latency_seconds_sum", input="keys") / turns < 1.0
        assert after.value("ivr_turn_latency_seconds_bucket", input="keys", le="+Inf") == turns
        assert after.value("ivr_ari_errors_total", error="AriConnectionError") == 0
        assert after.value("process_resident_memory_bytes") > 0

        assert await rig.sim.drop_websocket() >= 1             # Asterisk restarts its HTTP server
        back = await until(url, lambda s: s.value("ivr_ari_reconnects_total") == 1)
        assert back.value("ivr_ari_reconnects_total") == 1 and back.value("ivr_ari_connected") == 1

        for value in back.label_values():                      # nothing that could be a caller's number
            assert not re.search(r"\d{6,}", value), value


# --- the observer alone, with a session as the controller hands it ------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def session(channel_id: str = "c-1", language: str = "en", playing: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(channel_id=channel_id, state=SimpleNamespace(language=language, vars={}),
                           playing=[(playback, True) for playback in playing])


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_label_cap_keeps_codes_folds_the_rest():
    cap = LabelCap(limit=3, known=["transferred"])
    assert [cap("asked_for_agent"), cap("orphan_policy"), cap("ivr_trouble")] == ["asked_for_agent", "orphan_policy",
                                                                                   OTHER]
    assert cap("transferred") == "transferred" and cap("asked_for_agent") == "asked_for_agent"
    assert cap("") == cap(None) == "none"
    wide = LabelCap(limit=100)
    assert wide("policy P1234567") == OTHER, "not a code: a space"
    assert wide("P12345678") == OTHER and wide("+15550100") == OTHER, "a number that could be a caller's"
    assert wide("x" * 49) == OTHER and wide("queue_2") == "queue_2"


def test_queues_and_reasons_beyond_the_limit_count_as_other():
    metrics = Metrics(label_limit=5, process=False)
    for n in range(40):
        call = session(f"c-{n}")
        metrics(call, note.CallStarted({}))
        metrics(call, note.Transferred(act.Transfer(queue=f"queue_{n}", reason=f"reason {n}", priority=5)))
    queues = {s.labels["queue"] for m in metrics.registry.collect() if m.name == "ivr_transfers" for s in m.samples}
    assert len(queues) == 6 and OTHER in queues
    assert sample(metrics, "ivr_transfers_total", queue=OTHER, reason=OTHER) == 35
    assert sample(metrics, "ivr_transfers_total", queue="queue_0", reason=OTHER) == 1, "a reason with a space"
    assert sample(metrics, "ivr_calls_total", outcome="transferred") == 40
    assert sample(metrics, "ivr_calls_in_progress") == 0


def test_speech_confidence_by_recogniser_and_the_wait_from_the_end_of_speech():
    clock = Clock()
    metrics = Metrics({"en": "pocketsphinx", "zh": "vosk"}, clock=clock, process=False)
    call = session(playing=("pb-2",))
    metrics(call, note.CallStarted({}))
    # the turn ended 0.4 s after the caller's voice did (early endpointing and recognition)
    metrics(call, note.SpeechHeard(TurnEnded(ev.Speech(text="pay my premium", confidence=0.82), at=12.4,
                                             speech_start=11.0, speech_end=12.0)))
    clock.now += 0.1
    step = Step(SimpleNamespace(vars={}), [])
    metrics(call, note.StepTaken(step, (Turn(flow="main_menu", node="menu", kind="input", matched="payment"),)))
    clock.now += 0.2
    metrics(call, note.PromptStarted("pb-1"))                  # not one of the call's current prompts
    metrics(call, note.PromptStarted("pb-2"))
    assert sample(metrics, "ivr_recognition_confidence_count", recogniser="pocketsphinx") == 1
    assert sample(metrics, "ivr_recognition_confidence_sum", recogniser="pocketsphinx") == pytest.approx(0.82)
    assert sample(metrics, "ivr_turn_latency_seconds_count", input="speech") == 1
    assert sample(metrics, "ivr_turn_latency_seconds_sum", input="speech") == pytest.approx(0.7)
    metrics(call, note.PromptStarted("pb-2"))                  # a second prompt of the same step: no new turn
    assert sample(metrics, "ivr_turn_latency_seconds_count", input="speech") == 1


def test_a_resumed_call_counts_as_resumed_and_its_journey_ends_here():
    from ivr.engine.state import CallState

    metrics = Metrics(process=False)
    state = CallState(call_id="c-9", release="r", flow="policy_query", node="ask", language="en", path=[
        Turn(flow="main_menu", node="menu", kind="call", detail="policy_query")])
    call = session("c-9")
    metrics(call, note.CallResumed(state))
    assert sample(metrics, "ivr_calls_started_total", how="resumed") == 1
    assert sample(metrics, "ivr_calls_in_progress") == 1
    metrics(call, note.StepTaken(Step(SimpleNamespace(vars={}), []),
                                 (Turn(flow="policy_query", node="ask", kind="caller_hangup"),)))
    metrics(call, note.CallerLeft("StasisEnd"))
    assert sample(metrics, "ivr_journeys_total", journey="policy_query", outcome="abandoned") == 1
    assert sample(metrics, "ivr_calls_in_progress") == 0


async def test_redis_errors_are_counted_by_what_the_command_was_for():
    metrics = Metrics(process=False)
    before = sample(metrics, "ivr_redis_errors_total", use="caller_history")

    async def refused() -> None:
        raise RedisConnectionError("connection refused")

    guard = RedisGuard("caller history", logging.getLogger("test"), retry_after=0.0)
    assert await guard.run(refused, default="none") == "none"
    assert await guard.run(refused, default="none") == "none"
    assert sample(metrics, "ivr_redis_errors_total", use="caller_history") == before + 2


async def test_ari_errors_are_counted_by_class():
    metrics = Metrics(process=False)
    async with AriClient(f"http://127.0.0.1:{free_port()}", "ivr", "x", on_error=metrics.ari_error) as ari:
        with pytest.raises(AriConnectionError):
            await ari.ping()
    assert sample(metrics, "ivr_ari_errors_total", error="AriConnectionError") == 1


def test_the_grafana_dashboard_shows_every_metric():
    """asterisk-conf/grafana-dashboard.json: a panel for each metric, queries through the datasource variable."""
    import json

    from ivr.metrics import StreamCollector
    from tests.conftest import ROOT

    dashboard = json.loads((ROOT / "asterisk-conf" / "grafana-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
    queries = " ".join(target["expr"] for p in panels for target in p["targets"])
    stream = StreamCollector(SimpleNamespace(connected=True, connections=1))
    families = [*Metrics().registry.collect(), *stream.collect()]
    names = {f.name for f in families if f.name.startswith("ivr_")}
    assert len(names) == 11
    for name in names:
        assert re.search(rf"\b{name}(_total|_bucket|_count)?\b", queries), f"no panel shows {name}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
