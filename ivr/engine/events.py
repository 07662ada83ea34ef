"""What happens on a call, as the engine sees it: one event per step.

The controller turns ARI events, recogniser results and backend replies into
these; the engine never sees telephony or time directly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Hypothesis(_Event):
    text: str
    confidence: float = Field(ge=0, le=1)


class Speech(_Event):
    """A final recognition result: best text, its confidence, and the runners-up."""

    type: Literal["speech"] = "speech"
    text: str
    confidence: float = Field(1.0, ge=0, le=1)
    alternatives: list[Hypothesis] = Field(default_factory=list)


class Dtmf(_Event):
    """One or more keys pressed (the controller usually sends one key per event)."""

    type: Literal["dtmf"] = "dtmf"
    digits: str = Field(pattern=r"^[0-9*#A-D]+$")


class NoInput(_Event):
    """The caller said and pressed nothing before the turn's timeout (or stopped keying)."""

    type: Literal["noinput"] = "noinput"


class NoMatch(_Event):
    """The recogniser heard speech but nothing in the turn's grammar (noise, other words)."""

    type: Literal["nomatch"] = "nomatch"


class Hangup(_Event):
    type: Literal["hangup"] = "hangup"


class BackendResult(_Event):
    type: Literal["backend"] = "backend"
    name: str
    outcome: str
    data: dict[str, Any] = Field(default_factory=dict)


Event = Annotated[Speech | Dtmf | NoInput | NoMatch | Hangup | BackendResult, Field(discriminator="type")]
