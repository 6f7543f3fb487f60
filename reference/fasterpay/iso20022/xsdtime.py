"""XSD dates and times, read as the schema reads them and turned into Python values without surprises.

The ISO 20022 schemas type ``CreDtTm``, ``AccptncDtTm`` and the like as ``xs:dateTime``, and
``IntrBkSttlmDt`` as ``xs:date``. XML Schema 1.0 (the version the ISO 20022 XSDs are written in) allows:

* a four-digit year from 0001 (year 0000 is not a year in XSD 1.0);
* ``24:00:00`` as the end of a day, which is the next day's ``00:00:00``;
* a time zone offset from ``-14:00`` to ``+14:00``, minutes 00-59;
* a real calendar date (no 30 February), seconds 00-59, any number of fraction digits.

Python's ``datetime`` cannot hold everything XSD can (years beyond 9999, negative years) and raises
``ValueError`` or ``OverflowError`` on what XSD refuses. These functions return the value, or raise
:class:`XsdValueError` with what is wrong: a caller turns that into a rejection (FF01), never a crash. A
year outside 0001-9999 is refused although XSD allows it: no payment is dated there.

Examples:
    >>> parse_xsd_datetime("2026-11-28T24:00:00Z")
    datetime.datetime(2026, 11, 29, 0, 0, tzinfo=datetime.timezone.utc)
    >>> parse_xsd_date("2026-11-28+01:00")
    datetime.date(2026, 11, 28)
    >>> parse_xsd_date("2026-11-28+15:00")
    Traceback (most recent call last):
    ...
    fasterpay.iso20022.xsdtime.XsdValueError: the time zone offset is beyond +/-14:00
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

__all__ = ["XsdValueError", "parse_xsd_date", "parse_xsd_datetime", "parse_xsd_time"]

_ZONE = r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?"
_DATE = r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
_DATETIME_RE = re.compile(f"{_DATE}T{_TIME}{_ZONE}")
_DATE_RE = re.compile(f"{_DATE}{_ZONE}")
_TIME_RE = re.compile(f"{_TIME}{_ZONE}")


class XsdValueError(ValueError):
    """The text is not a value of the XSD type (or not one this service can represent); reject it (FF01)."""


def _zone(text: str | None) -> timezone | None:
    if text is None:
        return None
    if text == "Z":
        return timezone.utc
    hours, minutes = int(text[1:3]), int(text[4:6])
    if minutes > 59:
        raise XsdValueError("the time zone offset has more than 59 minutes")
    if hours > 14 or (hours == 14 and minutes):
        raise XsdValueError("the time zone offset is beyond +/-14:00")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if text[0] == "-" else offset)


def _date(match: re.Match[str]) -> date:
    year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
    if year == 0:
        raise XsdValueError("year 0000 is not a year in XML Schema 1.0")
    try:
        return date(year, month, day)
    except ValueError:
        raise XsdValueError("is not a real calendar date") from None


def _time_parts(match: re.Match[str]) -> tuple[int, int, int, int, bool]:
    """(hour, minute, second, microsecond, end of day) with the XSD ranges checked."""
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
    fraction = match["fraction"] or ""
    end_of_day = hour == 24
    if end_of_day and (minute or second or fraction.strip("0")):
        raise XsdValueError("24:00:00 is the only time allowed in hour 24")
    if hour > 24 or minute > 59 or second > 59:
        raise XsdValueError("the time is out of range (hours 00-23, minutes and seconds 00-59)")
    micro = int((fraction + "000000")[:6]) if fraction else 0  # beyond microseconds: truncated
    return (0 if end_of_day else hour), minute, second, micro, end_of_day


def parse_xsd_datetime(text: str) -> datetime:
    """An ``xs:dateTime`` (aware when it has a time zone, naive otherwise).

    Examples:
        >>> parse_xsd_datetime("2026-01-02T03:04:05.5+01:00").isoformat()
        '2026-01-02T03:04:05.500000+01:00'
    """
    match = _DATETIME_RE.fullmatch(text.strip())
    if match is None:
        raise XsdValueError("is not an ISO date and time (YYYY-MM-DDThh:mm:ss[.s][zone])")
    day = _date(match)
    hour, minute, second, micro, end_of_day = _time_parts(match)
    zone = _zone(match["zone"])
    if end_of_day:
        if day == date.max:
            raise XsdValueError("the end of 9999-12-31 is beyond the years this service handles")
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=zone)


def parse_xsd_date(text: str) -> date:
    """An ``xs:date`` (its time zone, if any, is checked and dropped: a settlement date is a calendar day).

    Examples:
        >>> parse_xsd_date("2026-02-29")
        Traceback (most recent call last):
        ...
        fasterpay.iso20022.xsdtime.XsdValueError: is not a real calendar date
    """
    match = _DATE_RE.fullmatch(text.strip())
    if match is None:
        raise XsdValueError("is not an ISO date (YYYY-MM-DD[zone])")
    _zone(match["zone"])
    return _date(match)


def parse_xsd_time(text: str) -> time:
    """An ``xs:time`` (``24:00:00`` reads as ``00:00:00``).

    Examples:
        >>> parse_xsd_time("23:59:59Z")
        datetime.time(23, 59, 59, tzinfo=datetime.timezone.utc)
    """
    match = _TIME_RE.fullmatch(text.strip())
    if match is None:
        raise XsdValueError("is not an ISO time (hh:mm:ss[.s][zone])")
    hour, minute, second, micro, _ = _time_parts(match)
    return time(hour, minute, second, micro, tzinfo=_zone(match["zone"]))
