"""The comments of the tables the jobs create (`compute/schema.py`'s `column`), read from
their specs: every column has one, and the Glue catalog can hold it."""

from __future__ import annotations

import pytest

from traffic_glue.compute import schema as S
from traffic_glue.jobs import summary_job
from traffic_glue.store import curated, locations

CREATED_TABLES = {spec.kind: spec for spec in (curated.SPEC, locations.SPEC, summary_job.SPEC)}


@pytest.mark.parametrize("kind", sorted(CREATED_TABLES))
def test_every_column_of_a_created_table_has_a_comment_glue_can_hold(kind):
    fields = CREATED_TABLES[kind].schema.fields
    comments = {f.name: f.metadata.get(S.COMMENT) for f in fields}
    assert [name for name, comment in comments.items() if not (isinstance(comment, str) and comment.strip())] == []
    # The Glue Data Catalog refuses a column comment of more than 255 bytes or of two lines.
    too_long = [name for name, comment in comments.items() if len(comment.encode()) > S.COMMENT_MAX_BYTES]
    assert too_long == []
    assert [name for name, comment in comments.items() if "\n" in comment or "\r" in comment] == []
    # One text per column: none copied from another column of the table.
    assert len(set(comments.values())) == len(fields)

