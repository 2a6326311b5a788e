"""What every benchmark shares: timing, statistics, figures, the machine, the table.

A figure is one measured quantity (say "bulk fulfill rate on SQLite") with the
median, min and max of its repeats, the same for its baseline measured in the same
process on the same data, their ratio, the target and whether it was met, and, when
it was not, what limits it (from profiling)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import platform
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "work"
RESULTS_DIR = BENCH_DIR / "results"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- statistics ------------------------------------------------------------------------------
@dataclasses.dataclass
class Stats:
    """Median, min and max of the repeats of one measurement, in `unit`."""

    median: float
    min: float
    max: float
    samples: list[float]
    unit: str

    @classmethod
    def of(cls, samples: list[float], unit: str) -> Stats:
        if not samples:
            raise ValueError("no samples")
        return cls(statistics.median(samples), min(samples), max(samples), list(samples), unit)

    def as_dict(self) -> dict:
        return {
            "median": _round(self.median),
            "min": _round(self.min),
            "max": _round(self.max),
            "samples": [_round(s) for s in self.samples],
            "unit": self.unit,
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> Stats | None:
        if d is None:
            return None
        return cls(d["median"], d["min"], d["max"], list(d["samples"]), d["unit"])


def _round(x: float) -> float:
    if x == 0 or abs(x) >= 100:
        return round(x, 1)
    return float(f"{x:.4g}")


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    k = (len(ordered) - 1) * p / 100.0
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


@contextlib.contextmanager
def timer() -> Iterator[Callable[[], float]]:
    """with timer() as elapsed: ...; elapsed() -> seconds (frozen at the block's end)."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


# -- memory ----------------------------------------------------------------------------------
def rss_bytes() -> int:
    """This process's resident set size now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples this process's RSS every few milliseconds while open: the peak seen,
    and the RSS when it started (which the peak is reported above)."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.start = rss_bytes()
        self.peak = self.start
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-rss")

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())


# -- figures ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Figure:
    key: str  # stable id, e.g. "bulk_fulfill.sqlite"
    title: str  # what the table's first column says
    backend: str  # sqlite or postgresql
    value: Stats  # the measured quantity
    better: str  # "higher" (a rate) or "lower" (a time)
    target: str = ""  # in words, e.g. "≥ 8,000 orders/s and ≥ 10× baseline"
    met: bool | None = None  # None: no target
    baseline: Stats | None = None
    baseline_title: str = ""
    limits: str = ""  # what limits it, when a target is missed
    notes: str = ""
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def ratio(self) -> Stats | None:
        """How many times better than the baseline: median of per-repeat ratios
        (repeat i of the figure beside repeat i of the baseline), with min and max."""
        if self.baseline is None:
            return None
        pairs = list(zip(self.value.samples, self.baseline.samples))
        if not pairs:
            return None
        if self.better == "higher":
            ratios = [v / b for v, b in pairs if b]
        else:
            ratios = [b / v for v, b in pairs if v]
        return Stats.of(ratios, "×") if ratios else None

    def as_dict(self) -> dict:
        ratio = self.ratio
        return {
            "key": self.key,
            "title": self.title,
            "backend": self.backend,
            "value": self.value.as_dict(),
            "better": self.better,
            "target": self.target,
            "met": self.met,
            "baseline": None
            if self.baseline is None
            else dict(self.baseline.as_dict(), title=self.baseline_title),
            "ratio": None if ratio is None else ratio.as_dict(),
            "limits": self.limits,
            "notes": self.notes,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Figure:
        baseline = d.get("baseline")
        return cls(
            key=d["key"],
            title=d["title"],
            backend=d["backend"],
            value=Stats.from_dict(d["value"]),
            better=d["better"],
            target=d["target"],
            met=d["met"],
            baseline=Stats.from_dict(baseline),
            baseline_title=(baseline or {}).get("title", ""),
            limits=d.get("limits", ""),
            notes=d.get("notes", ""),
            extra=d.get("extra", {}),
        )


def fmt(x: float, unit: str) -> str:
    if unit.endswith("/s"):
        return f"{x:,.0f} {unit}" if x >= 10 else f"{x:,.2f} {unit}"
    if unit == "ms":
        return f"{x:,.1f} ms" if x < 100 else f"{x:,.0f} ms"
    if unit == "s":
        return f"{x:,.2f} s" if x < 10 else f"{x:,.1f} s"
    if unit == "MB":
        return f"{x:,.0f} MB"
    if unit == "%":
        return f"{x:.1f} %"
    if unit == "×":
        return f"{x:,.1f}×" if x >= 1 else f"{x:.2g}×"
    return f"{x:,.4g} {unit}".strip()


def fmt_stats(s: Stats) -> str:
    return f"{fmt(s.median, s.unit)} ({fmt(s.min, s.unit)}–{fmt(s.max, s.unit)})"


def markdown_table(figures: list[Figure]) -> str:
    lines = [
        "| # | measurement | backend | median (min–max) | baseline, same run: median (min–max) "
        "| vs baseline | target | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, f in enumerate(figures, start=1):
        ratio = f.ratio
        met = "—" if f.met is None else ("yes" if f.met else "**no**")
        baseline = "—" if f.baseline is None else f"{f.baseline_title}: {fmt_stats(f.baseline)}"
        lines.append(
            f"| {n} | {f.title} | {f.backend} | {fmt_stats(f.value)} | {baseline} | "
            f"{'—' if ratio is None else fmt(ratio.median, '×')} | {f.target or '—'} | {met} |"
        )
    limits = [(n, f) for n, f in enumerate(figures, start=1) if f.limits]
    notes = [(n, f) for n, f in enumerate(figures, start=1) if f.notes]
    if limits:
        lines += ["", "What limits the targets that were missed:", ""]
        lines += [f"- **{n}. {f.title} ({f.backend})**: {f.limits}" for n, f in limits]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {n}. {f.title} ({f.backend}): {f.notes}" for n, f in notes]
    return "\n".join(lines)


# -- the machine -----------------------------------------------------------------------------
def machine_info() -> dict:
    import sqlite3

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    for module in ("pandas", "duckdb", "pyarrow", "sqlalchemy", "streamlit", "polars", "adbc_driver_sqlite"):
        try:
            info[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - not installed, or no __version__
            pass
    try:
        info["git_commit"] = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


# -- the SQLite WAL's size while something runs -----------------------------------------------
WAL_SAMPLE_SECONDS = 0.05


class WalSampler:
    """The size of `path`-wal every WAL_SAMPLE_SECONDS while open, with the time of each."""

    def __init__(self, path: Path | None):
        self.wal = Path(f"{path}-wal") if path else None
        self.samples: list[tuple[float, int]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-wal")

    def __enter__(self) -> WalSampler:
        if self.wal is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        assert self.wal is not None
        while not self._done.is_set():
            try:
                size = self.wal.stat().st_size
            except OSError:
                size = 0
            self.samples.append((time.perf_counter(), size))
            self._done.wait(WAL_SAMPLE_SECONDS)

    def peak_mb(self, start: float, end: float) -> float | None:
        sizes = [s for t, s in self.samples if start <= t <= end]
        return max(sizes) / 1e6 if sizes else None
