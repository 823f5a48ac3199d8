"""Cells of the CSV files people download and open in a spreadsheet."""

from __future__ import annotations

# A cell starting with one of these is read as a formula (or, for tab and carriage return, can be made into one)
# by Excel and its kin: CSV injection. Such a cell is written with a leading apostrophe, which shows as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A value from a file, from a person or from the ATO, safe to put in a downloaded CSV."""
    text = str(value)
    return f"'{text}" if text[:1] in FORMULA_STARTS else value
