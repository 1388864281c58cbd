"""Years from non-Gregorian calendars in exported dates: Buddhist, Japanese eras, Solar Hijri."""

from __future__ import annotations

from datetime import date, timedelta

# Babel ships only CLDR's Gregorian calendar, so the era names of the calendars phones offer are listed
# here: CLDR's Japanese eras (narrow letter and name) and the Buddhist era as en and th write it.
JAPANESE_ERAS = {  # era -> Gregorian year of its first year (year 1)
    "令和": 2019, "R": 2019, "平成": 1989, "H": 1989, "昭和": 1926, "S": 1926, "大正": 1912, "T": 1912,
    "明治": 1868, "M": 1868,
}
BUDDHIST_OFFSET = 543  # Thai solar calendar: 2565 BE = 2022 CE
BUDDHIST_ERAS = ("BE", "B.E.", "พ.ศ.", "พ.ศ")
ERAS = {**{era: "japanese" for era in JAPANESE_ERAS}, **{era: "buddhist" for era in BUDDHIST_ERAS}}


def era_year(era: str, year: int) -> tuple[int, str]:
    """Gregorian year of ``year`` written with ``era`` (a key of ERAS), and the calendar's name."""
    if ERAS[era] == "buddhist":
        return year - BUDDHIST_OFFSET, "buddhist"
    return japanese_era_year(era, year), "japanese"


def japanese_era_year(era: str, year: int) -> int:
    """Gregorian year of ``year`` in ``era`` ("令和" 4 -> 2022)."""
    return JAPANESE_ERAS[era] + year - 1


def jalali_to_gregorian(year: int, month: int, day: int) -> date:
    """Solar Hijri (Persian) date to Gregorian; raises ValueError for an impossible date."""
    if not (1 <= month <= 12 and 1 <= day <= (31 if month <= 6 else 30)):
        raise ValueError(f"no Solar Hijri date {year}/{month}/{day}")
    # Day count from 1 Farvardin 1 SH (= 21 March 622 CE, proleptic Gregorian) by the 33-year rule.
    days = 365 * (year - 1) + ((year - 1) * 8 + 29) // 33
    days += (month - 1) * 31 if month <= 7 else 186 + (month - 7) * 30
    return date(622, 3, 21) + timedelta(days=days + day - 1)


def calendar_of(year: int) -> str:
    """Name the calendar a 4-digit year most likely comes from ("gregorian" for 1900-2399)."""
    if year >= 2400:
        return "buddhist"
    if 1300 <= year < 1500:
        return "solar hijri"
    return "gregorian"
