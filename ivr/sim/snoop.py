"""Snoop channels: ``POST /channels/{id}/snoop`` and ``/snoop/{snoopId}``.

What the ``snoop-externalmedia-during-play`` trace shows, and so what the
simulator does:

- the response (200) is the new channel, already ``Up``, in
  ``default``/``s``/1 with no application yet; its StasisStart follows at
  once, with ``app_data`` ``<app>,<appArgs>`` and ``args`` = appArgs split on
  the comma; its name is ``Snoop/<spied id>-<counter>``;
- the app holds it only through Stasis: no ChannelCreated before, no
  STASISSTATUS varset, nothing after its StasisEnd;
- with ``spy=in`` it carries what the spied channel receives from its far
  end (the caller's voice), also while a channel playback plays on the spied
  channel (50 pkt/s of caller, no prompt);
- when the spied channel goes, each snoop leaves its bridge (BRIDGEPEER='',
  ChannelLeftBridge) and Stasis (StasisEnd), with no ChannelHangupRequest,
  before the spied channel's ChannelDestroyed (the trace has them 5 ms
  after the caller's ``;2`` half is destroyed; the simulator does it at once,
  order kept); afterwards ``GET`` says 404.

Only ``spy=in`` without whisper was recorded: every other direction is
refused, so a controller cannot come to rely on audio no trace shows.
"""
from __future__ import annotations

from .errors import AriError

TRACED_SPY = "in"
NO_WHISPER = ("", "none")


def check_request(app: str, spy: str | None, whisper: str | None) -> None:
    """Refuse (loudly) what no trace shows; ``app`` is required by the API docs."""
    if not app:
        raise AriError(400, "Application name is required")
    if (spy or "none") != TRACED_SPY:
        raise AriError(501, f"Snoop with spy={spy or 'none'} is not simulated: no recorded trace shows it "
                            f"(only spy=in)")
    if (whisper or "") not in NO_WHISPER:
        raise AriError(501, f"Snoop with whisper={whisper} is not simulated: no recorded trace shows it "
                            f"(only whisper=none)")


def snoop_name(spied_id: str, suffix: str) -> str:
    return f"Snoop/{spied_id}-{suffix}"
