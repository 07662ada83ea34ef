"""Where calls in progress keep their state between steps: Redis.

The controller saves the engine state after every step, so a controller that
restarts (or is killed) finds each call's last step and resumes it. Redis
being down must not drop calls: the store says so once in the log (through
the project's one `RedisGuard`, like caller history and one-time codes) and
the calls go on in memory.
"""

from __future__ import annotations

import logging
from typing import Protocol

import redis.asyncio as redis

from ivr import redisconn
from ivr.controller.step_audio import StepAudio
from ivr.engine.state import CallState
from ivr.redisguard import RedisGuard
from ivr.sealing import Sealer, SealError

log = logging.getLogger(__name__)
STATE_TTL_SECONDS = 4 * 3600  # longer than any call; a lost key expires on its own


class CallStore(Protocol):
    async def save(self, state: CallState, audio: StepAudio | None = None) -> None: ...
    async def load(self, call_id: str) -> CallState | None: ...
    async def forget(self, call_id: str) -> None: ...
    async def save_audio(self, audio: StepAudio) -> None: ...
    async def load_audio(self, call_id: str) -> StepAudio | None: ...


class RedisCallStore:
    """Call states under `ivr:call:<channel id>`, the step's prompts under `ivr:audio:<channel id>`.

    Both are sealed JSON: a state holds what the caller said and what the
    backends answered (name, date of birth, policy and phone numbers), and a
    step's prompts the values they speak.
    """

    def __init__(self, client: redis.Redis, sealer: Sealer, prefix: str = "ivr:call:",
                 audio_prefix: str = "ivr:audio:"):
        self.client = client
        self.sealer = sealer
        self.prefix = prefix
        self.audio_prefix = audio_prefix
        self.guard = RedisGuard("saved call state", log)

    @classmethod
    def from_url(cls, url: str, sealer: Sealer) -> RedisCallStore:
        return cls(redisconn.connect(url), sealer)

    async def save(self, state: CallState, audio: StepAudio | None = None) -> None:
        """The state, and with it the prompts its step is about to play, in one transaction:
        a controller killed between two writes would leave a step nobody can place."""
        rest = state.at_rest()  # card numbers stay in the controller's memory
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + state.call_id, self.sealer.seal(rest.model_dump_json()), ex=STATE_TTL_SECONDS)
            if audio is not None:
                pipe.set(self.audio_prefix + audio.call_id, self.sealer.seal(audio.model_dump_json()),
                         ex=STATE_TTL_SECONDS)
            await self.guard.run(pipe.execute)

    async def load(self, call_id: str) -> CallState | None:
        raw = await self.guard.run(lambda: self.client.get(self.prefix + call_id))
        text = self._open(raw) if raw else None
        return CallState.model_validate_json(text) if text else None

    async def forget(self, call_id: str) -> None:
        await self.guard.run(lambda: self.client.delete(self.prefix + call_id, self.audio_prefix + call_id))

    async def save_audio(self, audio: StepAudio) -> None:
        sealed = self.sealer.seal(audio.model_dump_json())
        await self.guard.run(lambda: self.client.set(self.audio_prefix + audio.call_id, sealed, ex=STATE_TTL_SECONDS))

    async def load_audio(self, call_id: str) -> StepAudio | None:
        raw = await self.guard.run(lambda: self.client.get(self.audio_prefix + call_id))
        text = self._open(raw) if raw else None
        return StepAudio.model_validate_json(text) if text else None

    def _open(self, raw: bytes | str) -> str | None:
        """Clear JSON; a value no key opens is logged and read as nothing, as a lost key would be."""
        try:
            return self.sealer.open(raw)
        except SealError as exc:
            log.error("call state not readable: %s", exc)
            return None

    async def close(self) -> None:
        await self.client.aclose()
