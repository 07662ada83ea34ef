"""What an operator watches on a running controller: Prometheus metrics, served at /metrics.

`Metrics` owns a `prometheus_client.CollectorRegistry` of its own (never the
process-wide default one, so several applications in one process, as in the
tests, each count their own calls) and is a controller observer
(`Services.observers`): it takes the typed notices of every call
(`ivr.controller.notices`) and the call's facts as they grow
(`ivr.callrecord.CallFacts`, the same the caller history records), so the
numbers are the ones the call log and `ivr report` tell, counted as they
happen. Errors come from where they happen: the ARI client hands each failed
request to `Metrics.ari_error` (`AriClient(on_error=...)`), the Redis guards
count their failed commands (`ivr.redisguard.failures`), and the events
websocket's connects are read from the stream when Prometheus scrapes
(`metrics_app`).

| metric | type | labels | what |
|---|---|---|---|
| `ivr_calls_in_progress` | gauge | | calls this controller is serving now |
| `ivr_calls_started_total` | counter | how (new, resumed) | calls answered, or taken over from another controller |
| `ivr_calls_total` | counter | outcome | calls that left the IVR: `transferred`, `caller_hangup`, or the flow's hang-up outcome (`completed`) |
| `ivr_turn_latency_seconds` | histogram | input (keys, speech) | end of the caller's answer (last key, end of speech) to the start of the next prompt |
| `ivr_recognition_confidence` | histogram | recogniser | confidence of each recognised answer (0..1, calibrated) |
| `ivr_transfers_total` | counter | queue, reason | callers handed to a queue, and why |
| `ivr_journeys_total` | counter | journey, outcome | how each journey a caller entered ended: contained, transferred, abandoned, ... (containment) |
| `ivr_redis_errors_total` | counter | use | Redis commands that failed, by what they were for (process-wide) |
| `ivr_ari_errors_total` | counter | error | failed ARI requests by error class (`ChannelNotFound` follows callers who hang up mid-request) |
| `ivr_ari_connected` | gauge | | 1 while the events websocket is connected |
| `ivr_ari_reconnects_total` | counter | | times the events websocket connected again after the first |
| `process_*` | | | CPU seconds, resident memory, open files of the controller process |

Labels never carry personal data (no numbers, names, policy ids) and never
grow without bound: queue, reason, journey and outcome come from the flows,
so each label keeps at most `LABEL_LIMIT` distinct values (`LabelCap`); a
later value, one that is not a short code (`[A-Za-z0-9_.-]`, 48 characters
at most) or one with a run of six or more digits is counted as `other`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ivr import redisguard
from ivr.ari.errors import AriError
from ivr.callrecord import CallFacts
from ivr.controller import notices as note
from ivr.controller.calllog import ANSWERS
from ivr.engine import events as ev

if TYPE_CHECKING:
    from ivr.controller.session import CallSession

log = logging.getLogger(__name__)

LABEL_LIMIT = 40  # distinct values one label keeps; later ones count as OTHER
OTHER = "other"
NONE = "none"  # an empty value (a transfer without a reason)
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,48}")
_NUMBER = re.compile(r"\d{6,}")  # a phone, policy or card number, a date of birth: never a label
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
CALL_OUTCOMES = ("transferred", "caller_hangup", "completed")
JOURNEY_OUTCOMES = ("contained", "transferred", "abandoned", "unfinished")


class LabelCap:
    """One label's values, bounded: the first `limit` distinct codes as they are, anything else `other`."""

    def __init__(self, limit: int = LABEL_LIMIT, known: Iterable[str] = ()) -> None:
        self.limit = limit
        self._kept: set[str] = set()
        for value in known:
            self(value)

    def __call__(self, value: object) -> str:
        text = "" if value is None else str(value)
        if not text:
            return NONE
        if text in self._kept:
            return text
        if len(self._kept) >= self.limit or not _CODE.fullmatch(text) or _NUMBER.search(text):
            return OTHER
        self._kept.add(text)
        return text


@dataclass
class _Call:
    """What the metrics keep of one call while it is here."""

    facts: CallFacts
    answered_at: float | None = None  # the end of the caller's answer (monotonic clock)
    answered_by: str = "keys"  # keys | speech
    taken: bool = False  # the engine has taken the answer: the next prompt ends the caller's wait


