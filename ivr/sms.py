"""Text messages to policyholders: confirmations, one-time codes, change notices.

`SmsSender` is what the backend needs; `Outbox` is the implementation for
the demo and tests: it keeps the messages (so a test or a demo caller can
read the code it was sent) and logs that a message went out, with the number
masked and never the text, which may hold a code.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Protocol

from ivr.masking import mask_phone

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sms:
    to: str
    text: str
    kind: str  # otp | confirmation | notice
    sent_at: dt.datetime


class SmsSender(Protocol):
    async def send(self, to: str, text: str, kind: str) -> None: ...


@dataclass
class Outbox:
    """Messages sent, newest last; bounded so a long-running demo does not grow without end."""

    limit: int = 10_000
    messages: list[Sms] = field(default_factory=list)

    async def send(self, to: str, text: str, kind: str) -> None:
        self.messages.append(Sms(to, text, kind, dt.datetime.now()))
        del self.messages[: max(0, len(self.messages) - self.limit)]
        log.info("sms %s to %s", kind, mask_phone(to))

    def to(self, phone: str, kind: str | None = None) -> list[Sms]:
        return [m for m in self.messages if m.to == phone and (kind is None or m.kind == kind)]

    def last_code(self, phone: str) -> str | None:
        """The one-time code most recently sent to `phone` (demo callers and tests read it here)."""
        sent = self.to(phone, "otp")
        return "".join(c for c in sent[-1].text if c.isdigit())[:6] if sent else None
