"""The export engine (orders_core/export_engine.py) reads in ranges of order ids with a few
workers at once and still writes one file in order id order. Fake range readers stand
in for the database: each records what it was asked for."""

from __future__ import annotations

import csv
import threading

import pyarrow as pa
import pytest

from orders_core import export_engine as engine


class Ranges:
    """Orders 1..count (one item each) behind any number of fake readers."""

    def __init__(self, count: int, *, hold_first_until_third: bool = False, fail_at: int | None = None):
        self.count = count
        self.asked: list[tuple[int, int]] = []
        self.closed = 0
        self.opened = 0
        self.fail_at = fail_at
        self.third_read = threading.Event() if hold_first_until_third else None
        self.first_waited_for_third: bool | None = None
        self._lock = threading.Lock()

    def open(self):
        with self._lock:
            self.opened += 1
        return _Reader(self)


class _Reader:
    def __init__(self, ranges: Ranges):
        self.ranges = ranges

    def read(self, lo: int, hi: int):
        r = self.ranges
        with r._lock:
            r.asked.append((lo, hi))
            third = len(r.asked) == 3
        if r.fail_at is not None and lo < r.fail_at <= hi:
            raise OSError("the database went away")
        if r.third_read is not None:
            if third:
                r.third_read.set()
            if lo == 0:  # the first range finishes only after another worker wrote the second
                r.first_waited_for_third = r.third_read.wait(10)
        ids = list(range(lo + 1, min(hi, r.count) + 1))
        text = [f"ORD-{i:06d}" for i in ids]
        orders = pa.record_batch(
            [
                pa.array(ids, pa.int64()),
                pa.array(text),
                pa.array(["2026-11-26 23:21:14"] * len(ids)),
                pa.array(["paid"] * len(ids)),
                pa.array([f"c{i}@example.com" for i in ids]),
                pa.array(["Ada"] * len(ids)),
                pa.array([1999] * len(ids), pa.int64()),
                pa.array(["usd"] * len(ids)),
                *[pa.array([""] * len(ids)) for _ in range(4)],
                pa.array([0] * len(ids), pa.int64()),
                pa.array([""] * len(ids)),
            ],
            schema=engine.ORDER_SOURCE,
        )
        items = pa.record_batch(
            [
                pa.array(ids, pa.int64()),
                pa.array([f"SKU-{i}" for i in ids]),
                pa.array(["Box"] * len(ids)),
                pa.array([1] * len(ids), pa.int64()),
            ],
            schema=engine.ITEM_SOURCE,
        )
        return ([orders] if ids else []), ([items] if ids else [])

    def close(self) -> None:
        with self.ranges._lock:
            self.ranges.closed += 1


def write(ranges: Ranges, path, *, low=0, high=None, range_ids=2, workers=2) -> int:
    return engine.write_csv(
        ranges.open,
        low,
        ranges.count if high is None else high,
        str(path),
        zero_decimal=["jpy"],
        three_decimal=["kwd"],
        range_ids=range_ids,
        workers=workers,
    )


def rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_file_keeps_order_id_order_when_a_later_range_is_written_first(tmp_path):
    ranges = Ranges(9, hold_first_until_third=True)
    path = tmp_path / "orders.csv"
    assert write(ranges, path) == 9
    assert ranges.first_waited_for_third is True  # range (0, 2] was written after (2, 4]
    written = rows(path)
    assert [r["order_number"] for r in written] == [f"ORD-{i:06d}" for i in range(1, 10)]
    assert [r["sku_codes"] for r in written] == [f"SKU-{i}" for i in range(1, 10)]
    assert list(written[0]) == list(engine.COLUMNS)  # one header, at the top


def test_every_range_of_ids_is_read_exactly_once_and_every_reader_is_closed(tmp_path):
    ranges = Ranges(9)
    write(ranges, tmp_path / "orders.csv", low=0, high=9, range_ids=4, workers=3)
    assert sorted(ranges.asked) == [(0, 4), (4, 8), (8, 9)]
    assert ranges.closed == ranges.opened


def test_ranges_with_no_orders_add_nothing_and_an_empty_selection_is_the_header_alone(tmp_path):
    ranges = Ranges(3)
    path = tmp_path / "orders.csv"
    assert write(ranges, path, high=12) == 3  # ids 4..12 have no orders
    assert [r["order_number"] for r in rows(path)] == ["ORD-000001", "ORD-000002", "ORD-000003"]
    empty = tmp_path / "empty.csv"
    assert write(Ranges(0), empty, high=0) == 0
    assert empty.read_bytes() == (",".join(engine.COLUMNS) + "\r\n").encode()


def test_a_failed_read_is_raised_as_itself_and_leaves_no_parts_behind(tmp_path):
    ranges = Ranges(20, fail_at=9)
    path = tmp_path / "orders.csv"
    with pytest.raises(OSError, match="the database went away"):
        write(ranges, path)
    assert [p.name for p in tmp_path.iterdir() if p.name != "orders.csv"] == []
    assert ranges.closed == ranges.opened


def test_a_filtered_read_takes_at_most_four_ranges_and_every_order_keeps_ranges_of_65536_ids():
    from orders_core.id_ranges import FILTERED_RANGES, RANGE_IDS, range_size

    unfiltered = range_size(0, 1_000_000, filtered=False)
    filtered = range_size(0, 1_000_000, filtered=True)
    assert unfiltered == RANGE_IDS == 65_536
    assert len(engine.ranges(0, 1_000_000, unfiltered)) == 16
    assert len(engine.ranges(0, 1_000_000, filtered)) == FILTERED_RANGES == 4
    assert range_size(0, 1_000, filtered=True) == RANGE_IDS  # a small table: one range either way
    spans = engine.ranges(0, 1_000_000, filtered)
    assert spans[0][0] == 0 and spans[-1][1] == 1_000_000
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # no id left out, none twice
