"""The campaign's `Rules` from the operator's settings (`IVR_CAMPAIGN_*`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ivr.campaign.model import Rules

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def rules_from(settings: Any) -> Rules:
    """Raises ValueError naming the setting that is wrong."""
    return Rules(calling_hours=_hours(settings.campaign_calling_hours),
                 calling_days=_days(settings.campaign_calling_days),
                 insurer_timezone=settings.campaign_timezone, daily_cap=settings.campaign_daily_cap,
                 max_calls=settings.campaign_max_calls)


def _hours(text: str) -> tuple[dt.time, dt.time]:
    try:
        start, end = (dt.time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"IVR_CAMPAIGN_CALLING_HOURS '{text}' is not HH:MM-HH:MM") from None
    if start >= end:
        raise ValueError(f"IVR_CAMPAIGN_CALLING_HOURS '{text}': the start must come before the end")
    return start, end


def _days(text: str) -> frozenset[int]:
    names = [d.strip().lower()[:3] for d in text.split(",") if d.strip()]
    unknown = [n for n in names if n not in DAYS]
    if unknown or not names:
        raise ValueError(f"IVR_CAMPAIGN_CALLING_DAYS '{text}': days are {', '.join(DAYS)}")
    return frozenset(DAYS.index(n) for n in names)
