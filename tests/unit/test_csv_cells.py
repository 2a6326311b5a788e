"""The spreadsheet-safe cell: one rule for every CSV, in Python and in DuckDB SQL."""

from __future__ import annotations

import io

import duckdb
import pandas as pd
import pytest

from orders_core.csv_cells import csv_bytes, spreadsheet_safe, spreadsheet_safe_sql
from tests.support.spreadsheet_cells import DANGEROUS_STARTS, HOSTILE_TEXTS, escaped

HARMLESS = ("Ada Lovelace", "ORD-000123", "", " =not first", "1+1", "😀=", "\n=after a newline")


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=[repr(s) for s in DANGEROUS_STARTS])
def test_text_that_starts_with_a_formula_character_or_the_escape_gets_one_quote_in_front(text):
    assert spreadsheet_safe(text) == escaped(text)


@pytest.mark.parametrize("text", HARMLESS)
def test_other_text_is_left_as_it_is(text):
    assert spreadsheet_safe(text) == text


def test_values_that_are_not_text_are_left_as_they_are():
    for value in (-1, -2.5, None, 0):
        assert spreadsheet_safe(value) == value


def test_the_escape_can_always_be_undone_by_dropping_one_leading_quote():
    for text in HOSTILE_TEXTS + HARMLESS:
        safe = spreadsheet_safe(text)
        assert (safe[1:] if safe.startswith("'") else safe) == text


def test_the_sql_form_gives_the_same_cell_as_the_python_form():
    texts = list(HOSTILE_TEXTS + HARMLESS)
    with duckdb.connect() as con:
        got = [
            row[0]
            for row in con.execute(
                f"SELECT {spreadsheet_safe_sql('t')} FROM unnest(?) AS u(t)", [texts]
            ).fetchall()
        ]
    assert got == [spreadsheet_safe(t) for t in texts]


def test_a_frame_as_csv_escapes_its_text_columns_and_leaves_numbers_alone():
    frame = pd.DataFrame({"text": list(HOSTILE_TEXTS), "number": range(-3, 4)})
    written = pd.read_csv(io.BytesIO(csv_bytes(frame)), keep_default_na=False)
    assert list(written["text"]) == [escaped(t) for t in HOSTILE_TEXTS]
    assert list(written["number"]) == list(range(-3, 4))
