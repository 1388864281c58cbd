"""Live memory panel: KV cache held vs the full-attention equivalent, RSS and GPU memory over time.

Drawn with QPainter (QtCharts is not part of PySide6-Essentials). The chart has two lanes:
the KV cache (held, filled; full-attention equivalent, dashed) and the process (RSS, GPU
allocated and reserved on CUDA). Repaints are throttled to about 10 Hz.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.gui import theme

MiB = 1024 * 1024


def format_bytes(value: float) -> str:
    """1536 -> '1.5 KiB'; compact, for labels and axes."""
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass
class _KvPoint:
    t: float
    held: int
    full: int


@dataclass
class _ProcessPoint:
    t: float
    rss: int
    gpu_allocated: int | None
    gpu_reserved: int | None


class MemoryChart(QWidget):
    """Two lanes of time series; ``add_*`` methods append, the widget repaints at most 10 times a second."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Memory chart")
        self.setAccessibleDescription("KV cache held versus full attention, process RSS and GPU memory over time")
        self.kv: list[_KvPoint] = []
        self.process: list[_ProcessPoint] = []
        self._t0 = time.monotonic()
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._repaint_if_dirty)
        self._timer.start()

    def reset(self) -> None:
        self.kv.clear()
        self.process.clear()
        self._t0 = time.monotonic()
        self.update()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def add_kv(self, held: int, full: int) -> None:
        self.kv.append(_KvPoint(self.now(), int(held), int(full)))
        self._dirty = True

    def add_process(self, rss: int, gpu_allocated: int | None = None, gpu_reserved: int | None = None) -> None:
        self.process.append(_ProcessPoint(self.now(), int(rss), gpu_allocated, gpu_reserved))
        self._dirty = True

    def _repaint_if_dirty(self) -> None:
        if self._dirty:
            self._dirty = False
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        c = theme.colors()
        rect = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        gap = 10
        lane_h = (rect.height() - gap) / 2
        span = max(5.0, self._latest_t())
        kv_lane = QRectF(rect.left(), rect.top(), rect.width(), lane_h)
        proc_lane = QRectF(rect.left(), rect.top() + lane_h + gap, rect.width(), lane_h)
        self._draw_kv_lane(painter, kv_lane, span, c)
        self._draw_process_lane(painter, proc_lane, span, c)
        painter.end()

    def _latest_t(self) -> float:
        times = [p.t for p in self.kv[-1:]] + [p.t for p in self.process[-1:]]
        return max(times, default=0.0)

    def _frame(self, painter: QPainter, lane: QRectF, title: str, top: float, legend, c: theme.Colors) -> QRectF:
        """Draw the lane's title, legend, grid and y labels; return the plotting area."""
        text = self.palette().color(QPalette.ColorRole.WindowText)
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, self.font().pointSizeF() * 0.85))
        painter.setFont(small)
        metrics = painter.fontMetrics()
        label_w = metrics.horizontalAdvance("000.0 MiB") + 6
        header_h = metrics.height() + 4
        plot = QRectF(lane.left() + label_w, lane.top() + header_h, lane.width() - label_w, lane.height() - header_h)
        painter.setPen(text)
        painter.drawText(QPointF(lane.left(), lane.top() + metrics.ascent()), title)
        x = lane.left() + metrics.horizontalAdvance(title) + 16
        for name, color, dashed in legend:
            painter.setPen(QPen(QColor(color), 2, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine))
            y = lane.top() + metrics.ascent() / 2 + 1
            painter.drawLine(QPointF(x, y), QPointF(x + 14, y))
            painter.setPen(QColor(c.muted))
            painter.drawText(QPointF(x + 18, lane.top() + metrics.ascent()), name)
            x += 18 + metrics.horizontalAdvance(name) + 14
        painter.setPen(QPen(QColor(c.grid), 1))
        for i in range(5):
            y = plot.bottom() - plot.height() * i / 4
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            if top > 0:
                painter.setPen(QColor(c.muted))
                painter.drawText(QRectF(lane.left(), y - metrics.height() / 2, label_w - 6, metrics.height()),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                                 format_bytes(top * i / 4))
                painter.setPen(QPen(QColor(c.grid), 1))
        return plot

    @staticmethod
    def _path(plot: QRectF, span: float, top: float, points: list[tuple[float, float]]) -> QPainterPath:
        path = QPainterPath()
        for i, (t, value) in enumerate(points):
            point = QPointF(plot.left() + plot.width() * t / span, plot.bottom() - plot.height() * value / top)
            if i == 0:
                path.moveTo(point)
            else:
                path.lineTo(point)
        return path

    def _draw_kv_lane(self, painter: QPainter, lane: QRectF, span: float, c: theme.Colors) -> None:
        top = _nice_top(max((p.full for p in self.kv), default=0))
        legend = [("held", c.kv_held, False), ("full attention", c.kv_full, True)]
        plot = self._frame(painter, lane, "KV cache", top, legend, c)
        if len(self.kv) < 1 or top <= 0:
            self._empty(painter, plot, "no KV cache samples (yet)" if self.process else "no run yet", c)
            return
        held = [(p.t, p.held) for p in self.kv]
        full = [(p.t, p.full) for p in self.kv]
        if len(held) == 1:
            held.insert(0, (0.0, held[0][1]))
            full.insert(0, (0.0, full[0][1]))
        area = self._path(plot, span, top, held)
        area.lineTo(QPointF(plot.left() + plot.width() * held[-1][0] / span, plot.bottom()))
        area.lineTo(QPointF(plot.left() + plot.width() * held[0][0] / span, plot.bottom()))
        area.closeSubpath()
        fill = QColor(c.kv_held)
        fill.setAlpha(70)
        painter.fillPath(area, fill)
        painter.setPen(QPen(QColor(c.kv_held), 2))
        painter.drawPath(self._path(plot, span, top, held))
        painter.setPen(QPen(QColor(c.kv_full), 2, Qt.PenStyle.DashLine))
        painter.drawPath(self._path(plot, span, top, full))

    def _draw_process_lane(self, painter: QPainter, lane: QRectF, span: float, c: theme.Colors) -> None:
        values = [p.rss for p in self.process] + [p.gpu_reserved or 0 for p in self.process]
        top = _nice_top(max(values, default=0))
        has_gpu = any(p.gpu_allocated is not None for p in self.process)
        legend = [("RSS", c.rss, False)]
        if has_gpu:
            legend += [("GPU allocated", c.gpu_allocated, False), ("GPU reserved", c.gpu_reserved, True)]
        plot = self._frame(painter, lane, "Process", top, legend, c)
        if not self.process or top <= 0:
            self._empty(painter, plot, "no run yet", c)
            return
        series = [("rss", c.rss, False)]
        if has_gpu:
            series += [("gpu_allocated", c.gpu_allocated, False), ("gpu_reserved", c.gpu_reserved, True)]
        for attr, color, dashed in series:
            points = [(p.t, getattr(p, attr) or 0) for p in self.process]
            if len(points) == 1:
                points.insert(0, (0.0, points[0][1]))
            painter.setPen(QPen(QColor(color), 2, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine))
            painter.drawPath(self._path(plot, span, top, points))

    @staticmethod
    def _empty(painter: QPainter, plot: QRectF, message: str, c: theme.Colors) -> None:
        painter.setPen(QColor(c.muted))
        painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, message)


