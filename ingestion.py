"""Step 1: combine every CSV in the input folder into one de-duplicated data set.

Config keys: input_folder_path (read), output_folder_path (written).
Writes finaldata.csv, ingestedfiles.txt (names of the files read), ingestionmetrics.json (this run's
metrics) and appends the same record to ingestionhistory.jsonl. A bad file is rejected and named;
the good ones are still ingested. With no good file, earlier outputs stay as they were.
"""

import hashlib
import json
import logging
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from common import (
    COLUMNS,
    FEATURES,
    FINALDATA_FILE,
    ID_COLUMN,
    INGESTEDFILES_FILE,
    INGESTION_HISTORY_FILE,
    INGESTION_METRICS_FILE,
    TARGET,
    PipelineError,
    atomic_write_text,
    atomic_writer,
    find_csv_files,
    load_config,
    run_cli,
)

logger = logging.getLogger(__name__)


class DataFileError(ValueError):
    """A data file that cannot be used; the message names the file and what is wrong."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def first_bad(mask: pd.Series, values: pd.Series) -> str:
    """'value' (line N) for the first row where `mask` holds; line 1 is the header."""
    position = int(mask.to_numpy().argmax())
    value = values.iloc[position]
    value = value.item() if hasattr(value, "item") else value  # numpy scalar -> plain Python
    return f"{value!r} (line {position + 2})"


def check_number_column(df: pd.DataFrame, column: str, name: str) -> pd.Series:
    """The column as numbers; raise DataFileError on text, negative or fractional values."""
    values = df[column]
    if not pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce")
        text = numbers.isna() & values.notna()
        if text.any():
            raise DataFileError(
                f"{name}: column '{column}' has a non-numeric value {first_bad(text, values)}"
            )
        values = numbers
    for problem, mask in (("negative", values < 0), ("non-integer", values.notna() & (values % 1 != 0))):
        if mask.any():
            raise DataFileError(f"{name}: column '{column}' has a {problem} value {first_bad(mask, values)}")
    return values


def check_columns(df: pd.DataFrame, name: str, required: list[str], optional=()) -> None:
    """Raise DataFileError naming the missing and the unexpected columns, if any."""
    missing = [column for column in required if column not in df.columns]
    unexpected = [column for column in df.columns if column not in (*required, *optional)]
    if missing or unexpected:
        parts = [
            f"missing column(s) {missing}" if missing else "",
            f"unexpected column(s) {unexpected}" if unexpected else "",
        ]
        raise DataFileError(
            f"{name}: " + "; ".join(part for part in parts if part) + f"; expected {required}"
        )


def validate_dataset(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check columns and values; return the columns in canonical order with integer dtypes."""
    check_columns(df, name, COLUMNS)
    if df.empty:
        raise DataFileError(f"{name}: the file has a header but no rows")
    columns = {ID_COLUMN: df[ID_COLUMN]}
    for column in FEATURES:
        columns[column] = check_number_column(df, column, name).astype("Int64")
    target = pd.to_numeric(df[TARGET], errors="coerce")
    not_label = ~target.isin([0, 1])
    if not_label.any():
        raise DataFileError(
            f"{name}: column '{TARGET}' must be 0 or 1, got {first_bad(not_label, df[TARGET])}"
        )
    columns[TARGET] = target.astype("int64")
    return pd.DataFrame(columns)


def read_dataset(path, name=None) -> pd.DataFrame:
    """Read and validate one data file; raise DataFileError naming it on any problem."""
    path = Path(path)
    name = name or path.name
    try:
        with warnings.catch_warnings():
            # A row longer than the header would otherwise be read with data silently dropped.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, dtype={ID_COLUMN: str}, encoding="utf-8", index_col=False)
    except pd.errors.ParserWarning:
        raise DataFileError(f"{name}: a row has more fields than the header") from None
    except UnicodeDecodeError as error:
        raise DataFileError(f"{name}: not UTF-8 text (undecodable byte at offset {error.start})") from None
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{name}: the file is empty") from None
    except (pd.errors.ParserError, OSError) as error:
        raise DataFileError(f"{name}: cannot be read as CSV: {str(error).strip()}") from None
    return validate_dataset(df, name)


