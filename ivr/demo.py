"""`ivr demo`: the whole system on one machine, no PBX needed.

Starts a private Redis (unless IVR_REDIS_URL is set), the ARI simulator with
the queues of `asterisk-conf/queues.conf`, and the controller with the
insurer backend over a freshly seeded sample book, the routing rules and
caller history; then places a few scripted calls (as the book's personas)
through the shipped flows and prints each call's turns as they happen: what
the caller heard, what they did, where they were routed and by which rule.
It ends with the `ivr report` of those calls.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import tempfile
import time
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ivr.application import build, serve
from ivr.config import Settings
from ivr.controller import notices as note
from ivr.controller.session import CallSession
from ivr.engine import actions as act
from ivr.policyadmin.seed import seed_book
from ivr.prompts import PromptCatalog, load_prompts
from ivr.redis_server import private_redis
from ivr.sim import SimulatorConfig, parse_queues_conf, start_simulator

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DemoCall:
    """A caller: what they wait to hear, then which keys they press."""

    title: str
    ani: str
    moves: tuple[tuple[str, str], ...]  # (prompt key heard, keys pressed)


DEMO_CALLS = (  # callers are personas of the sample book (ivr/policyadmin/seed.py)
    DemoCall("policy status by keypad", "+15550101",
             (("main.menu", "1"), ("verify.dob", "19800531"), ("policy.what_next", "9"), ("main.anything_else", "2"))),
    DemoCall("failed payment: routed to the payment journey first, retried now", "+15550102",
             (("verify.dob", "19800531"), ("payment.offer", "1"), ("main.anything_else", "2"))),
    DemoCall("cancellation: too expensive, accepts a downgrade", "+15550103",
             (("main.menu", "4"), ("verify.dob", "19800531"), ("cancel.reason", "2"), ("cancel.downgrade", "1"))),
    DemoCall("asks for a person straight away", "+15550104", (("main.menu", "0"),)),
    DemoCall("orphan policy: the agent has left, straight to the orphan desk", "+15550106", ()),
)


def placeholder_audio(prompts: PromptCatalog, directory: Path, seconds_per_char: float = 0.0) -> Path:
    """Stand-in prompts laid out as built prompts are (`ivr/<lang>/<key>.wav`): a soft 400 Hz hum.

    Used where real prompt audio is not needed (DTMF tests, the load benchmark);
    with `seconds_per_char` a prompt lasts about as long as its text would. Not
    silence: a caller hearing a silent prompt hears dead air, and the tests
    measure dead air by what is audible.
    """
    for language, texts in prompts.texts.items():
        folder = directory / "ivr" / language
        folder.mkdir(parents=True, exist_ok=True)
        for key, text in texts.items():
            seconds = max(0.3, len(text.text) * seconds_per_char)
            with wave.open(str(folder / f"{key}.wav"), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(8000)
                out.writeframes(_hum(int(8000 * seconds)))
    return directory


def _hum(samples: int, amplitude: int = 1000) -> bytes:
    wave_form = array("h", (int(amplitude * math.sin(2 * math.pi * 400 * n / 8000)) for n in range(20)))
    return (wave_form * (samples // 20 + 1))[:samples].tobytes()


class TurnPrinter:
    """Prints each call's new turns as the engine takes them, in the words of the call's release."""

    def __init__(self, out: TextIO):
        self.out = out
        self.labels: dict[str, str] = {}

    def __call__(self, session: CallSession, notice: note.Notice) -> None:
        label = self.labels.get(session.channel_id, session.channel_id)
        match notice:
            case note.CallStarted(call):
                self._routing(label, call.get("routing") or {})
            case note.StepTaken():
                self._step(label, session, notice)
            case note.Transferred(transfer):
                self._line(label, f"☎  queued for {transfer.queue} (reason {transfer.reason}, "
                                  f"priority {transfer.priority})")
            case note.CallerLeft(why):
                self._line(label, f"■  caller hung up ({why})")

    def _routing(self, label: str, routing: dict[str, Any]) -> None:
        decisions = [("at call start", routing.get("start"))]
        decisions += [(f"if they ask about {intent}", d) for intent, d in (routing.get("intents") or {}).items()]
        for when, decision in decisions:
            if decision:
                self._line(label, f"🧭 {when}: rule {decision['rule']} → {decision['to']} ({decision['reason']})")

    def _step(self, label: str, session: CallSession, notice: note.StepTaken) -> None:
        for turn in notice.turns:
            if turn.kind in ("input", "confirm"):
                self._line(label, f"👤 {turn.heard or ''} → {turn.matched or 'not understood'}")
            elif turn.kind in ("noinput", "nomatch", "escape"):
                self._line(label, f"✗  {turn.kind} {turn.detail or ''}")
            elif turn.kind == "backend":
                self._line(label, f"⚙  {turn.detail} → {turn.matched}")
            elif turn.kind == "hangup":
                self._line(label, f"■  ended: {turn.matched}")
        release = session.release
        if release is None:  # set by the call's first item, before any step is taken
            return
        for action in notice.step.actions:
            if isinstance(action, act.Play):
                for prompt in action.prompts:
                    text = release.prompts.render(action.language, prompt.key, prompt.values)
                    self._line(label, f"🔊 {text}")

    def _line(self, label: str, text: str) -> None:
        print(f"[{label}] {text}", file=self.out, flush=True)


async def run_demo(out: TextIO = sys.stdout, calls: tuple[DemoCall, ...] = DEMO_CALLS) -> int:
    redis_url = os.environ.get("IVR_REDIS_URL")
    if redis_url:
        return await _run(redis_url, out, calls)
    with private_redis() as url:
        print(f"private Redis at {url}", file=out)
        return await _run(url, out, calls)


async def _run(redis_url: str, out: TextIO, calls: tuple[DemoCall, ...]) -> int:
    prompts, _ = load_prompts(ROOT / "prompts")
    with tempfile.TemporaryDirectory(prefix="ivr-demo-") as tmp:
        sounds = await asyncio.to_thread(_prompt_audio, prompts, Path(tmp) / "sounds")
        queues = parse_queues_conf((ROOT / "asterisk-conf" / "queues.conf").read_text())
        config = SimulatorConfig(sounds_dirs=[sounds], queues=queues)
        sim = await start_simulator(config)
        settings = Settings(ari_url=sim.base_url, ari_user=config.username, ari_password=config.password,
                            redis_url=redis_url, http_port=0, flows_dir=ROOT / "flows",
                            prompts_dir=ROOT / "prompts", sounds_dir=sounds / "ivr",
                            book_path=Path(tmp) / "book.sqlite")
        seeded = seed_book(settings.book_path)
        print(f"sample book: {seeded.counts['persons']} people, {seeded.counts['policies']} policies", file=out)
        started = time.time()
        printer = TurnPrinter(out)
        application = await build(settings, observers=[printer])  # the insurer's systems over the seeded book
        stop, ready = asyncio.Event(), asyncio.Event()
        controller = asyncio.create_task(serve(application, stop=stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 15)
        print(f"simulator on {sim.base_url}, controller connected; placing {len(calls)} calls\n", file=out)
        failures = 0
        for call in calls:
            failures += not await _place(sim, printer, call, out)
        stop.set()
        await controller  # the history recorder's last writes included
        await sim.stop()
        await _print_report(redis_url, started, out)
    print(f"\n{len(calls) - failures} of {len(calls)} demo calls went as scripted", file=out)
    return 1 if failures else 0


async def _print_report(redis_url: str, since: float, out: TextIO) -> None:
    from ivr import report, sealing
    from ivr.config import Settings
    from ivr.history import CallerHistory

    history = CallerHistory.from_url(redis_url, sealing.for_settings(Settings()))
    try:
        records = await history.records(since - 1, time.time() + 1)
    finally:
        await history.close()
    print("\n--- ivr report for these calls\n" + report.render(report.build(records, since, time.time())), file=out)


def _prompt_audio(prompts: PromptCatalog, directory: Path) -> Path:
    try:
        from ivr.speech.tts import build_prompts
    except ImportError:
        return placeholder_audio(prompts, directory, seconds_per_char=0.02)
    build_prompts(ROOT / "prompts", directory / "ivr", list(prompts.texts))
    return directory


async def _place(sim, printer: TurnPrinter, demo: DemoCall, out: TextIO) -> bool:
    print(f"--- {demo.title} (caller {demo.ani})", file=out, flush=True)
    call = sim.sim.inbound_call(ani=demo.ani, exten="100")
    printer.labels[call.channel_id] = demo.ani[-4:]
    try:
        for prompt, keys in demo.moves:
            await call.wait_until(lambda c, prompt=prompt: any(p.media_uri.endswith(prompt) for p in c.prompts), timeout=60)
            printer._line(demo.ani[-4:], f"☎  caller presses {keys}")
            await call.press(keys, interval=0.15)
        await call.wait_until(lambda c: c.ended.is_set() or c.continued is not None, timeout=60)
    except TimeoutError as exc:
        print(f"!!! demo call stuck: {exc}", file=out)
        return False
    await asyncio.sleep(0.3)
    print(file=out)
    return True
