"""The one fake clock of the test suite."""

from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


class FakeClock:
    """A clock driven by hand.

    Calling it returns the current moment as an aware UTC datetime (what `flag.now_utc` returns), so
    it can be passed wherever the code takes a `clock`. `monotonic()` is its `time.monotonic`: it
    moves with `advance()` and never backwards. `set()` is a jump of the wall clock (a person
    setting the time, or the next moment a test looks at), so monotonic time does not move with it.
    """

    def __init__(self, start: dt.datetime, monotonic: float = 100.0):
        self._now = self._aware(start)
        self._monotonic = float(monotonic)

    @staticmethod
    def _aware(moment: dt.datetime) -> dt.datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"a fake clock needs an aware datetime, not {moment!r}")
        return moment.astimezone(UTC)

    def __call__(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0,
                days: float = 0.0) -> dt.datetime:
        """Moves both clocks forward by the sum of the arguments; returns the new moment."""
        step = dt.timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
        if step < dt.timedelta(0):
            raise ValueError("advance() only goes forward; set() jumps the wall clock")
        self._now += step
        self._monotonic += step.total_seconds()
        return self._now

    def set(self, moment: dt.datetime) -> dt.datetime:
        """The wall clock now reads `moment` (earlier or later); returns it in UTC."""
        self._now = self._aware(moment)
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()}, monotonic={self._monotonic:g})"
