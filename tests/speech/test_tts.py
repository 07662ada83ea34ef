"""Prompt builds with pyttsx3 over espeak-ng: 8 kHz WAVs, hash cache, recorded overrides."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyttsx3")
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is not installed", allow_module_level=True)

from ivr.speech.audio import wav_bytes  # noqa: E402
from ivr.speech.tts import EspeakTts, TtsError, build_prompts, synthesize, voice_runs  # noqa: E402

EN = """common:
  hello: "Thank you for calling."
  bye: "Goodbye."
  mixed: "For English press 8. 中文服务请按9。"
  dynamic: "Your balance is {balance:money}."
"""
ZH = """common:
  hello: "感谢您的来电。"
"""


@pytest.fixture()
def prompts(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "en.yaml").write_text(EN, encoding="utf-8")
    (folder / "zh.yaml").write_text(ZH, encoding="utf-8")
    return folder


def wav_info(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path)) as handle:
        return handle.getframerate(), handle.getnchannels(), handle.getsampwidth(), handle.getnframes() / 8000


def test_build_renders_8k_wavs_and_skips_per_call_texts(prompts: Path, tmp_path: Path) -> None:
    out = tmp_path / "audio"
    report = build_prompts(prompts, out, ["en", "zh"])
    assert sorted(report.built) == ["en/common.bye", "en/common.hello", "en/common.mixed", "zh/common.hello"]
    assert report.per_call == ["en/common.dynamic"]
    for name in report.built:
        rate, channels, width, seconds = wav_info(out / f"{name}.wav")
        assert (rate, channels, width) == (8000, 1, 2) and 0.3 < seconds < 10
    assert (out / "manifest.json").exists()


def test_second_build_rebuilds_nothing_and_a_changed_text_only_itself(prompts: Path, tmp_path: Path) -> None:
    out = tmp_path / "audio"
    build_prompts(prompts, out, ["en", "zh"])
    stamp = (out / "en/common.hello.wav").stat().st_mtime_ns
    again = build_prompts(prompts, out, ["en", "zh"])
    assert again.built == [] and len(again.unchanged) == 4
    (prompts / "en.yaml").write_text(EN.replace("Goodbye.", "Goodbye, and take care."), encoding="utf-8")
    changed = build_prompts(prompts, out, ["en", "zh"])
    assert changed.built == ["en/common.bye"]
    assert (out / "en/common.hello.wav").stat().st_mtime_ns == stamp


def test_recorded_prompt_wins_over_tts(prompts: Path, tmp_path: Path) -> None:
    tone = (np.sin(2 * np.pi * 500 * np.arange(16000) / 16000) * 9000).astype("<i2").tobytes()
    recorded = prompts / "recorded" / "en" / "common.hello.wav"
    recorded.parent.mkdir(parents=True)
    recorded.write_bytes(wav_bytes(tone, rate=16000))  # a designer's 16 kHz take
    out = tmp_path / "audio"
    report = build_prompts(prompts, out, ["en"])
    assert report.recorded == ["en/common.hello"] and "en/common.hello" not in report.built
    rate, _, _, seconds = wav_info(out / "en/common.hello.wav")
    assert rate == 8000 and seconds == pytest.approx(1.0, abs=0.01)
    assert build_prompts(prompts, out, ["en"]).recorded == []  # unchanged recording: not copied again


def test_mixed_script_is_spoken_in_two_voices() -> None:
    runs = voice_runs("For English press 8. 中文服务请按9。", "en")
    assert [voice for voice, _ in runs] == ["en-us", "cmn-latn-pinyin"]


def test_mandarin_voice_and_wrong_voice_names() -> None:
    tts = EspeakTts()
    assert len(tts.render("您好", "cmn-latn-pinyin")) > 8000  # > 0.5 s of audio
    with pytest.raises(TtsError):
        tts.render("hello", "no-such-voice")


def test_synthesize_per_call_text_is_cached(tmp_path: Path) -> None:
    first = synthesize("Your balance is 12 dollars.", "en", cache=tmp_path)
    files = list(tmp_path.glob("*.wav"))
    assert len(files) == 1 and first[:4] == b"RIFF"
    stamp = files[0].stat().st_mtime_ns
    assert synthesize("Your balance is 12 dollars.", "en", cache=tmp_path) == first
    assert files[0].stat().st_mtime_ns == stamp


def test_a_crashed_synthesiser_is_started_again_and_the_render_tried_again():
    """espeak-ng is native code: a crash inside it (SIGSEGV) costs a retry, not the process."""
    import os
    import signal

    from ivr.speech.tts import VOICES, IsolatedTts

    isolated = IsolatedTts()
    try:
        pool = isolated._worker()
        os.kill(pool.submit(os.getpid).result(timeout=60), signal.SIGSEGV)  # the worker dies as espeak took it down
        audio = isolated.render("hello", VOICES["en"])
        assert len(audio) > 1000
        assert pool is not isolated._worker()  # a new worker took over
    finally:
        isolated.close()
