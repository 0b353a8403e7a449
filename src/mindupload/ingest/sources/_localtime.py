"""Wall-clock times written without a zone (LINE, Signal's export), read in the source's `timezone`."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mindupload.errors import UserError
from mindupload.ingest.sources import SourceSpec

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def zone(spec: SourceSpec) -> ZoneInfo:
    try:
        return ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"{spec.path}: unknown timezone {spec.timezone!r}. "
            "Set `timezone:` to an IANA name such as 'Europe/Berlin' or 'UTC'."
        ) from None


def local_us(naive: datetime, tz: ZoneInfo) -> int:
    """Microseconds since the Unix epoch for a local wall-clock time (zoneinfo's reading of gaps and folds)."""
    delta = naive.replace(tzinfo=tz).astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
