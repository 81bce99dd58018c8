"""Time-aware questions: the date a question is asked as of, and the span its words point at.

"this week", "yesterday", "on Wednesday", "last month", "in March"... are read against the
question's `as_of` date (default: today, UTC). Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from core.errors import InvalidInput

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
# How far back "recently" reaches.
RECENT_DAYS = 30


@dataclass(frozen=True)
class TimeWindow:
    """The span of dates a question's time phrase points at, both ends included."""

    phrase: str
    start: date
    end: date

    def holds(self, day: date | None) -> bool:
        """Whether a date falls inside the window (an unknown date never does)."""
        return day is not None and self.start <= day <= self.end

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form: the phrase and ISO dates."""
        return {"phrase": self.phrase, "start": self.start.isoformat(),
                "end": self.end.isoformat()}


_Reader = Callable[[re.Match[str], date], TimeWindow | None]


def today() -> date:
    """Today's date in UTC: the default `as_of`."""
    return datetime.now(UTC).date()


def parse_day(value: str) -> date | None:
    """A `YYYY-MM-DD` date (years 1000-9999), or None when the text is not one."""
    text = value.strip() if isinstance(value, str) else ""
    if not _ISO_DAY.fullmatch(text):
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if day.year >= 1000 else None


def as_of_date(value: str | date | None, *, name: str = "as_of") -> date:
    """The `as_of` date a user gave (None: today, UTC); a malformed one is a clear error."""
    if value is None:
        return today()
    if isinstance(value, date):
        return value
    day = parse_day(value)
    if day is None:
        raise InvalidInput(f"{name} must be a date like 2024-05-02 (YYYY-MM-DD), got {value!r}",
                           code="invalid_as_of")
    return day


def time_window(question: str, as_of: date) -> TimeWindow | None:
    """The narrowest span a relative time phrase of the question names, read against as_of."""
    found = [window for pattern, read in _READERS for match in pattern.finditer(question)
             if (window := _safe(read, match, as_of)) is not None]
    if not found:
        return None
    return min(found, key=lambda w: (w.end - w.start, question.find(w.phrase)))


def without_phrase(question: str, window: TimeWindow | None) -> str:
    """The question with the window's phrase taken out (what remains is what to search for)."""
    if window is None:
        return question
    stripped = " ".join(question.replace(window.phrase, " ", 1).split())
    return stripped or question


# --- readers: one per kind of phrase ----------------------------------------------------------


def _window(match: re.Match[str], start: date, end: date, as_of: date) -> TimeWindow | None:
    end = min(end, as_of)
    return TimeWindow(match.group(0), start, end) if start <= end else None


def _today(match: re.Match[str], as_of: date) -> TimeWindow | None:
    return _window(match, as_of, as_of, as_of)


def _yesterday(match: re.Match[str], as_of: date) -> TimeWindow | None:
    day = as_of - timedelta(days=1)
    return _window(match, day, day, as_of)


def _this_week(match: re.Match[str], as_of: date) -> TimeWindow | None:
    return _window(match, as_of - timedelta(days=as_of.weekday()), as_of, as_of)


def _past_week(match: re.Match[str], as_of: date) -> TimeWindow | None:
    return _window(match, as_of - timedelta(days=6), as_of, as_of)


def _last_week(match: re.Match[str], as_of: date) -> TimeWindow | None:
    monday = as_of - timedelta(days=as_of.weekday() + 7)
    return _window(match, monday, monday + timedelta(days=6), as_of)


def _this_weekend(match: re.Match[str], as_of: date) -> TimeWindow | None:
    # The weekend under way, or else the one just past: an article is never dated ahead.
    saturday = as_of - timedelta(days=(as_of.weekday() - 5) % 7)
    return _window(match, saturday, saturday + timedelta(days=1), as_of)


def _last_weekend(match: re.Match[str], as_of: date) -> TimeWindow | None:
    # The last whole weekend before today: on a Saturday or Sunday, the one a week back.
    saturday = as_of - timedelta(days=(as_of.weekday() - 5) % 7)
    if as_of.weekday() >= 5:
        saturday -= timedelta(days=7)
    return _window(match, saturday, saturday + timedelta(days=1), as_of)


def _weekday(match: re.Match[str], as_of: date) -> TimeWindow | None:
    wanted = _WEEKDAYS.index(match.group("day").lower())
    back = (as_of.weekday() - wanted) % 7
    if back == 0 and match.group("last"):
        back = 7  # "last Wednesday", asked on a Wednesday: a week ago
    day = as_of - timedelta(days=back)
    return _window(match, day, day, as_of)


def _this_month(match: re.Match[str], as_of: date) -> TimeWindow | None:
    return _window(match, as_of.replace(day=1), as_of, as_of)


def _last_month(match: re.Match[str], as_of: date) -> TimeWindow | None:
    end = as_of.replace(day=1) - timedelta(days=1)
    return _window(match, end.replace(day=1), end, as_of)


def _month(match: re.Match[str], as_of: date) -> TimeWindow | None:
    name = match.group("month")
    if name.lower() == "may" and name[0] != "M":
        return None  # "in may" is the verb; the month is written May
    month = _MONTHS.index(name.lower()) + 1
    year = int(match.group("year")) if match.group("year") else (
        as_of.year if month <= as_of.month else as_of.year - 1)
    start = date(year, month, 1)
    return _window(match, start, _month_end(start), as_of)


def _this_year(match: re.Match[str], as_of: date) -> TimeWindow | None:
    return _window(match, date(as_of.year, 1, 1), as_of, as_of)


def _last_year(match: re.Match[str], as_of: date) -> TimeWindow | None:
    return _window(match, date(as_of.year - 1, 1, 1), date(as_of.year - 1, 12, 31), as_of)


def _recently(match: re.Match[str], as_of: date) -> TimeWindow | None:
    return _window(match, as_of - timedelta(days=RECENT_DAYS - 1), as_of, as_of)


def _month_end(first: date) -> date:
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _safe(read: _Reader, match: re.Match[str], as_of: date) -> TimeWindow | None:
    try:
        return read(match, as_of)
    except (ValueError, OverflowError):  # a window reaching outside the calendar
        return None


def _phrase(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE)


_DAY = "|".join(_WEEKDAYS)
_MONTH = "|".join(_MONTHS)
_READERS: list[tuple[re.Pattern[str], _Reader]] = [
    (_phrase(r"today|tonight|this (?:morning|afternoon|evening)"), _today),
    (_phrase(r"yesterday"), _yesterday),
    (_phrase(r"(?:earlier )?this week"), _this_week),
    (_phrase(r"(?:in|over|during) the (?:past|last) (?:week|seven days|7 days)|"
             r"(?:this|the) past week"), _past_week),
    (_phrase(r"(?<!the )last week"), _last_week),
    (_phrase(r"(?:this|over the) weekend"), _this_weekend),
    (_phrase(r"(?:last|this past) weekend"), _last_weekend),
    (_phrase(rf"(?:on|(?P<last>last)) (?P<day>{_DAY})"), _weekday),
    (_phrase(r"(?:earlier )?this month"), _this_month),
    (_phrase(r"last month"), _last_month),
    (_phrase(rf"(?:in|last) (?:early |mid-|late )?(?P<month>{_MONTH})"
             r"(?:,? (?P<year>\d{4}))?"), _month),
    (_phrase(r"(?:earlier )?this year"), _this_year),
    (_phrase(r"last year"), _last_year),
    (_phrase(r"recently|lately|in recent (?:days|weeks)"), _recently),
]
