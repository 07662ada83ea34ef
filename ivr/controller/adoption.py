"""What the controller does with the calls Asterisk still holds for it after a (re)connect, as pure decisions.

After a restart, or events lost while disconnected, the controller lists the
channels its application holds and settles each one: a session whose caller
left ends, a session still held checks its prompts, and a channel no session
has is adopted. Adopting it depends on what it is and what was saved:

- a helper leg (snoop or externalMedia, its id names its call) that is not a
  live leg of its call's listener was left by a controller that died: hang it up;
- a caller never saved (answered just before a restart, or its StasisStart
  was lost) starts afresh;
- a caller saved as transferred or ended is left alone (one handed to a
  person stays subscribed, and must not be resumed from the queue);
- a running caller whose release is still loaded resumes at its saved step;
  one whose release is gone goes to a person rather than into silence.

Events of a channel arriving before its session exists (a key pressed
during a takeover) are kept, a few per channel, until the call is adopted.

The facts go in, a typed decision comes out; no I/O. `ivr.controller.app.Controller`
gathers the facts (ARI, the call store, the catalog) and carries the decision out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ivr.ari import event_types as ari
from ivr.ari.models import Channel
from ivr.engine.state import CallState

HELPER_NAMES = ("Snoop/", "UnicastRTP/")  # channels Asterisk makes for a snoop and for externalMedia


@dataclass(frozen=True, slots=True)
class Reconnect:
    """How each channel is settled after a (re)connect."""

    gone: tuple[str, ...]  # sessions whose caller left while we were away: they end
    held: tuple[str, ...]  # sessions Asterisk still holds: prompts may have ended meanwhile
    unknown: tuple[str, ...]  # channels held with no session: to adopt


def reconnect(held: Sequence[str], sessions: Iterable[str]) -> Reconnect:
    """Sessions in their own order, unknown channels in the order Asterisk listed them."""
    holding, known = set(held), dict.fromkeys(sessions)
    return Reconnect(gone=tuple(c for c in known if c not in holding),
                     held=tuple(c for c in known if c in holding),
                     unknown=tuple(c for c in dict.fromkeys(held) if c not in known))


def is_caller(channel: Channel) -> bool:
    """A caller's channel, not one of the helper channels Asterisk makes for our snoops and media legs."""
    return not channel.is_external_media and not channel.name.startswith(HELPER_NAMES)


# --- facts about one held channel no session has ---------------------------------------------


@dataclass(frozen=True, slots=True)
class HelperLeg:
    """A snoop or externalMedia leg whose id names its call."""

    live: bool  # one of the legs its call's listener uses now


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller's channel, with what was saved of its call."""

    saved: CallState | None  # None: never saved
    in_session: bool = False  # its StasisStart came while we looked: a session has it
    release_known: bool = False  # the saved state's release is still loaded


Facts = HelperLeg | Caller


# --- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leave:
    why: str


@dataclass(frozen=True, slots=True)
class HangUpLeg:
    """A leg left by a controller that died: nobody listens to it."""


@dataclass(frozen=True, slots=True)
class StartFresh:
    """Start the call as a new one, from its Stasis arguments."""


@dataclass(frozen=True, slots=True)
class ResumeCall:
    state: CallState


@dataclass(frozen=True, slots=True)
class HandOff:
    """Resuming is not safe: the caller hears the transfer notice and goes to a person."""

    state: CallState
    detail: str


Decision = Leave | HangUpLeg | StartFresh | ResumeCall | HandOff


def decide(facts: Facts) -> Decision:
    """What to do with one held channel no session has."""
    if isinstance(facts, HelperLeg):
        return Leave("a live leg of its call") if facts.live else HangUpLeg()
    state = facts.saved
    if facts.in_session:
        return Leave("a session has the call")
    if state is None:
        return StartFresh()
    if state.status != "running":
        return Leave(f"the call is {state.status}")
    if not facts.release_known:
        return HandOff(state, f"flows changed since the call began (release {state.release})")
    return ResumeCall(state)


# --- events before the call is known ---------------------------------------------------------

Keeping = Literal["keep", "full", "forget"]


def keep_unclaimed(event: object, held: int, per_channel: int) -> Keeping:
    """An event of a channel no session has yet: kept while fewer than `per_channel` are;
    the channel's end forgets them all (it will never be adopted)."""
    if isinstance(event, (ari.StasisEnd, ari.ChannelDestroyed)):
        return "forget"
    return "keep" if held < per_channel else "full"