def load_dataset(path) -> pd.DataFrame:
    """read_dataset for the later steps: a missing or bad file stops the step with one line."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"data file {path} does not exist")
    try:
        return read_dataset(path, name=str(path))
    except DataFileError as error:
        raise PipelineError(str(error)) from None


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ingest_files(csv_paths, first_seen=None) -> tuple[pd.DataFrame, dict]:
    """Combine and de-duplicate the good files; return the data and the run's metrics.

    `first_seen` maps file names to when an earlier run first ingested them, so the record keeps
    when each file arrived. Raises PipelineError when no file is usable.
    """
    first_seen = first_seen or {}
    started, now = time.perf_counter(), utc_now()
    frames, files_read, files_rejected = [], [], []
    for path in csv_paths:
        try:
            df = read_dataset(path)
        except DataFileError as error:
            logger.error("rejected %s", error)
            files_rejected.append({"name": path.name, "reason": str(error)})
            continue
        frames.append(df)
        files_read.append(
            {
                "name": path.name,
                "rows": len(df),
                "sha256": sha256_of(path),
                "first_ingested_at": first_seen.get(path.name, now),
            }
        )
    if not frames:
        raise PipelineError(
            f"no usable CSV file among {len(csv_paths)} in the input folder; outputs left unchanged"
        )
    combined = pd.concat(frames, ignore_index=True)
    finaldata = combined.drop_duplicates(ignore_index=True)
    metrics = {
        "ingested_at": now,
        "seconds": round(time.perf_counter() - started, 3),
        "files_read": files_read,
        "files_rejected": files_rejected,
        "rows_read": len(combined),
        "rows_after_deduplication": len(finaldata),
        "duplicates_dropped": len(combined) - len(finaldata),
    }
    return finaldata, metrics


def read_first_seen(metrics_path) -> dict[str, str]:
    """File name -> first ingestion time, from the previous run's metrics (empty if none)."""
    try:
        record = json.loads(Path(metrics_path).read_text(encoding="utf-8"))
        return {item["name"]: item["first_ingested_at"] for item in record["files_read"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_outputs(finaldata: pd.DataFrame, metrics: dict, output_folder_path) -> None:
    """Write finaldata.csv, ingestedfiles.txt and the metrics, each atomically."""
    output_folder_path = Path(output_folder_path)
    with atomic_writer(output_folder_path / FINALDATA_FILE) as handle:
        finaldata.to_csv(handle, index=False, lineterminator="\n")
    names = "".join(f"{item['name']}\n" for item in metrics["files_read"])
    atomic_write_text(output_folder_path / INGESTEDFILES_FILE, names)
    atomic_write_text(output_folder_path / INGESTION_METRICS_FILE, json.dumps(metrics, indent=2) + "\n")


def append_history(record: dict, output_folder_path) -> None:
    """One JSON line per run, kept for the run history."""
    with open(Path(output_folder_path) / INGESTION_HISTORY_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def main(config_path=None) -> dict:
    config = load_config(config_path)
    output_folder_path = config.output_folder_path
    csv_paths = find_csv_files(config.input_folder_path)
    logger.info("ingestion started: %d CSV file(s) in %s", len(csv_paths), config.input_folder_path)
    output_folder_path.mkdir(parents=True, exist_ok=True)
    try:
        finaldata, metrics = ingest_files(
            csv_paths, read_first_seen(output_folder_path / INGESTION_METRICS_FILE)
        )
    except PipelineError as error:
        append_history(
            {"ingested_at": utc_now(), "failed": str(error), "input_files": [p.name for p in csv_paths]},
            output_folder_path,
        )
        raise
    metrics["input_folder_path"] = str(config.input_folder_path)
    write_outputs(finaldata, metrics, output_folder_path)
    append_history(metrics, output_folder_path)
    logger.info(
        "ingestion finished in %.2fs: %d file(s) read, %d rejected, %d rows, %d after de-duplication: %s",
        metrics["seconds"],
        len(metrics["files_read"]),
        len(metrics["files_rejected"]),
        metrics["rows_read"],
        metrics["rows_after_deduplication"],
        output_folder_path / FINALDATA_FILE,
    )
    return metrics


if __name__ == "__main__":
    run_cli(main)
