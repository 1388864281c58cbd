"""WhatsApp .txt exports (Android and iOS, any locale); also the same line format from Signal tools.

Every header line looks like ``DATE, TIME - Author: text`` (Android) or ``[DATE, TIME] Author: text``
(iOS, also ``[TIME, DATE]``), with DATE and TIME in the phone's locale; lines without a header continue
the message above. Each header stamp is read by every grammar of :mod:`stamps` (CLDR patterns of all
locales) that fits it; the grammar and date order (day-first, month-first or year-first) that read the
most lines of the whole file win, ties going to chronological order, then convention.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from app.errors import DocumentError
from app.ingest.chats import calendars, stamps
from app.ingest.chats.assemble import build_document
from app.ingest.document import Document, Unit

_MARKS = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_STRIP_MARKS = str.maketrans("", "", _MARKS)
_SPACE = " \u00a0\u202f\u2009"
_SP = "[ \u00a0\u202f\u2009]"
_ANDROID_DASH = re.compile(r"[ \u00a0\u202f]?[-–][ \u00a0\u202f]")
_AUTHOR = re.compile(r"^(?P<author>[^:\n]{1,80}?):" + _SP + r"?(?P<text>.*)$", re.DOTALL)

# Placeholders WhatsApp writes instead of media: Android "<Media omitted>" in any language (always in
# angle brackets), "<attached: x.jpg>", "IMG-1.jpg (file attached)", iOS "image omitted" and kin.
_ANGLE_PLACEHOLDER = re.compile(r"^<[^<>\n]{2,60}>$")
_FILE_ATTACHED = re.compile(r"^\S[^\n]{0,200}\.\w{1,5} \([^()\n]{2,40}\)$")
_OMITTED = re.compile(
    r"(?:^|\s)(?:image|video|audio|sticker|GIF|document|Contact card|photo)\s+omitted$"
    r"|(?:Bild|Video|Audio|Sticker|GIF|Dokument|Kontaktkarte)\s+(?:weggelassen|ausgelassen)$"
    r"|(?:imagen|video|audio|sticker|GIF|documento)\s+omitid[oa]$"
    r"|(?:immagine|video|audio|sticker|GIF|documento)\s+omess[oa]$"
    r"|(?:image|vidéo|audio|sticker|GIF|document)\s+(?:absente?|omis|manquant|retiré)$"
    r"|(?:изображение|видео|аудиофайл|документ|GIF)\s+отсутствует$"
    r"|(?:画像|ビデオ|音声|スタンプ|ドキュメント|GIF)は含まれていません$",
    re.IGNORECASE,
)
_DELETED = re.compile(
    r"^(?:This message was deleted|You deleted this message|Diese Nachricht wurde gelöscht"
    r"|Du hast diese Nachricht gelöscht|Ce message a été supprimé|Vous avez supprimé ce message"
    r"|Questo messaggio è stato eliminato|Hai eliminato questo messaggio|Esta mensagem foi apagada"
    r"|Apagou esta mensagem|Apagaste esta mensagem|Mensagem apagada|Se eliminó este mensaje"
    r"|Eliminaste este mensaje|Данное сообщение удалено|Это сообщение удалено|Вы удалили (?:данное|это) сообщение"
    r"|このメッセージは削除されました|このメッセージを削除しました|Dit bericht is verwijderd"
    r"|U hebt dit bericht verwijderd|Je hebt dit bericht verwijderd)[.。]?$",
    re.IGNORECASE,
)
_LOCATION = re.compile(r"^[^\s:][^:\n]{0,30}:\s*https?://", re.UNICODE)
_E2E = re.compile(r"end-to-end|ende-zu-ende|de bout en bout|extremo a extremo|ponto a ponto|"
                  r"сквозным|エンドツーエンド|versleuteld|WhatsApp", re.IGNORECASE)
# "Your security code with X changed": noise for a summary, dropped like the encryption notice.
_SECURITY_CODE = re.compile(r"security code|Sicherheitsnummer|code de sécurité|codice di sicurezza|"
                            r"código de segurança|código de seguridad|код безопасности|セキュリティコード|"
                            r"beveiligingscode", re.IGNORECASE)
_TITLE_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"WhatsApp[ _]Chat[ _]with[ _](.+)", r"WhatsApp[ _]Chat[ _]-[ _](.+)", r"WhatsApp-Chat[ _]mit[ _](.+)",
    r"Chat[ _]de[ _]WhatsApp[ _]con[ _](.+)", r"Discussion[ _]WhatsApp[ _]avec[ _](.+)",
    r"Чат[ _]WhatsApp[ _]с[ _](?:контактом[ _])?(.+)", r"WhatsApp[ _]Chat[ _]met[ _](.+)",
)]


@dataclass
class _Header:
    line: int
    ios: bool
    lead_mark: bool  # an iOS line that starts with U+200E carries an attachment
    match: re.Match[str]
    clock: stamps.Clock
    rest: str


Grammar = tuple[bool, bool, int, int, str]  # (iOS, date first, date shape, time shape, date order)


def _stamps(line: str) -> list[tuple[bool, str, str]]:
    """(iOS, stamp, rest) for each way ``line`` can be split into a header stamp and the rest."""
    stripped = line.lstrip(_MARKS + _SPACE)
    if not stripped:
        return []
    if stripped[0] == "[":
        close = stripped.find("]", 1, 96)
        if close < 0:
            return []
        rest = stripped[close + 1 :]
        return [(True, stripped[1:close], rest[1:] if rest[:1] in _SPACE else rest)]
    return [(False, stripped[: dash.start()], stripped[dash.end() :])
            for dash in _ANDROID_DASH.finditer(stripped, 0, 96)
            if sum(c.isdecimal() for c in stripped[: dash.start()]) >= 3]


def _readings(index: int, line: str) -> dict[tuple[bool, bool, int, int], _Header]:
    """Every grammar (without date order) that reads ``line`` as a header with a possible time of day."""
    found: dict[tuple[bool, bool, int, int], _Header] = {}
    for ios, raw, rest in _stamps(line):
        stamp = stamps.normalize(raw)
        for key in stamps.grammars_of(stamps.skeleton(stamp)):
            if (ios, *key) in found:
                continue
            match = stamps.compiled(*key).fullmatch(stamp)
            clock = stamps.clock(match) if match else None
            if match and clock:
                found[(ios, *key)] = _Header(index, ios, ios and line.startswith("\u200e"), match, clock, rest)
    return found


def looks_like_whatsapp(text: str) -> bool:
    """True when the first non-empty line is a WhatsApp header and a second header follows (or the file is tiny)."""
    lines = [line for line in text[:20000].split("\n", 200)[:200] if line.strip(_MARKS + " \r\t")]
    if not lines or not _readings(0, lines[0].rstrip("\r")):
        return False
    headers = sum(1 for line in lines[:200] if _readings(0, line.rstrip("\r")))
    return headers >= 2 or len(lines) <= 3


# A line shaped like a chat header whatever its date format: a bracketed stamp with a digit, or a stamp that
# starts with a digit and ends in " - ", then "Author:". Logs and CSV rows lack the author part.
_CHAT_LIKE = re.compile(r"^[\u200e\u200f\u061c ]*(?:\[(?P<ios>[^\]\n]{0,60}\d[^\]\n]{0,60})\]"
                        r"|(?P<android>\S{0,3}\d[^\n]{2,40}?)[ \u00a0\u202f]?[-–][ \u00a0\u202f])"
                        r"[ \u00a0\u202f]?[^:\n]{1,80}:")


def unrecognized_chat(name: str, text: str) -> str | None:
    """What was not understood when ``text`` looks like a chat (many lines open with a stamp and an author) that
    no grammar reads; None otherwise."""
    lines = [line.rstrip("\r") for line in text[:20000].split("\n", 200)[:200] if line.strip(_MARKS + " \r\t")]
    unread = [f"[{match['ios']}]" if match["ios"] else match["android"] for line in lines
              if (match := _CHAT_LIKE.match(line)) and not _readings(0, line)]
    if len(unread) < 3 or len(unread) * 3 < len(lines):
        return None
    example = unread[0].translate(_STRIP_MARKS)[:40]
    return (f"{name} looks like a chat export ({len(unread)} of {len(lines)} lines start like \"{example}\") but no "
            f"WhatsApp date and time format of any locale reads those lines")


def _backwards_steps(times: list[datetime]) -> int:
    return sum(1 for a, b in zip(times, times[1:], strict=False) if b < a)


@dataclass
class _Reading:
    """The headers one grammar reads in a file, with their datetimes (None where impossible)."""
    grammar: Grammar
    headers: list[_Header]
    fields: list[tuple[str, str, str, str | None]]  # (year, month, day, era) of each header
    times: list[tuple[datetime, str] | None]

    @property
    def valid(self) -> int:
        return sum(t is not None for t in self.times)

    @functools.cached_property
    def rank(self) -> tuple[int, int, int, int, int]:
        """Most headers read, then fewest steps back in time, fewest distinct years, 4-digit or last years, DMY."""
        order = self.grammar[4]
        good = [(h, t[0]) for h, t in zip(self.headers, self.times, strict=True) if t is not None]
        years = {t.year for _, t in good}
        short_first = order[0] == "Y" and any(len(f[0]) == 2 for f, t in zip(self.fields, self.times, strict=True) if t)
        preference = {"DMY": 2, "MDY": 1}.get(order, 0)
        return (self.valid, -_backwards_steps([t for _, t in good]), -len(years), not short_first, preference)


def _calendar(fields: list[tuple[str, str, str, str | None]]) -> str:
    """The calendar that 4-digit years without an era point to (most common one), as before CLDR grammars."""
    years = [int(year) for year, _, _, era in fields if len(year) == 4 and not era]
    return calendars.calendar_of(max(set(years), key=years.count)) if years else "gregorian"


def _choose(readings: dict[tuple[bool, bool, int, int], list[_Header]], warnings: list[str]) -> _Reading:
    """The grammar and date order that read the most headers; ties broken by chronology, then convention."""
    date_shapes, _, _ = stamps.shapes()
    scored: list[_Reading] = []
    for key, headers in readings.items():
        for order in date_shapes[key[2]].orders:
            fields = [stamps.date_fields(h.match, order) for h in headers]
            calendar = _calendar(fields)
            times = [stamps.to_datetime(f, calendar, h.clock) for f, h in zip(fields, headers, strict=True)]
            scored.append(_Reading((*key, order), headers, fields, times))
    scored.sort(key=lambda reading: reading.rank, reverse=True)
    best = scored[0]
    rivals = [r for r in scored[1:] if r.rank[:4] == best.rank[:4] and r.grammar[:4] == best.grammar[:4]]
    if best.grammar[4] == "DMY" and any(r.grammar[4] == "MDY" for r in rivals) and "/" in best.headers[0].match[0]:
        warnings.append("every date fits both day/month and month/day: assumed day/month")
    used = {t[1] for t in best.times if t is not None}
    if "buddhist" in used:
        warnings.append("dates use the Buddhist calendar: years converted to the Gregorian calendar (minus 543)")
    if "solar hijri" in used:
        warnings.append("dates use a Hijri-era year: read as the Solar Hijri (Persian) calendar and converted")
    if "japanese" in used:
        warnings.append("dates use Japanese era years: converted to the Gregorian calendar")
    return best


def _title(path: Path) -> str:
    stem = path.stem
    for pattern in _TITLE_PATTERNS:
        match = pattern.search(stem)
        if match:
            return match.group(1).replace("_", " ").strip()
    return stem


def _classify(header: _Header, body: str, index: int, counts: Counter[str]) -> Unit | None:
    """Split author and text; blank out media placeholders and deleted messages; None drops it."""
    raw = header.rest
    split = _AUTHOR.match(raw)
    author: str | None = None
    text = raw
    if split and '"' not in split["author"] and "“" not in split["author"]:
        author = split["author"].translate(_STRIP_MARKS).strip() or None
        text = split["text"]
    ios_system = header.ios and text.startswith("\u200e")
    text = (text + body).translate(_STRIP_MARKS).replace("\u202f", " ").replace("\u00a0", " ").strip()
    first, _, caption = text.partition("\n")
    first = first.strip()
    if header.lead_mark or _ANGLE_PLACEHOLDER.match(first) or _FILE_ATTACHED.match(first) \
            or _OMITTED.search(first[-48:]):
        counts["media_omitted"] += 1
        text = caption.strip()
    elif _DELETED.match(first) and not caption:
        counts["deleted_messages"] += 1
        text = ""
    elif ios_system and not _LOCATION.match(text):
        author = None
    if (author is None or index == 0) and _E2E.search(text) and ("WhatsApp" in text or author is None):
        counts["notices_dropped"] += 1
        return None
    if author is None and _SECURITY_CODE.search(text):
        counts["notices_dropped"] += 1
        return None
    return Unit(text=text, author=author)


def parse(path: Path, text: str, warnings: list[str], kind: str = "whatsapp") -> Document:
    """Parse a WhatsApp-style transcript already decoded to ``text``."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    readings: dict[tuple[bool, bool, int, int], list[_Header]] = {}
    for index, line in enumerate(lines):
        for key, header in _readings(index, line).items():
            readings.setdefault(key, []).append(header)
    if not readings:
        raise DocumentError(f"{path.name} has no WhatsApp message lines: export the chat again")
    best = _choose(readings, warnings)
    units: list[Unit] = []
    counts: Counter[str] = Counter()
    starts = [(h, t[0]) for h, t in zip(best.headers, best.times, strict=True) if t is not None]
    skipped = len(best.headers) - len(starts)
    start_lines = [h.line for h, _ in starts] + [len(lines)]
    for number, (header, time) in enumerate(starts):
        body_lines = lines[header.line + 1 : start_lines[number + 1]]
        body = "".join("\n" + line for line in body_lines)
        unit = _classify(header, body.rstrip(), number, counts)
        if unit is not None:
            unit.time = time
            units.append(unit)
    if skipped:
        warnings.append(f"{skipped} line(s) with impossible dates were kept as message text")
    ios, date_first, date_shape, time_shape, order = best.grammar
    date_shapes, time_shapes, _ = stamps.shapes()
    roles = iter(order)  # the shape's example pattern, its day and month fields in the order chosen
    date_text = re.sub(r"d+|M+|y+", lambda run: {"D": "d", "M": "M", "Y": "y"}[next(roles)] * len(run[0]),
                       date_shapes[date_shape].example)
    time_text = time_shapes[time_shape].example
    extra = {
        "date_order": order,
        "platform": "ios" if ios else "android",
        "clock": "12h" if any(h.clock.twelve_hour for h in best.headers) else "24h",
        "header_format": f"{date_text}, {time_text}" if date_first else f"{time_text}, {date_text}",
    }
    return build_document(kind, _title(path), path, units, warnings=warnings, counts=counts, extra=extra)