def _nice_top(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 5 × 10^k bytes in MiB steps)."""
    if value <= 0:
        return 0.0
    step = 1024.0
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value * 1.05:
                return step * factor
        step *= 10


class MemoryPanel(QFrame):
    """The chart plus numbers: KV held and saved, RSS, GPU, tokens/s, ETA and the pre-run estimate."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.setAccessibleName("Memory panel")
        self.chart = MemoryChart(self)
        self.samples_received = 0
        self.estimate_label = QLabel("Estimate appears once a model is chosen.", self)
        self.estimate_label.setObjectName("muted")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setAccessibleName("Memory estimate")
        self._values: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        for column, (key, caption) in enumerate(
            [("kv", "KV held"), ("saved", "Saved vs full"), ("rss", "Process RSS"), ("gpu", "GPU alloc / reserved"),
             ("speed", "Speed"), ("eta", "ETA")]
        ):
            cap = QLabel(caption, self)
            cap.setObjectName("muted")
            value = QLabel("–", self)
            font = value.font()
            font.setPointSizeF(font.pointSizeF() * 1.15)
            font.setBold(True)
            value.setFont(font)
            value.setAccessibleName(caption)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(cap, 0, column)
            grid.addWidget(value, 1, column)
            self._values[key] = value
        title = QLabel("Memory", self)
        title.setObjectName("cardTitle")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addWidget(title)
        layout.addLayout(grid)
        layout.addWidget(self.chart, 1)
        layout.addWidget(self.estimate_label)

    def value_text(self, key: str) -> str:
        return self._values[key].text()

    def reset(self) -> None:
        self.chart.reset()
        self.samples_received = 0
        for label in self._values.values():
            label.setText("–")

    def snapshot(self) -> dict:
        """The chart's series and the shown numbers, to show a finished job again later."""
        return {"kv": list(self.chart.kv), "process": list(self.chart.process),
                "values": {key: label.text() for key, label in self._values.items()},
                "samples": self.samples_received, "span": self.chart.now()}

    def restore(self, snapshot: dict) -> None:
        self.chart.kv = list(snapshot["kv"])
        self.chart.process = list(snapshot["process"])
        self.samples_received = snapshot["samples"]
        for key, text in snapshot["values"].items():
            self._values[key].setText(text)
        self.chart.update()

    def add_kv_sample(self, held: int, full: int) -> None:
        self.samples_received += 1
        self.chart.add_kv(held, full)
        self._values["kv"].setText(format_bytes(held))
        if full > 0:
            self._values["saved"].setText(f"{100 * (1 - held / full):.0f} % of {format_bytes(full)}")

    def add_process_sample(self, rss: int, gpu_allocated: int | None = None, gpu_reserved: int | None = None) -> None:
        self.samples_received += 1
        self.chart.add_process(rss, gpu_allocated, gpu_reserved)
        self._values["rss"].setText(format_bytes(rss))
        if gpu_allocated is not None:
            self._values["gpu"].setText(f"{format_bytes(gpu_allocated)} / {format_bytes(gpu_reserved or 0)}")
        else:
            self._values["gpu"].setText("no GPU")

    def set_speed(self, reading: bool, tokens_per_s: float, eta_s: float | None) -> None:
        verb = "reading" if reading else "writing"
        rate = f"{tokens_per_s:,.1f}" if tokens_per_s < 10 else f"{tokens_per_s:,.0f}"
        self._values["speed"].setText(f"{rate} tok/s {verb}" if tokens_per_s else "–")
        self._values["eta"].setText(format_duration(eta_s))

    def set_estimate(self, text: str, fits: bool | None) -> None:
        c = theme.colors()
        color = c.muted if fits is None else (c.ok if fits else c.error)
        prefix = "" if fits is None else ("✓ " if fits else "⚠ ")
        self.estimate_label.setText(prefix + text)
        self.estimate_label.setStyleSheet(f"color: {color};")
