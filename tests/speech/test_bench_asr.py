"""`ivr bench asr --quick` end to end: the JSON report has every section, with sane values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pocketsphinx")

from .sounds import ROOT, fsdd_dir, shared_dir  # noqa: E402


def _unit(value: object) -> bool:
    return isinstance(value, float | int) and 0 <= value <= 1


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    for tool in ("flite", "espeak-ng"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            pytest.skip(f"{tool} is not installed")
    out = tmp_path_factory.mktemp("bench") / "asr.json"
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "bench", "asr", "--quick", "--shared", str(shared_dir()),
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    written = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(done.stdout) == written  # the same JSON on stdout and in -o
    assert "task" in done.stderr and "pocketsphinx" in done.stderr  # the short summary for people
    return written


def _english(report: dict, kind: str) -> dict:
    section = report[kind]
    if "skipped" in section:
        pytest.skip(section["skipped"])
    return section


ENGLISH = ["pocketsphinx", "whisper"]


@pytest.mark.parametrize("kind", ENGLISH)
def test_choices_on_the_shipped_flows(report: dict, kind: str) -> None:
    choices = _english(report, kind)["choices"]
    assert "main_menu.menu" in choices["turns"] and "verify.ask_policy" not in choices["turns"]  # digits: below
    assert choices["utterances"] == 40
    assert _unit(choices["accuracy"]) and choices["accuracy_by_group"]["clean"] >= 0.5  # flite voices are easy
    assert set(choices["accuracy_by_group"]) == {"clean", "noise_20dB", "noise_10dB"}
    assert all(_unit(v) for v in choices["accuracy_by_voice"].values())
    oog = choices["out_of_grammar"]
    assert oog["tried"] > 0 and _unit(oog["false_accepts"]) and _unit(oog["false_accepts_without_confirmation"])
    latency = choices["latency_end_of_speech_to_result_s"]
    assert latency["plain_end_silence"] is None or latency["plain_end_silence"]["p50"] > 0


@pytest.mark.parametrize("kind", ENGLISH)
def test_confidence_rates_per_turn_type_on_held_out_voices(report: dict, kind: str) -> None:
    section = _english(report, kind)["confidence"]
    assert section["utterances"] > 0 and "flite:kal" in section["voices"] and "flite:slt" not in section["voices"]
    assert {t["type"] for t in section["turns"].values()} == {"choices", "yes_no", "digits"}
    for turn_type in ("choices", "yes_no", "digits"):
        rates = section["held_out"][turn_type]
        assert rates["in_grammar"] > 0 and rates["out_of_grammar"] > 0 and rates["silence_and_noise"] > 0
        for key in ("recognised_right", "out_of_grammar_accepted", "out_of_grammar_accepted_without_confirmation",
                    "silence_and_noise_accepted"):
            assert _unit(rates[key]), (turn_type, key)
        assert rates["out_of_grammar_accepted_without_confirmation"] <= rates["out_of_grammar_accepted"]
    assert sum(b["results"] for b in section["held_out"]["reliability"]) > 0
    assert any(line.startswith(f"{kind} confidence, choices") for line in report["summary"])


@pytest.mark.parametrize("kind", ENGLISH)
def test_digits_rtf_and_streams(report: dict, kind: str) -> None:
    sphinx = _english(report, kind)
    if fsdd_dir().is_dir():
        digits = sphinx["digits"]
        assert digits["strings"] == 8 and digits["turn"] == "verify.ask_policy"
        assert _unit(digits["string_accuracy"]) and _unit(digits["truth_in_nbest"])
        assert digits["truth_in_nbest"] >= digits["string_accuracy"]
        assert digits["digit_accuracy"] > 0.15  # far above chance (0.1) even on 64 digits
        if kind == "pocketsphinx":
            assert _unit(digits["without_oh_and_double"]["string_accuracy"])
    else:
        assert "skipped" in sphinx["digits"]
    assert 0 < sphinx["rtf"] < 1
    concurrency = sphinx["concurrency"]
    assert isinstance(concurrency["streams_per_core"], int) and concurrency["trials"]
    assert concurrency["turns_in_loop"] > 0


@pytest.mark.parametrize("kind", ENGLISH)
def test_task_success_through_the_engine(report: dict, kind: str) -> None:
    task = _english(report, kind)["task"]
    if not fsdd_dir().is_dir():
        assert "skipped" in task
        return
    assert task["flow"] == "verify.ask_policy" and task["callers"] == 8
    assert _unit(task["task_success"]) and sum(task["outcomes"].values()) == 8
    assert task["captured_by_voice_first_ask"] + task["captured_by_keypad_second_ask"] == pytest.approx(
        task["task_success"], abs=0.002)
    assert task["false_accepts_wrong_number_captured"] >= 0
    assert task["task_success"] >= 0.5  # the keypad fallback alone gets most callers through
    voice = _english(report, kind)["task_voice_only"]
    assert voice["callers"] == 8 and voice["captured_by_keypad_second_ask"] == 0
    assert voice["captured_by_voice_first_ask"] + voice["captured_by_voice_second_ask"] == pytest.approx(
        voice["task_success"], abs=0.002)


def test_whisper_says_where_its_time_goes(report: dict) -> None:
    whisper = _english(report, "whisper")
    assert whisper["model"]["load_seconds"] > 0 and whisper["model"]["process_rss_mb"] > 100
    decodes = whisper["choices"]["decodes"]
    assert decodes["per_turn"]["p50"] >= 1 and decodes["cpu_ms_each"]["p50"] > 0
    assert _unit(decodes["result_was_a_pause_decode"])


def test_goals_side_by_side(report: dict) -> None:
    goals = report["goals"]
    assert goals["targets"]["choices_clean"] == 0.97
    for kind in ENGLISH:
        if kind in goals:
            assert goals[kind]["measured"]["clean_voices"] >= (1 if report["settings"]["quick"] else 8)
            assert set(goals[kind]["met"]) == set(goals["targets"])


def test_end_of_speech_by_each_voice_detector(report: dict) -> None:
    section = report["endpoint"]
    for detector in ("webrtc", "silero", "both"):
        rates = section[detector]
        assert rates["clean"]["clips"] > 0 and _unit(rates["clean"]["missed"])
        assert set(rates["no_words"]) == {"silence", "line noise", "breathing", "hold music"}
    assert section["silero"]["no_words"]["hold music"] == 0  # music is not a caller


def test_vosk_is_measured_but_not_scored_on_english(report: dict) -> None:
    vosk = report["vosk"]
    if "skipped" in vosk:
        pytest.skip(vosk["skipped"])
    assert vosk["language"] == "ko" and "not measured" in vosk["english"]
    assert vosk["model_load_seconds"] > 0 and vosk["model_memory_mb"] > 0
    assert _unit(vosk["korean_phrases"]["accuracy"]) and vosk["korean_phrases"]["utterances"] > 0
    assert 0 < vosk["rtf"] < 1
    assert isinstance(vosk["concurrency"]["streams_per_core"], int)


def test_summary_and_settings(report: dict) -> None:
    assert report["settings"]["quick"] is True
    assert report["recognisers"]["pocketsphinx"] != "absent"
    assert report["summary"] and all(isinstance(line, str) for line in report["summary"])
    assert Path(report["settings"]["fsdd"] or "").name in ("fsdd", "")
