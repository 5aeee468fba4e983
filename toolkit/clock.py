"""Vietnam's wall-clock time, whatever the machine's time zone (a server may well run on UTC).

Rounds are Vietnamese and so are their deadlines: when a file arrived is compared with the deadline in Vietnam's
time (UTC+7, no daylight saving), as naive datetimes like every other time in a round.
"""

from __future__ import annotations

import datetime as dt

VIETNAM_TIME = dt.timezone(dt.timedelta(hours=7), "ICT")


def vietnam_now() -> dt.datetime:
    """Now, in Vietnam (naive, to the second)."""
    return dt.datetime.now(VIETNAM_TIME).replace(tzinfo=None, microsecond=0)


def vietnam_time(timestamp: float) -> dt.datetime:
    """A file time (seconds since the epoch) as Vietnam's wall-clock time (naive, to the second: a receipt time is
    shown and stored to the second, as received.yaml and the upload server write them)."""
    return dt.datetime.fromtimestamp(timestamp, VIETNAM_TIME).replace(tzinfo=None, microsecond=0)


def to_vietnam(value: dt.datetime) -> dt.datetime:
    """An aware datetime as Vietnam's wall-clock time; a naive one is taken as already so."""
    return value if value.tzinfo is None else value.astimezone(VIETNAM_TIME).replace(tzinfo=None)
