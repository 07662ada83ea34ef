"""`ivr serve` before its first call: settings in --help, log format, and no prompt without audio."""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import pytest

from ivr import cli, logsetup
from ivr.config import Settings
from ivr.controller import promptaudio
from ivr.controller.promptaudio import PromptAudioError, ensure_prompt_audio
from ivr.speech.audio import wav_bytes

PROMPTS = """\
main:
  hello: Hello, and welcome.
  due: "Your premium of {amount:money} is due."
"""
NO_SYNTHESISER = "espeak-ng is not installed"


@pytest.fixture
def root_logging():
    """`ivr serve` replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_serve_help_lists_every_setting_with_its_default(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = capsys.readouterr().out
    for name in Settings.model_fields:
        line = next((ln for ln in text.splitlines() if ln.strip().startswith(f"IVR_{name.upper()} ")), None)
        assert line is not None, f"IVR_{name.upper()} missing from `ivr serve --help`"
        assert "(default: " in line
    assert "IVR_LOG_FORMAT  (default: text; one of text, json)" in text
    assert "IVR_CONFIG" in text and "--log-format {text,json}" in text


def test_log_format_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("IVR_LOG_FORMAT", "JSON")
    assert Settings().log_format == "json"


def test_json_log_lines(root_logging) -> None:
    out = io.StringIO()
    logsetup.configure("INFO", "json", out)
    logging.getLogger("ivr.test").info("call %s ended", "c-1", extra=logsetup.fields(event="call_end", queue=None))
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("ivr.test").exception("failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "call c-1 ended" and first["event"] == "call_end" and "queue" not in first
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def _prompts(tmp_path: Path, recorded: tuple[str, ...] = ()) -> tuple[Path, Path]:
    prompts, sounds = tmp_path / "prompts", tmp_path / "sounds"
    prompts.mkdir()
    (prompts / "en.yaml").write_text(PROMPTS)
    for key in recorded:
        target = prompts / "recorded" / "en" / f"{key}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(wav_bytes(b"\0\0" * 800))
    return prompts, sounds


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_missing_prompt_audio_is_built_at_start_and_said(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="ivr.controller.promptaudio")
    prompts, sounds = _prompts(tmp_path)
    found = ensure_prompt_audio(prompts, sounds)
    assert (sounds / "en" / "main.hello.wav").stat().st_size > 1000
    assert found.ready == ["en/main.hello"] and found.per_call == ["en/main.due"]
    assert "have no audio" in caplog.text and "en/main.hello" in caplog.text and "built 1" in caplog.text
    caplog.clear()
    ensure_prompt_audio(prompts, sounds)  # the next start finds everything and builds nothing
    assert "have no audio" not in caplog.text and "1 prompt(s) ready" in caplog.text


def test_without_a_synthesiser_prompts_with_call_data_refuse_the_start(tmp_path) -> None:
    prompts, sounds = _prompts(tmp_path, recorded=("main.hello",))
    with pytest.raises(PromptAudioError) as raised:
        ensure_prompt_audio(prompts, sounds, problem=lambda: NO_SYNTHESISER)
    message = str(raised.value)
    assert "1 prompt(s) would play in silence: en/main.due" in message and NO_SYNTHESISER in message
    assert "recorded/<lang>/<key>.wav" in message
    assert not (sounds / "en").exists(), "nothing half-built"


def test_without_a_synthesiser_recordings_are_enough_in_sounds_directory_mode(tmp_path) -> None:
    prompts, sounds = _prompts(tmp_path, recorded=("main.hello", "main.due"))
    found = ensure_prompt_audio(prompts, sounds, problem=lambda: NO_SYNTHESISER)
    assert found.ready == ["en/main.due", "en/main.hello"] and (sounds / "en" / "main.due.wav").is_file()
    with pytest.raises(PromptAudioError, match="IVR_MEDIA_BASE_URL"):  # served per call: the values are needed
        ensure_prompt_audio(prompts, sounds, "http://127.0.0.1:8090/media", problem=lambda: NO_SYNTHESISER)


def test_ivr_serve_refuses_to_start_with_a_clear_error(tmp_path, monkeypatch, capfd, root_logging) -> None:
    prompts, sounds = _prompts(tmp_path)
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(prompts))
    monkeypatch.setenv("IVR_SOUNDS_DIR", str(sounds))
    monkeypatch.setattr(promptaudio, "synthesiser_problem", lambda: NO_SYNTHESISER)
    assert cli.main(["serve", "--log-format", "json"]) == 1
    [line] = [json.loads(ln) for ln in capfd.readouterr().err.splitlines() if ln.startswith("{")]
    assert line["level"] == "ERROR" and line["message"].startswith("not starting: 2 prompt(s) would play in silence")


def test_ivr_serve_refuses_a_recogniser_that_cannot_work(monkeypatch, capfd, root_logging) -> None:
    monkeypatch.setenv("IVR_RECOGNISERS", '{"zh": "pocketsphinx"}')
    assert cli.main(["serve", "--log-format", "json"]) == 1
    lines = [json.loads(ln) for ln in capfd.readouterr().err.splitlines() if ln.startswith("{")]
    assert lines[-1]["level"] == "ERROR"
    assert lines[-1]["message"] == "not starting: recognisers: pocketsphinx has only an English model, not 'zh'"
