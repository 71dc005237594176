"""Step 1: combine every CSV in the input folder into one de-duplicated data set.

Config keys: input_folder_path (read), output_folder_path (written), history_path (file records).
Writes finaldata.csv, ingestedfiles.txt (names of the files read) and ingestionmetrics.json (this run:
files read and rejected with why, rows before and after de-duplication), and records every file
version (name, SHA-256, rows, first seen, accepted or rejected and why) in the history database.
A bad file is rejected and named; the good ones are still ingested. With no good file, earlier
outputs stay as they were.
"""

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyarrow import csv as pacsv

from risk import artifacts, history
from risk.config import Config, PipelineError, atomic_write_text, atomic_writer
from risk.contract import FEATURES, ID_COLUMN, SCHEMA, TARGET, TRAINING, DataError, int_values, read_table
from risk.logs import one_line, script_config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestionResult:
    """What one ingestion did: `metrics`, as ingestionmetrics.json holds them (the files read and rejected with
    why, rows before and after de-duplication), and where the combined rows were written."""

    metrics: dict
    finaldata_path: Path


def read_input_file(path: Path) -> tuple[pa.Table | None, dict]:
    """One input file: its rows (None if rejected) and its record (name, fingerprint, SHA-256, rows or why not).

    OSError when it cannot be read as a regular file (artifacts.read_input)."""
    data, stat = artifacts.read_input(path)
    record = {
        "name": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    try:
        table = read_table(data, path.name, TRAINING)
    except DataError as error:
        return None, {**record, "status": "rejected", "reason": str(error), "rows": None}
    return table, {**record, "status": "accepted", "reason": None, "rows": table.num_rows}


def row_keys(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Each row packed exactly into two int64 keys (the contract bounds every value): the code's 4 bytes
    and last month's count in one, last year's count, the employees and `exited` in the other."""
    codes = table.column(ID_COLUMN).combine_chunks()
    start, end = codes.offset * 4, (codes.offset + len(codes)) * 4  # every code is 4 ASCII letters
    code = np.frombuffer(codes.buffers()[2], dtype=np.uint8)[start:end].view(np.uint32).astype(np.int64)
    count = {column: int_values(table.column(column), missing=-1) + 1 for column in [*FEATURES, TARGET]}
    first = code | (count["lastmonth_activity"] << 32)
    second = count["lastyear_activity"] | (count["number_of_employees"] << 31) | (count[TARGET] << 61)
    return first, second


def row_hash(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A 64-bit hash of the two keys (multiplications by odd constants, wrapping)."""
    with np.errstate(over="ignore"):
        return (first * np.int64(-7046029254386353131)) ^ (second * np.int64(-4658895280553007687))


def drop_duplicate_rows(table: pa.Table) -> pa.Table:
    """The first occurrence of each distinct row, in order (a missing value equals a missing value).

    Rows are sorted by a 64-bit hash of their exact keys (stable: the first occurrence leads); equal
    neighbours are duplicates. Should two different rows share a hash, an exact sort decides instead.
    """
    first, second = row_keys(table)
    hashed = row_hash(first, second)
    order = np.argsort(hashed, kind="stable")
    same_hash = hashed[order][1:] == hashed[order][:-1]
    same_row = same_hash & (first[order][1:] == first[order][:-1]) & (second[order][1:] == second[order][:-1])
    if (same_hash != same_row).any():  # a collision: sort by the keys themselves
        order = np.lexsort((second, first))
        same_row = (first[order][1:] == first[order][:-1]) & (second[order][1:] == second[order][:-1])
    return without_rows(table, np.sort(order[1:][same_row]))


def without_rows(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """`table` less the rows at the sorted positions `rows`: zero-copy slices between them."""
    if len(rows) > 10_000:
        return table.take(np.setdiff1d(np.arange(table.num_rows), rows))
    bounds = [-1, *rows.tolist(), table.num_rows]
    pairs = zip(bounds[:-1], bounds[1:], strict=True)
    pieces = [table.slice(start + 1, end - start - 1) for start, end in pairs if end > start + 1]
    return pa.concat_tables(pieces) if pieces else table.slice(0, 0)


def ingest_files(csv_paths) -> tuple[pa.Table | None, dict]:
    """Combine and de-duplicate the good files; return the rows (None if no file is usable) and the
    run's metrics, with a record of every file, accepted or rejected."""
    started = time.perf_counter()
    tables, files = [], []
    for path in csv_paths:
        try:
            table, record = read_input_file(path)
        except OSError as error:  # replaced by a link or a pipe since it was listed, or unreadable
            logger.warning("skipped %s in the input folder: %s", one_line(path.name), error.strerror or error)
            continue
        files.append(record)
        if table is None:
            logger.error("rejected %s", record["reason"])
        else:
            tables.append(table if table.schema == SCHEMA else table.cast(SCHEMA))
    combined = pa.concat_tables(tables) if tables else None
    finaldata = drop_duplicate_rows(combined) if tables else None
    rows_read, rows_kept = (combined.num_rows, finaldata.num_rows) if tables else (0, 0)
    metrics = {
        "ingested_at": history.utc_now(),
        "seconds": round(time.perf_counter() - started, 3),
        "files_read": [file for file in files if file["status"] == "accepted"],
        "files_rejected": [file for file in files if file["status"] == "rejected"],
        "rows_read": rows_read,
        "rows_after_deduplication": rows_kept,
        "duplicates_dropped": rows_read - rows_kept,
    }
    return finaldata, metrics


def record_files(conn, folder: str, files: list[dict]) -> None:
    """Every file version seen, accepted or rejected, in one transaction; adds first_seen_at to each."""
    with conn:
        ids = [history.record_file(conn, {"folder": folder, **file}) for file in files]
        history.mark_present(conn, folder, ids)
    for file, file_id in zip(files, ids, strict=True):
        file["first_seen_at"] = conn.execute("SELECT first_seen_at FROM files WHERE id = ?", (file_id,)).fetchone()[0]


def write_outputs(finaldata: pa.Table, metrics: dict, output_folder_path: Path) -> None:
    """Write finaldata.csv, ingestedfiles.txt and the metrics, each atomically."""
    with atomic_writer(output_folder_path / artifacts.FINALDATA_FILE, "wb") as handle:
        handle.write((",".join(finaldata.column_names) + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(finaldata, handle, options)
    names = "".join(f"{item['name']}\n" for item in metrics["files_read"])
    atomic_write_text(output_folder_path / artifacts.INGESTEDFILES_FILE, names)
    atomic_write_text(output_folder_path / artifacts.INGESTION_METRICS_FILE, json.dumps(metrics, indent=2) + "\n")


def arrival_order(conn, folder: str, names: list[str]) -> list[str]:
    """Names by when the history first saw them (new ones last, by name): later rows are newer."""
    known = history.file_states(conn, folder)
    first_seen = {name: min(version["first_seen_at"] for version in versions) for name, versions in known.items()}
    return sorted(names, key=lambda name: (name not in first_seen, first_seen.get(name, ""), name))


def ingest(config: Config) -> IngestionResult:
    """Combine the input folder's files (input_folder_path, in arrival order) into output_folder_path's
    finaldata.csv, ingestedfiles.txt and ingestionmetrics.json, recording every file version and the step's
    time in the history (history_path). PipelineError when no file is usable: earlier outputs stay."""
    started_at, started = history.utc_now(), time.perf_counter()
    with history.opened(config.history_path) as conn:
        folder = history.folder_key(config.input_folder_path, config.history_path)
        names, warnings = artifacts.scan_input(config.input_folder_path)
        for warning in warnings:
            logger.warning("%s", warning)
        csv_paths = [config.input_folder_path / name for name in arrival_order(conn, folder, names)]
        logger.info("ingestion started: %d CSV file(s) in %s", len(csv_paths), config.input_folder_path)
        finaldata, metrics = ingest_files(csv_paths)
        record_files(conn, folder, metrics["files_read"] + metrics["files_rejected"])
        if finaldata is None:
            history.record_step(
                conn, str(config.config_path), "ingestion", started_at, time.perf_counter() - started, False, {}
            )
            raise PipelineError(
                f"no usable CSV file among {len(csv_paths)} in {config.input_folder_path}; outputs left unchanged"
            )
        metrics["input_folder_path"] = str(config.input_folder_path)
        write_outputs(finaldata, metrics, config.output_folder_path)
        seconds = time.perf_counter() - started
        detail = {key: metrics[key] for key in ("rows_read", "rows_after_deduplication")}
        history.record_step(conn, str(config.config_path), "ingestion", started_at, seconds, True, detail)
    result = IngestionResult(metrics, config.output_folder_path / artifacts.FINALDATA_FILE)
    logger.info(
        "ingestion finished in %.2fs: %d file(s) read, %d rejected, %d rows, %d after de-duplication: %s",
        seconds,
        len(metrics["files_read"]),
        len(metrics["files_rejected"]),
        metrics["rows_read"],
        metrics["rows_after_deduplication"],
        result.finaldata_path,
    )
    return result


def main(argv=None) -> IngestionResult:
    """`python ingestion.py`: ingest with the config RISK_CONFIG names (or config.json); a failure is one line
    and exit code 1."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    with script_config() as config, artifacts.run_lock(config, "ingestion.py"):
        return ingest(config)


if __name__ == "__main__":
    main()
