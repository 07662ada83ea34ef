"""Which language a call starts in, from what is known before anyone speaks.

In order, the first one the prompts exist in wins:

1. the caller's record (`caller_language`: the policyholder the caller
   number identified at call start, put in the call data by the routing
   step, `ivr/routing/router.py`), because it is what that person speaks;
2. the dialled number (`dnis`) where the deployer maps it to a language
   (`IVR_DNIS_LANGUAGES`, e.g. a Chinese service line), for callers the
   number does not identify;
3. the channel's language (`language`, Asterisk's CHANNEL(language)).

None means "the flow's first language". The engine calls this for a call
started without an explicit language (it has no settings, so it knows no
dialled-number map); the controller calls it with the map. Later in the
call the language follows the caller's own choice (a flow setting
`language`, "press 9") and the record of a caller identified by policy
number (`flows/verify.yaml`). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ivr.prompts import LANGUAGES


def start_language(call: Mapping[str, Any], dnis_languages: Mapping[str, str] | None = None) -> str | None:
    """The language to start `call` in (call data as the controller builds it), or None for the flow's first."""
    dialled = dnis_language(str(call.get("dnis") or ""), dnis_languages or {})
    for candidate in (call.get("caller_language"), dialled, call.get("language")):
        if candidate in LANGUAGES:
            return str(candidate)
    return None


def dnis_language(dnis: str, dnis_languages: Mapping[str, str]) -> str | None:
    """The language mapped to a dialled number; numbers compare by their digits only
    (`+1 800 555-0188` is `18005550188`), since dialplans and settings write them differently."""
    digits = _digits(dnis)
    if not digits:
        return None
    for number, language in dnis_languages.items():
        if _digits(number) == digits:
            return language
    return None


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)
