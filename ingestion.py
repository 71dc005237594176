"""Step 1: combine every CSV in the input folder into one de-duplicated data set.

Config keys: input_folder_path (read), output_folder_path (written), history_path (file records).
Writes finaldata.csv, ingestedfiles.txt (names of the files read) and ingestionmetrics.json (this run:
files read and rejected with why, rows before and after de-duplication), and records every file
version (name, SHA-256, rows, first seen, accepted or rejected and why) in the history database.
A bad file is rejected and named; the good ones are still ingested. With no good file, earlier
outputs stay as they were.
"""

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import pandas as pd

from risk import artifacts, history
from risk.config import PipelineError, atomic_write_text, atomic_writer, load_config, run_cli
from risk.contract import TRAINING, DataError, read_csv_bytes

logger = logging.getLogger(__name__)


def read_input_file(path: Path) -> tuple[pd.DataFrame | None, dict]:
    """One input file: its rows (None if rejected) and its record (name, fingerprint, SHA-256, rows or reason)."""
    with open(path, "rb") as handle:
        data = handle.read()
        stat = os.fstat(handle.fileno())
    record = {
        "name": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    try:
        df = read_csv_bytes(data, path.name, TRAINING)
    except DataError as error:
        return None, {**record, "status": "rejected", "reason": str(error), "rows": None}
    return df, {**record, "status": "accepted", "reason": None, "rows": len(df)}


def ingest_files(csv_paths) -> tuple[pd.DataFrame | None, dict]:
    """Combine and de-duplicate the good files; return the data (None if no file is usable) and the
    run's metrics, with a record of every file, accepted or rejected."""
    started = time.perf_counter()
    frames, files = [], []
    for path in csv_paths:
        df, record = read_input_file(path)
        files.append(record)
        if df is None:
            logger.error("rejected %s", record["reason"])
        else:
            frames.append(df)
    combined = pd.concat(frames, ignore_index=True) if frames else None
    finaldata = combined.drop_duplicates(ignore_index=True) if frames else None
    rows_read, rows_kept = (len(combined), len(finaldata)) if frames else (0, 0)
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


def write_outputs(finaldata: pd.DataFrame, metrics: dict, output_folder_path: Path) -> None:
    """Write finaldata.csv, ingestedfiles.txt and the metrics, each atomically."""
    with atomic_writer(output_folder_path / artifacts.FINALDATA_FILE) as handle:
        finaldata.to_csv(handle, index=False, lineterminator="\n")
    names = "".join(f"{item['name']}\n" for item in metrics["files_read"])
    atomic_write_text(output_folder_path / artifacts.INGESTEDFILES_FILE, names)
    atomic_write_text(output_folder_path / artifacts.INGESTION_METRICS_FILE, json.dumps(metrics, indent=2) + "\n")


def arrival_order(conn, folder: str, names: list[str]) -> list[str]:
    """Names by when the history first saw them (new ones last, by name): later rows are newer."""
    known = history.file_states(conn, folder)
    first_seen = {name: min(version["first_seen_at"] for version in versions) for name, versions in known.items()}
    return sorted(names, key=lambda name: (name not in first_seen, first_seen.get(name, ""), name))


def main(config_path=None) -> dict:
    config = load_config(config_path)
    started_at, started = history.utc_now(), time.perf_counter()
    with history.opened(config.history_path) as conn:
        folder = history.folder_key(config.input_folder_path, config.history_path)
        names = arrival_order(conn, folder, artifacts.list_csv_names(config.input_folder_path))
        csv_paths = [config.input_folder_path / name for name in names]
        logger.info("ingestion started: %d CSV file(s) in %s", len(csv_paths), config.input_folder_path)
        finaldata, metrics = ingest_files(csv_paths)
        record_files(conn, folder, metrics["files_read"] + metrics["files_rejected"])
        if finaldata is None:
            history.record_step(
                conn,
                str(config.config_path),
                "ingestion",
                started_at,
                time.perf_counter() - started,
                False,
                {},
            )
            raise PipelineError(
                f"no usable CSV file among {len(csv_paths)} in {config.input_folder_path}; outputs left unchanged"
            )
        metrics["input_folder_path"] = str(config.input_folder_path)
        write_outputs(finaldata, metrics, config.output_folder_path)
        seconds = time.perf_counter() - started
        detail = {key: metrics[key] for key in ("rows_read", "rows_after_deduplication")}
        history.record_step(conn, str(config.config_path), "ingestion", started_at, seconds, True, detail)
    logger.info(
        "ingestion finished in %.2fs: %d file(s) read, %d rejected, %d rows, %d after de-duplication: %s",
        seconds,
        len(metrics["files_read"]),
        len(metrics["files_rejected"]),
        metrics["rows_read"],
        metrics["rows_after_deduplication"],
        config.output_folder_path / artifacts.FINALDATA_FILE,
    )
    return metrics


if __name__ == "__main__":
    run_cli(main)
