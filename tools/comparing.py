"""The one comparison of two engines' rows (Spark's against DuckDB's, the job's against
the reference): equal, value by value, doubles within a tolerance, NULL only where NULL."""

from __future__ import annotations

import math

TOLERANCE = 1e-9


def same_value(a, b, double: bool, tolerance: float = TOLERANCE) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance) if double else a == b


def assert_same_rows(ours: list, theirs: list, columns: list[str], doubles: set[str],
                     key: int = 3, tolerance: float = TOLERANCE) -> None:
    """`ours` and `theirs` (tuples in `columns` order, or dicts by column, both in the
    same order) hold the same rows; a difference names the column, the row's first `key`
    values and both values (the first five of them)."""
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    mismatches = []
    for a_row, b_row in zip(ours, theirs):
        a_values = [a_row[c] for c in columns] if isinstance(a_row, dict) else list(a_row)
        b_values = [b_row[c] for c in columns] if isinstance(b_row, dict) else list(b_row)
        for name, a, b in zip(columns, a_values, b_values):
            if not same_value(a, b, name in doubles, tolerance):
                mismatches.append((name, tuple(a_values[:key]), a, b))
    assert not mismatches, f"{len(mismatches)} values differ, first: {mismatches[:5]}"
