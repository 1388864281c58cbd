"""PNG line charts of the benchmark results (Qt's QPainter offscreen; no plotting library needed).

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m benchmarks.plots --out docs/benchmarks
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import common

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
Series = tuple[str, Sequence[tuple[float, float]]]


def line_chart(path: Path, title: str, x_label: str, y_label: str, series: Sequence[Series],
               log_x: bool = False, log_y: bool = False, size: tuple[int, int] = (760, 460)) -> None:
    """Draw ``series`` (name, [(x, y), ...]) as lines with markers and a legend; save a PNG."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPen

    _app = QGuiApplication.instance() or QGuiApplication([])
    width, height = size
    left, right, top, bottom = 80, 180, 40, 60
    image = QImage(width, height, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    fx = math.log10 if log_x else float
    fy = math.log10 if log_y else float
    points = [(fx(x), fy(y)) for _, pts in series for x, y in pts]
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = (y1 - y0) * 0.08 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    plot = QRectF(left, top, width - left - right, height - top - bottom)

    def to_px(x: float, y: float) -> QPointF:
        return QPointF(plot.left() + (fx(x) - x0) / (x1 - x0) * plot.width(),
                       plot.bottom() - (fy(y) - y0) / (y1 - y0) * plot.height())

    painter.setPen(QPen(QColor("black"), 1))
    painter.drawRect(plot)
    painter.drawText(QRectF(0, 5, width, 25), Qt.AlignmentFlag.AlignCenter, title)
    painter.drawText(QRectF(left, height - 25, plot.width(), 20), Qt.AlignmentFlag.AlignCenter, x_label)
    painter.save()
    painter.translate(15, top + plot.height() / 2)
    painter.rotate(-90)
    painter.drawText(QRectF(-plot.height() / 2, -10, plot.height(), 20), Qt.AlignmentFlag.AlignCenter, y_label)
    painter.restore()
    xs = sorted({x for _, pts in series for x, _ in pts})
    for x in xs:
        p = to_px(x, 10 ** y0 if log_y else y0)
        painter.drawText(QRectF(p.x() - 40, plot.bottom() + 4, 80, 18), Qt.AlignmentFlag.AlignCenter, _short(x))
    for i in range(5):
        value = y0 + (y1 - y0) * i / 4
        shown = 10 ** value if log_y else value
        y = plot.bottom() - plot.height() * i / 4
        painter.drawText(QRectF(0, y - 9, left - 6, 18), Qt.AlignmentFlag.AlignRight, _short(shown))
    for index, (name, pts) in enumerate(series):
        color = QColor(COLORS[index % len(COLORS)])
        painter.setPen(QPen(color, 2))
        pixels = [to_px(x, y) for x, y in sorted(pts)]
        for a, b in zip(pixels, pixels[1:], strict=False):
            painter.drawLine(a, b)
        for p in pixels:
            painter.drawEllipse(p, 3, 3)
        legend_y = top + 10 + 20 * index
        painter.drawLine(QPointF(width - right + 10, legend_y), QPointF(width - right + 30, legend_y))
        painter.setPen(QPen(QColor("black"), 1))
        painter.drawText(QRectF(width - right + 35, legend_y - 9, right - 40, 18), Qt.AlignmentFlag.AlignLeft, name)
    painter.end()
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(path))


