"""What the caller hears, for dead-air measurement: ``SimCall.longest_dead_air``.

Dead air is a stretch in which the caller hears no prompt audio and is not
speaking.  The first tests set a call's record by hand (times are simulated
seconds, the clock stopped at 30); the last drives a call through the
simulator: an ARI prompt, a bridge playback, MOH and the caller's speech.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sim_audio import tone, write_wav
from sim_client import Ari

from ivr.sim import DeadAir, PromptRecord, QueueOutcome, SimCall, Simulator, SimulatorConfig
from ivr.sim.audio_in import AudioIn
from ivr.sim.model import DialplanLocation
from ivr.sim.simcall import longest_gap

NOW = 30.0


@pytest.mark.parametrize("covered,start,end,expected", [
    ([], 0.0, 5.0, (0.0, 5.0)),
    ([(1.0, 2.0), (4.0, 4.5)], 0.0, 5.0, (2.0, 4.0)),
    ([(0.5, 3.0), (1.0, 2.0), (2.5, 4.0)], 0.0, 5.0, (4.0, 5.0)),      # overlapping, nested
    ([(-3.0, 1.0), (3.5, 9.0)], 0.0, 5.0, (1.0, 3.5)),                  # spans beyond both ends
    ([(0.0, 5.0)], 0.0, 5.0, (0.0, 0.0)),                               # never silent
])
def test_longest_gap(covered, start, end, expected):
    assert longest_gap(covered, start, end) == DeadAir(*expected)


@pytest.fixture
def call(tmp_path: Path) -> SimCall:
    """A call answered at 10, its clock stopped at NOW."""
    sim = Simulator(SimulatorConfig(recordings_dir=tmp_path / "rec"))
    sim.clock.now = lambda: NOW  # type: ignore[method-assign]
    ch = sim.new_channel(name="PJSIP/trunk-00000001", state="Up", kind="trunk",
                         location=DialplanLocation("ivr-inbound", "100"))
    ch.audio_in = AudioIn(sending=True)
    call = SimCall(sim, ch, kind="inbound", exten="100")
    call.answered_at = 10.0
    return call


def speaks(call: SimCall, start: float, seconds: float) -> None:
    assert call.channel.audio_in is not None
    call.channel.audio_in.schedule(tone(seconds, [(0.0, seconds)]), start)


def test_from_answer_to_hangup_prompts_moh_and_speech_fill_the_call(call):
    call.prompts.append(PromptRecord("sound:welcome", "p1", 10.5, 13.0, "done", audio_from=10.6))
    speaks(call, 14.0, 1.0)                                              # 15.0 .. 18.5 is silent
    call.prompts.append(PromptRecord("sound:menu", None, 18.5, 20.0, "done", audio_from=18.5))
    call.moh_spans.append([21.0, 24.0])
    call.ended_at = 25.0
    assert call.longest_dead_air() == DeadAir(15.0, 18.5)
    assert call.longest_dead_air(start=16.0) == DeadAir(16.0, 18.5)


def test_unheard_prompts_do_not_count(call):
    call.prompts.append(PromptRecord("sound:http://x/long-download.wav", "p1", 10.0, 14.0, "done",
                                     audio_from=12.0))                  # PlaybackStarted before the fetch
    call.prompts.append(PromptRecord("sound:missing", "p2", 14.0, 14.0, "failed"))
    call.prompts.append(PromptRecord("sound:silence/3", None, 14.0, 17.0, "done"))
    call.ended_at = 18.0
    assert call.longest_dead_air() == DeadAir(14.0, 18.0)
    assert call.longest_dead_air(start=11.0) == DeadAir(14.0, 18.0)     # 11..12 is shorter


def test_ends_at_the_queue_hand_off_and_runs_to_now_otherwise(call):
    call.prompts.append(PromptRecord("sound:welcome", "p1", 10.0, 12.0, "done", audio_from=10.0))
    call.moh_spans.append([13.0, None])                                  # MOH still playing: heard to now
    assert call.longest_dead_air() == DeadAir(12.0, 13.0)
    call.moh_spans.clear()
    assert call.longest_dead_air() == DeadAir(12.0, NOW)
    call.queue = QueueOutcome("claims", entered_at=16.0)
    assert call.longest_dead_air() == DeadAir(12.0, 16.0)


def test_speech_counts_only_where_voiced_and_until_the_caller_hangs_up(call):
    audio_in = call.channel.audio_in
    assert audio_in is not None
    audio_in.schedule(tone(4.0, [(1.0, 2.0)]), 10.0)                     # voiced 11..12 only
    audio_in.cut(11.5)                                                   # the caller hung up at 11.5
    call.ended_at = 11.5
    assert call.longest_dead_air() == DeadAir(10.0, 11.0)


def test_keying_a_number_is_the_caller_busy_not_dead_air(call):
    """A caller typing eleven digits after a prompt is not sitting in silence."""
    call.prompts.append(PromptRecord("sound:ask_number", "p1", 10.0, 12.0, "done", audio_from=10.0))
    call.keyed.append((12.3, 15.4))
    call.prompts.append(PromptRecord("sound:readback", "p2", 17.9, 20.0, "done", audio_from=17.9))
    call.ended_at = 20.0
    assert call.longest_dead_air() == DeadAir(15.4, 17.9)


async def test_through_the_simulator(simulator, session, prompt_config, tmp_path):
    """Prompt on the caller, then a bridge playback, then MOH, speech between, hang-up."""
    running = await simulator(prompt_config)
    ari = Ari(running, session)
    events = await ari.events()
    call = running.sim.inbound_call(ani="+15550101", exten="100")
    cid = (await events.next("StasisStart"))["channel"]["id"]
    await call.silence(0.4)
    await ari.call("POST", f"/channels/{cid}/play", media="sound:prompt")
    await events.next("PlaybackFinished", timeout=3)
    await call.say(write_wav(tmp_path / "yes.wav", tone(0.5, [(0.0, 0.5)], freq=300)))
    _, bridge = await ari.call("POST", "/bridges", type="mixing")
    await ari.call("POST", f"/bridges/{bridge['id']}/addChannel", channel=cid)
    await call.silence(0.3)
    await ari.call("POST", f"/bridges/{bridge['id']}/play", media="sound:prompt")
    await events.next("PlaybackFinished", timeout=3)
    await call.silence(0.9)                                              # the longest: 0.9 s
    await ari.call("POST", f"/channels/{cid}/moh")
    await call.silence(1.2)
    await call.hangup()
    kinds = [(p.media_uri, p.audio_from is not None) for p in call.prompts]
    assert kinds == [("sound:prompt", True), ("sound:prompt", True)]
    assert call.moh_spans and call.moh_spans[0][1] is None
    dead = call.longest_dead_air()
    assert dead.seconds == pytest.approx(0.9, abs=0.06)
    assert dead.start == pytest.approx(call.prompts[1].finished_at, abs=0.02)
