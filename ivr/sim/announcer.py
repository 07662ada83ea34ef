"""Bridge playbacks: ``POST /bridges/{id}/play`` and the Announcer channel that plays them.

What the ``bridge-play-with-externalmedia`` trace shows, and so what the
simulator does:

- the answer is 201 with ``target_uri`` ``bridge:<id>``, ``state`` queued;
- Asterisk adds ``Announcer/ARI-<counter>;2`` to the bridge for the prompt
  and, three members being more than ``simple_bridge`` mixes, switches the
  bridge to ``softmix`` (back when it leaves; console log);
- the app sees no ChannelEnteredBridge/LeftBridge for the announcer, only
  BRIDGEPEER varsets on every member, listing the announcer first, just
  before PlaybackStarted and again (the peer alone) after PlaybackFinished;
- every member hears prompt and caller mixed: an externalMedia leg gets
  50 pkt/s without seq or timestamp gaps, the prompt at half its file's
  level (tone-only windows RMS ~3475 for a file RMS of ~6950);
- ``DELETE /playbacks/{id}`` stops it (204, PlaybackFinished ``done``).

Not recorded, so refused: an announcer format, an offset, a bridge
playback on an empty or holding bridge, a second one while one is queued
or playing, and destroying the bridge while one plays.
"""
from __future__ import annotations

from array import array

from .audio_in import AudioIn
from .errors import AriError
from .model import Bridge, Channel, DialplanLocation

PROMPT_GAIN = 0.5        # the prompt's level in the bridge mix, relative to its file


def check_request(bridge: Bridge, busy: bool, announcer_format: str | None, offset_ms: int) -> None:
    def refuse(what: str) -> AriError:
        return AriError(501, f"{what} is not simulated: no recorded trace shows it")
    if announcer_format:
        raise refuse(f"A bridge playback with announcer_format={announcer_format}")
    if offset_ms:
        raise refuse(f"A bridge playback with offsetms={offset_ms}")
    if bridge.bridge_type != "mixing":
        raise refuse(f"A playback on a {bridge.bridge_type} bridge")
    if not bridge.channels:
        raise refuse("A playback on an empty bridge")
    if busy:
        raise refuse("A bridge playback queued behind another on the same bridge")


def check_destroy(busy: bool) -> None:
    """``DELETE /bridges/{id}`` while a bridge playback is queued or plays: not recorded, so refused."""
    if busy:
        raise AriError(501, "Destroying a bridge while a bridge playback plays is not simulated: no recorded "
                            "trace shows it (stop the playback first: DELETE /playbacks/{id})")


def new_channel(channel_id: str, suffix: str, creationtime: str, language: str) -> Channel:
    """The ``;2`` half that sits in the bridge; its audio is the prompt (see ``speak``)."""
    return Channel(id=channel_id, name=f"Announcer/ARI-{suffix};2", state="Up", creationtime=creationtime,
                   location=DialplanLocation("default", "s", 1, "", ""), language=language, kind="announcer",
                   audio_in=AudioIn(sending=True))


def speak(audio_in: AudioIn, samples: array | None, now: float) -> None:
    """The announcer sends ``samples`` into the bridge from ``now``, at the mix's prompt level."""
    if samples is not None:
        audio_in.schedule(array("h", (int(s * PROMPT_GAIN) for s in samples)), now)