def _short(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 2**20:.0f}Mi" if value >= 2**20 else f"{value:.0f}"
    if abs(value) >= 1000:
        return f"{value / 1024:.0f}k" if float(value).is_integer() else f"{value:.0f}"
    return f"{value:.3g}"


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def adapt_lineage_chart(folders: Sequence[Path], path: Path, points: int = 9) -> None:
    """Training curves of an adapter trained in continued runs: each folder's ``history.csv`` in order,
    steps added up, means over ``points`` equal spans (plain-text KL, answer KL and first-value loss of
    recall rows)."""
    import csv

    rows: list[dict[str, str]] = []
    for folder in folders:
        with open(Path(folder) / "history.csv", encoding="utf-8") as handle:
            rows.extend(csv.DictReader(handle))
    every = -(-len(rows) // points)

    def means(key: str, recall: bool | None) -> list[tuple[float, float]]:
        points = []
        for start in range(0, len(rows), every):
            values = [float(r[key]) for r in rows[start : start + every] if r.get(key) not in ("", None)
                      and (recall is None or (r.get("answer_kl") not in ("", None)) == recall)]
            if values:
                points.append((float(min(start + every, len(rows))), sum(values) / len(values)))
        return points

    line_chart(path, f"SepLLM adaptation, {len(folders)} continued runs, {len(rows)} steps (means of {every})",
               "step", "loss", [("KL, plain rows", means("kl", False)),
                                ("answer KL", means("answer_kl", True)),
                                ("first-value LM", means("first_value_lm", True))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=common.RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=common.REPO / "docs" / "benchmarks")
    parser.add_argument("--adapt-lineage", type=Path, nargs="+", default=None, metavar="DIR",
                        help="only draw adapt_lineage.png from these adapter folders' history.csv, in training order")
    args = parser.parse_args(argv)
    if args.adapt_lineage:
        adapt_lineage_chart(args.adapt_lineage, args.out / "adapt_lineage.png")
        print(f"{args.out / 'adapt_lineage.png'} written")
        return 0
    scaling = [r for r in _read(args.results / "scaling.jsonl") if r["bench"] == "scaling"]
    if scaling:
        sep = sorted((r["tokens"], r) for r in scaling if r["cache"] == "sepllm")
        full = sorted((r["tokens"], r) for r in scaling if r["cache"] == "full")
        line_chart(args.out / "kv_memory.png", "KV cache bytes vs tokens read (default model, bf16)",
                   "tokens read", "MiB (log scale)", [
                       ("sepllm peak", [(t, r["kv_bytes_peak"] / 2**20) for t, r in sep]),
                       ("full-cache equiv.", [(t, r["kv_bytes_full_equivalent"] / 2**20) for t, r in sep]),
                       ("process RSS peak", [(t, r["rss_peak_bytes"] / 2**20) for t, r in sep])],
                   log_x=True, log_y=True)
        line_chart(args.out / "speed.png", "Tokens/s vs context (default model, bf16, 2 threads)",
                   "context tokens", "tokens/s", [
                       ("sepllm prefill", [(t, r["prefill_tokens_per_s"]) for t, r in sep]),
                       ("full prefill", [(t, r["prefill_tokens_per_s"]) for t, r in full]),
                       ("sepllm decode", [(t, r["decode_tokens_per_s"]) for t, r in sep]),
                       ("full decode", [(t, r["decode_tokens_per_s"]) for t, r in full])],
                   log_x=True, log_y=True)
    ppl = _read(args.results / "perplexity.jsonl")
    for book in dict.fromkeys(r["book"] for r in ppl):
        names = dict.fromkeys(f"{r['cache']}" + (f" {r['budget']}" if r.get("budget") else "")
                              for r in ppl if r["book"] == book)
        series = [(name, [(r["tokens"], r["ppl"]) for r in ppl if r["book"] == book and
                          f"{r['cache']}" + (f" {r['budget']}" if r.get("budget") else "") == name])
                  for name in names]
        line_chart(args.out / f"perplexity_{book}.png", f"Streaming perplexity, {book}", "tokens read",
                   "perplexity", series, log_x=True)
    recall_rows = _read(args.results / "recall.jsonl")
    for book in dict.fromkeys(r["book"] for r in recall_rows):
        series = []
        for r in (row for row in recall_rows if row["book"] == book):
            by_depth: dict[float, list[int]] = {}
            for fact in r["facts"]:
                by_depth.setdefault(fact["depth"], []).append(fact["rank"])
            series.append((r["cache"], [(d, sum(v) / len(v)) for d, v in sorted(by_depth.items())]))
        line_chart(args.out / f"recall_{book}.png", f"Planted-fact recall, {book}: mean rank of the answer (1 best, 5.5 chance)",
                   "depth of the fact in the document", "mean rank of 10", series)
    print(f"plots written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
