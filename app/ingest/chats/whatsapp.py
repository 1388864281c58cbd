"""WhatsApp .txt exports (Android and iOS, any locale); also the same line format from Signal tools.

Every header line looks like ``DATE, TIME - Author: text`` (Android) or ``[DATE, TIME] Author: text``
(iOS); lines without a header continue the message above. The date order (day-first, month-first or
year-first) is decided from every header in the file, never from the first line alone.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from app.errors import DocumentError
from app.ingest.chats import calendars
from app.ingest.chats.assemble import build_document
from app.ingest.document import Document, Unit

_MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_STRIP_MARKS = str.maketrans("", "", _MARKS)
_SP = "[ \u00a0\u202f\u2009]"
_AMPM = (r"(?:[AaPp]\.?" + _SP + r"?[Mm]\.?|午前|午後|오전|오후|ص|م|vorm\.|nachm\.|π\.μ\.|μ\.μ\.|ق\.ظ|ب\.ظ)")
_PM_MARKERS = {"pm", "午後", "오후", "م", "nachm", "μμ", "بظ"}
_DATE = (r"(?P<era>令和|平成|昭和|[RHS](?=\d))?(?P<d1>\d{1,4})(?P<sep>[./-])" + _SP + r"?(?P<d2>\d{1,2})"
         r"(?P=sep)" + _SP + r"?(?P<d3>\d{1,4})\.?")
_TIME = (r"(?:(?P<ap1>" + _AMPM + r")" + _SP + r"?)?(?P<h>\d{1,2})[:.](?P<mi>\d{2})(?:[:.](?P<s>\d{2}))?"
         r"(?:" + _SP + r"*(?P<ap2>" + _AMPM + r"))?")
_ANDROID = re.compile(r"^" + _DATE + r",?" + _SP + r"+" + _TIME + _SP + r"?[-–]" + _SP + r"(?P<rest>.*)$")
_IOS = re.compile(r"^\[" + _DATE + r",?" + _SP + r"*" + _TIME + r"\]" + _SP + r"?(?P<rest>.*)$")
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
    era: str | None
    d1: str
    d2: str
    d3: str
    sep: str
    twelve_hour: bool
    hour: int
    minute: int
    second: int
    rest: str


def _match_header(line: str) -> tuple[re.Match[str], bool, bool] | None:
    lead_mark = line.startswith("\u200e")
    stripped = line.lstrip(_MARKS + " ")
    if not stripped or not (stripped[0] == "[" or stripped[0].isdigit() or stripped[0] in "令平昭RHS"):
        return None
    match = _IOS.match(stripped) if stripped[0] == "[" else _ANDROID.match(stripped)
    if match is None:
        return None
    return match, stripped[0] == "[", lead_mark


def _header(index: int, line: str) -> _Header | None:
    found = _match_header(line)
    if found is None:
        return None
    match, ios, lead_mark = found
    hour, minute = int(match["h"]), int(match["mi"])
    marker = match["ap1"] or match["ap2"]
    if marker:
        if not 1 <= hour <= 12 and hour != 0:
            return None
        pm = re.sub(r"[\s.\u00a0\u202f]", "", marker).lower() in _PM_MARKERS
        hour = hour % 12 + (12 if pm else 0)
    second = int(match["s"]) if match["s"] else 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    return _Header(index, ios, lead_mark and ios, match["era"], match["d1"], match["d2"], match["d3"],
                   match["sep"], bool(marker), hour, minute, second, match["rest"])


def looks_like_whatsapp(text: str) -> bool:
    """True when the first non-empty line is a WhatsApp header and a second header follows (or the file is tiny)."""
    lines = [line for line in text[:20000].split("\n", 200)[:200] if line.strip(_MARKS + " \r\t")]
    if not lines or _header(0, lines[0].rstrip("\r")) is None:
        return False
    headers = sum(1 for line in lines[:200] if _header(0, line.rstrip("\r")) is not None)
    return headers >= 2 or len(lines) <= 3


class _Dates:
    """Turns header date fields into datetimes for one date order and calendar."""

    def __init__(self, order: str, calendar: str):
        self.order = order
        self.calendar = calendar

    def __call__(self, h: _Header) -> datetime | None:
        d1, d2, d3 = int(h.d1), int(h.d2), int(h.d3)
        try:
            if h.era:
                return datetime(calendars.japanese_era_year(h.era, d1), d2, d3, h.hour, h.minute, h.second)
            if self.order == "YMD":
                if len(h.d1) != 4:
                    return None
                year, month, day = d1, d2, d3
            else:
                if len(h.d1) > 2 or len(h.d3) not in (2, 4):
                    return None
                day, month = (d1, d2) if self.order == "DMY" else (d2, d1)
                year = d3 + 2000 if len(h.d3) == 2 else d3
            if self.calendar == "buddhist" and year >= 2400:
                year -= calendars.BUDDHIST_OFFSET
            elif self.calendar == "solar hijri" and 1300 <= year < 1500:
                day_ = calendars.jalali_to_gregorian(year, month, day)
                year, month, day = day_.year, day_.month, day_.day
            return datetime(year, month, day, h.hour, h.minute, h.second)
        except (ValueError, OverflowError):
            return None


def _backwards_steps(times: list[datetime | None]) -> int:
    valid = [t for t in times if t is not None]
    return sum(1 for a, b in zip(valid, valid[1:], strict=False) if b < a)


def _choose_dates(headers: list[_Header], warnings: list[str]) -> _Dates:
    """Pick the date order valid for most headers; break ties by chronology, then by convention."""
    four_digit_years = [int(h.d1) for h in headers if len(h.d1) == 4 and not h.era]
    four_digit_years += [int(h.d3) for h in headers if len(h.d3) == 4 and len(h.d1) <= 2]
    calendar = calendars.calendar_of(max(set(four_digit_years), key=four_digit_years.count)) \
        if four_digit_years else "gregorian"
    candidates = [_Dates(order, calendar) for order in ("YMD", "DMY", "MDY")]
    scored = []
    for dates in candidates:
        times = [dates(h) for h in headers]
        valid = sum(t is not None for t in times)
        scored.append((valid, -_backwards_steps(times), dates))
    best_valid = max(s[0] for s in scored)
    best = [s for s in scored if s[0] == best_valid]
    best.sort(key=lambda s: s[1], reverse=True)
    chosen = best[0][2]
    if len(best) > 1 and best[0][1] == best[1][1]:
        orders = {s[2].order for s in best if s[1] == best[0][1]}
        if orders == {"DMY", "MDY"}:
            chosen = candidates[1]
            if headers[0].sep == "/":  # dots and dashes are day-first by convention
                warnings.append("every date fits both day/month and month/day: assumed day/month")
    if calendar == "buddhist":
        warnings.append("dates use the Buddhist calendar: years converted to the Gregorian calendar (minus 543)")
    elif calendar == "solar hijri":
        warnings.append("dates use a Hijri-era year: read as the Solar Hijri (Persian) calendar and converted")
    if any(h.era for h in headers):
        warnings.append("dates use Japanese era years: converted to the Gregorian calendar")
    return chosen


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
    headers: list[_Header] = []
    shape: tuple[bool, str] | None = None
    for index, line in enumerate(lines):
        header = _header(index, line)
        if header is None:
            continue
        this_shape = (header.ios, header.sep)
        shape = shape or this_shape
        if this_shape == shape:
            headers.append(header)
    if not headers:
        raise DocumentError(f"{path.name} has no WhatsApp message lines: export the chat again")
    dates = _choose_dates(headers, warnings)
    units: list[Unit] = []
    counts: Counter[str] = Counter()
    valid = [(h, dates(h)) for h in headers]
    starts = [(h, t) for h, t in valid if t is not None]
    skipped = len(valid) - len(starts)
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
    extra = {
        "date_order": dates.order,
        "platform": "ios" if headers[0].ios else "android",
        "clock": "12h" if any(h.twelve_hour for h in headers) else "24h",
    }
    return build_document(kind, _title(path), path, units, warnings=warnings, counts=counts, extra=extra)

