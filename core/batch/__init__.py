"""Batch mode: a tweet dump in, generated tweets out, on this machine (``local``) or on Ray (``ray_engine``).

``io`` holds what both engines share (reading, planning a resumable run, formula-safe atomic writes), so
they resume by the same rule and write the same file. The Ray engine is imported only when asked for.
"""

from core.batch.io import (
    HISTORY_COLUMNS,
    OUTPUT_COLUMNS,
    REQUIRED_COLUMNS,
    check_output,
    confinement_error,
    load_done,
    media_root_for,
    parse_likes,
    plan_rows,
    read_output,
    read_tweet_csv,
    result_columns,
    row_keys,
    row_request,
    write_atomic,
)
from core.batch.local import run_batch

__all__ = [
    "HISTORY_COLUMNS", "OUTPUT_COLUMNS", "REQUIRED_COLUMNS", "check_output", "confinement_error", "load_done",
    "media_root_for", "parse_likes", "plan_rows", "read_output", "read_tweet_csv", "result_columns", "row_keys",
    "row_request", "run_batch", "write_atomic",
]