class Metrics:
    """The controller's Prometheus metrics (see the module docstring), fed as a controller observer."""

    def __init__(self, recognisers: Mapping[str, str] | None = None, *, label_limit: int = LABEL_LIMIT,
                 clock: Callable[[], float] = time.monotonic, process: bool = True) -> None:
        """`recognisers`: the engine that hears each call language (`ivr.speech.languages.choose_for`),
        naming the recogniser of a confidence; `process`: add the process's CPU and memory."""
        self.recognisers = dict(recognisers or {})
        self.clock = clock
        self.registry = CollectorRegistry()
        registry = self.registry
        self.calls_in_progress = Gauge("ivr_calls_in_progress", "Calls this controller is serving now",
                                       registry=registry)
        self.calls_started = Counter("ivr_calls_started", "Calls answered (new) or taken over (resumed)",
                                     ["how"], registry=registry)
        self.calls = Counter("ivr_calls", "Calls that left the IVR, by outcome", ["outcome"], registry=registry)
        self.turn_latency = Histogram("ivr_turn_latency_seconds",
                                      "End of the caller's answer (last key, end of speech) to the next prompt",
                                      ["input"], buckets=LATENCY_BUCKETS, registry=registry)
        self.confidence = Histogram("ivr_recognition_confidence", "Confidence of each recognised answer",
                                    ["recogniser"], buckets=CONFIDENCE_BUCKETS, registry=registry)
        self.transfers = Counter("ivr_transfers", "Callers handed to a queue", ["queue", "reason"],
                                 registry=registry)
        self.journeys = Counter("ivr_journeys", "Journeys callers entered, by how each ended (containment)",
                                ["journey", "outcome"], registry=registry)
        self.ari_errors = Counter("ivr_ari_errors", "Failed ARI requests, by error class", ["error"],
                                  registry=registry)
        registry.register(RedisErrors())
        if process:
            ProcessCollector(registry=registry)
        self._outcome = LabelCap(label_limit, CALL_OUTCOMES)
        self._queue = LabelCap(label_limit)
        self._reason = LabelCap(label_limit)
        self._journey = LabelCap(label_limit)
        self._journey_outcome = LabelCap(label_limit, JOURNEY_OUTCOMES)
        self._recogniser = LabelCap(label_limit)
        self._error = LabelCap(label_limit)
        self._calls: dict[str, _Call] = {}
        for how in ("new", "resumed"):
            self.calls_started.labels(how)  # present (at 0) from the first scrape
        for outcome in CALL_OUTCOMES:
            self.calls.labels(outcome)

    # --- a controller observer ------------------------------------------------------

    def __call__(self, session: CallSession, notice: note.Notice) -> None:
        try:
            self._on(session, notice)
        except Exception:  # inline in the call's task: a metrics bug must never take the call down
            log.exception("call %s: metrics failed on %s", session.channel_id, type(notice).__name__)

    def _on(self, session: CallSession, notice: note.Notice) -> None:
        match notice:
            case note.CallStarted():
                self._begin(session, _Call(CallFacts()), "new")
            case note.CallResumed(state):
                self._begin(session, _Call(CallFacts.from_path(state)), "resumed")
            case note.KeyPressed():
                if (call := self._calls.get(session.channel_id)) is not None:
                    call.answered_at, call.answered_by, call.taken = self.clock(), "keys", False
            case note.SpeechHeard(ended):
                if isinstance(ended.event, ev.Speech):
                    language = session.state.language if session.state is not None else ""
                    recogniser = self._recogniser(self.recognisers.get(language, language))
                    self.confidence.labels(recogniser).observe(ended.event.confidence)
                call = self._calls.get(session.channel_id)
                if call is not None and ended.speech_end is not None:  # the wait starts where the voice ended
                    call.answered_at = self.clock() - max(0.0, ended.at - ended.speech_end)
                    call.answered_by, call.taken = "speech", False
            case note.StepTaken(step, turns):
                if (call := self._calls.get(session.channel_id)) is not None:
                    call.facts.take(turns, step.state)
                    if call.answered_at is not None and any(turn.kind in ANSWERS for turn in turns):
                        call.taken = True
            case note.PromptStarted(playback_id):
                call = self._calls.get(session.channel_id)
                if call is not None and call.taken and call.answered_at is not None \
                        and any(playing == playback_id for playing, _ in session.playing):
                    self.turn_latency.labels(call.answered_by).observe(max(0.0, self.clock() - call.answered_at))
                    call.answered_at, call.taken = None, False
            case note.Transferred(transfer):
                self.transfers.labels(self._queue(transfer.queue), self._reason(transfer.reason)).inc()
                self._end(session, "transferred")
            case note.HungUp(outcome):
                self._end(session, outcome or "ended")
            case note.CallerLeft():
                self._end(session, "caller_hangup")

    def _begin(self, session: CallSession, call: _Call, how: str) -> None:
        if session.channel_id not in self._calls:
            self.calls_started.labels(how).inc()
        self._calls[session.channel_id] = call
        self.calls_in_progress.set(len(self._calls))

    def _end(self, session: CallSession, outcome: str) -> None:
        call = self._calls.pop(session.channel_id, None)
        self.calls_in_progress.set(len(self._calls))
        if call is None:
            return  # told of the call only now (never started here): counted by the controller it began on
        self.calls.labels(self._outcome(outcome)).inc()
        for journey in call.facts.journeys:
            self.journeys.labels(self._journey(journey.journey), self._journey_outcome(journey.outcome)).inc()

    # --- hooks where errors happen --------------------------------------------------

    def ari_error(self, error: AriError) -> None:
        """`AriClient(on_error=...)`: one failed ARI request."""
        self.ari_errors.labels(self._error(type(error).__name__)).inc()


class RedisErrors(Collector):
    """`ivr_redis_errors_total{use}`: what the Redis guards of this process counted (`ivr.redisguard`)."""

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("ivr_redis_errors", "Redis commands that failed, by what they were for",
                                     labels=["use"])
        for what, count in sorted(redisguard.failures().items()):
            family.add_metric([re.sub(r"[^A-Za-z0-9]+", "_", what)], count)
        yield family


class EventSource(Protocol):
    """What the metrics read of the ARI events websocket (`ivr.ari.EventStream`)."""

    @property
    def connected(self) -> bool: ...

    connections: int


class StreamCollector(Collector):
    """`ivr_ari_connected`, `ivr_ari_reconnects_total`: read from the events websocket at each scrape."""

    def __init__(self, stream: EventSource) -> None:
        self.stream = stream

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("ivr_ari_connected", "1 while the ARI events websocket is connected",
                                value=1 if self.stream.connected else 0)
        yield CounterMetricFamily("ivr_ari_reconnects", "Times the ARI events websocket connected again",
                                  value=max(0, self.stream.connections - 1))


class _Both(Collector):
    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def metrics_app(metrics: Metrics, stream: EventSource) -> web.Application:
    """The endpoint Prometheus scrapes: GET /metrics, in Prometheus's text format."""
    scraped = CollectorRegistry()
    scraped.register(_Both(metrics.registry, StreamCollector(stream)))

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(scraped), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/metrics", scrape)])
    return app
