"""The data contract: the columns, their types and rules, one CSV reader and one validator.

Two modes: TRAINING files hold all five columns (a missing feature value is allowed: training and
scoring leave such rows out); PREDICTION rows need the three features, and may carry `corporation`
and `exited`. Ingestion, uploads, JSON records, `filepath` files, diagnostics and the reports all
read through here, so the same bad row gets the same message everywhere: a file's physical line
(line 1 is the header, blank lines count), a record's index in the `records` list.

A CSV is read twice only when it is bad: a fast typed read with pyarrow accepts a good file; any
doubt (a parse error, a value out of range) sends it to the reference reader (Python's csv module),
which decides and names the first problem. The two agree on every input (a property test checks).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ID_COLUMN = "corporation"
FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]
TARGET = "exited"
COLUMNS = [ID_COLUMN, *FEATURES, TARGET]
# A count above this is an export or unit error, not a client: no company has a billion employees
# or transactions a month. The bound also keeps every count exact as a float64 (the model's input).
MAX_COUNT = 1_000_000_000
MIN_VALUE = {"lastmonth_activity": 0, "lastyear_activity": 0, "number_of_employees": 1}
CODE_RE = re.compile(r"[a-z]{4}")
WHOLE_RE = re.compile(r"[0-9]+(?:\.0*)?")
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class DataError(ValueError):
    """Data that breaks the contract; the message names the source, the line or record, what is wrong."""


@dataclass(frozen=True)
class Mode:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    missing_features_allowed: bool


TRAINING = Mode("training", tuple(COLUMNS), (), missing_features_allowed=True)
PREDICTION = Mode("prediction", tuple(FEATURES), (ID_COLUMN, TARGET), missing_features_allowed=False)


# --- one value -------------------------------------------------------------------------------


def count_problem(column: str, text: str) -> str | None:
    """Why `text` is not a valid count for `column`, or None when it is."""
    if WHOLE_RE.fullmatch(text):
        value = int(text.split(".")[0])
        if value > MAX_COUNT:
            return f"{column} {text} is larger than {MAX_COUNT:,}, too large to be a count"
        if value < MIN_VALUE[column]:
            return f"{column} must be at least {MIN_VALUE[column]}, got {text}"
        return None
    if NUMBER_RE.fullmatch(text):
        value = float(text)
        if value < MIN_VALUE[column]:
            return f"{column} must be at least {MIN_VALUE[column]}, got {text}"
        if value > MAX_COUNT:
            return f"{column} {text} is larger than {MAX_COUNT:,}, too large to be a count"
        if not value.is_integer():
            return f"{column} must be a whole number, got {text!r}"
        return f"{column} must be written in plain digits, got {text!r}"
    return f"{column} must be a whole number, got {text!r}"


def field_problem(column: str, text: str, mode: Mode) -> str | None:
    """Why one CSV field breaks the contract, or None."""
    if column == ID_COLUMN:
        return (
            None if CODE_RE.fullmatch(text) else f"corporation must be four lowercase letters, got {text!r}"
        )
    if column == TARGET:
        if text in ("0", "1") or (text == "" and mode is PREDICTION):
            return None
        return f"exited must be 0 or 1, got {text!r}"
    if text == "":
        if mode.missing_features_allowed:
            return None
        return f"{column} is missing; the model needs all three features"
    return count_problem(column, text)


# --- header ----------------------------------------------------------------------------------


def header_problem(header: list[str], mode: Mode) -> str | None:
    """Why a header does not fit the mode, or None."""
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        return f"the header repeats column(s) {duplicated}"
    missing = [name for name in mode.required if name not in header]
    unexpected = [name for name in header if name not in (*mode.required, *mode.optional)]
    if not missing and not unexpected:
        return None
    parts = [f"missing column(s) {missing}"] if missing else []
    parts += [f"unexpected column(s) {unexpected}"] if unexpected else []
    expected = list(mode.required) + [f"{name} (optional)" for name in mode.optional]
    return "; ".join(parts) + f"; expected {expected}"


# --- the reference reader --------------------------------------------------------------------


def decode(data: bytes, name: str) -> str:
    """UTF-8 text (a byte-order mark is dropped); raise DataError naming the line of a bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{name}: line {line}: not UTF-8 text (undecodable byte 0x{data[error.start]:02x})"
        ) from None


def read_reference(data: bytes, name: str, mode: Mode) -> pd.DataFrame:
    """The contract's definition: every row checked in order; the first problem is the message."""
    text = decode(data, name)
    if not text.strip():
        raise DataError(f"{name}: the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: dict[str, list[str]] = {}
    line = 0
    try:
        for record in reader:
            start, line = line + 1, reader.line_num
            if not columns:
                if record in ([], [""]):
                    raise DataError(f"{name}: line {start}: the header is blank")
                problem = header_problem(record, mode)
                if problem:
                    raise DataError(f"{name}: line {start}: {problem}")
                header = record
                columns = {column: [] for column in header}
                continue
            if record in ([], [""]) and len(header) > 1:
                continue
            if len(record) != len(header):
                raise DataError(
                    f"{name}: line {start}: {len(record)} field(s) where the header has {len(header)}"
                )
            for column, field in zip(header, record, strict=True):
                problem = field_problem(column, field, mode)
                if problem:
                    raise DataError(f"{name}: line {start}: {problem}")
                columns[column].append(parse_field(column, field))
    except csv.Error as error:
        raise DataError(f"{name}: line {line + 1}: not valid CSV ({error})") from None
    if not columns[header[0]]:
        raise DataError(f"{name}: the file has a header but no rows")
    return typed_frame(columns)


def typed_frame(columns: dict[str, list]) -> pd.DataFrame:
    """Columns in contract order with contract types: codes as text, counts as nullable integers."""
    frame = {}
    for column in COLUMNS:
        if column in columns:
            frame[column] = pd.array(columns[column], dtype="str" if column == ID_COLUMN else "Int64")
    return pd.DataFrame(frame)


def parse_field(column: str, text: str):
    """A checked field as its value: the code, or the count as an int (None when empty)."""
    if column == ID_COLUMN:
        return text
    return int(text.split(".")[0]) if text else None


# --- the fast reader -------------------------------------------------------------------------


def read_fast(data: bytes, mode: Mode) -> pd.DataFrame | None:
    """A typed read with pyarrow that accepts only a file the reference reader also accepts.

    Returns None whenever the file needs a closer look.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pacsv

    first_line = data.split(b"\n", 1)[0].rstrip(b"\r").removeprefix(b"\xef\xbb\xbf")
    header = first_line.decode("utf-8", errors="replace").split(",")
    if header_problem(header, mode) or b'"' in first_line:
        return None
    types = {column: pa.int64() for column in FEATURES + [TARGET]}
    types[ID_COLUMN] = pa.string()
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={column: types[column] for column in header},
                null_values=[""],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    if table.num_rows == 0:
        return None
    for column in header:
        values = table.column(column)
        if column == ID_COLUMN:
            good = pc.all(pc.match_substring_regex(values, "^[a-z]{4}$")).as_py()
        elif column == TARGET:
            allowed_null = mode is PREDICTION
            good = pc.all(pc.is_in(values, pa.array([0, 1]))).as_py() is not False and (
                allowed_null or values.null_count == 0
            )
        else:
            in_range = pc.and_(pc.greater_equal(values, MIN_VALUE[column]), pc.less_equal(values, MAX_COUNT))
            good = pc.all(in_range).as_py() is not False and (
                mode.missing_features_allowed or values.null_count == 0
            )
        if not good:
            return None
    if not raw_fields_are_plain(data, table):
        return None
    return table_frame(table)


def raw_fields_are_plain(data: bytes, table) -> bool:
    """pyarrow reads a few spellings the contract refuses (`+5`, ` 5`, `"5"`): none may appear."""
    return not re.search(rb'[+ \t"]', data.split(b"\n", 1)[1] if b"\n" in data else b"")


def table_frame(table) -> pd.DataFrame:
    columns = {}
    for column in COLUMNS:
        if column not in table.column_names:
            continue
        values = table.column(column)
        if column == ID_COLUMN:
            columns[column] = pd.array(values.to_pylist(), dtype="str")
        else:
            columns[column] = pd.array(values.to_pandas(), dtype="Int64")
    return pd.DataFrame(columns)


# --- the entry points ------------------------------------------------------------------------


def read_csv_bytes(data: bytes, name: str, mode: Mode) -> pd.DataFrame:
    """Rows of a CSV given as bytes, checked against the contract; DataError names the first problem."""
    if not data:
        raise DataError(f"{name}: the file is empty")
    frame = read_fast(data, mode)
    return frame if frame is not None else read_reference(data, name, mode)


def read_csv(path, name: str | None = None, mode: Mode = TRAINING) -> pd.DataFrame:
    """Rows of a CSV file, checked against the contract; DataError names the file and the problem."""
    path = Path(path)
    name = name or path.name
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{name}: cannot be read ({error.strerror})") from None
    return read_csv_bytes(data, name, mode)


def record_problem(record, mode: Mode) -> str | None:
    """Why one JSON record breaks the contract, or None."""
    if not isinstance(record, dict):
        return f"must be an object of column: value, got {type(record).__name__}"
    problem = header_problem(list(record), mode)
    if problem:
        return problem
    for column, value in record.items():
        if column == ID_COLUMN:
            if not (isinstance(value, str) and CODE_RE.fullmatch(value)):
                return f"corporation must be four lowercase letters, got {value!r}"
        elif column == TARGET:
            if value not in (0, 1, None) or isinstance(value, bool | float):
                return f"exited must be 0 or 1, got {value!r}"
        elif value is None:
            return f"{column} is missing; the model needs all three features"
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return f"{column} must be a whole number, got {value!r}"
        elif isinstance(value, float) and not value.is_integer():
            return f"{column} must be a whole number, got {value!r}"
        elif value > MAX_COUNT:
            return f"{column} {value:g} is larger than {MAX_COUNT:,}, too large to be a count"
        elif value < MIN_VALUE[column]:
            return f"{column} must be at least {MIN_VALUE[column]}, got {value!r}"
    return None


def records_frame(records, mode: Mode = PREDICTION) -> pd.DataFrame:
    """JSON records (a list of objects), checked against the contract; DataError names the index.

    An optional column (corporation, exited) may be absent from some records: it is empty there.
    """
    if not isinstance(records, list) or not records:
        raise DataError("'records' must be a non-empty list of objects, one per row")
    for index, record in enumerate(records):
        problem = record_problem(record, mode)
        if problem:
            raise DataError(f"records[{index}]: {problem}")
    present = [column for column in COLUMNS if any(column in record for record in records)]
    columns = {column: [record.get(column) for record in records] for column in present}
    for column in present:
        if column != ID_COLUMN:
            columns[column] = [None if value is None else int(value) for value in columns[column]]
    return typed_frame(columns)


def check_frame(df: pd.DataFrame, name: str, mode: Mode) -> pd.DataFrame:
    """A DataFrame from elsewhere, checked by the same rules (through its CSV form)."""
    buffer = io.StringIO()
    df.to_csv(buffer, index=False, lineterminator="\n")
    return read_csv_bytes(buffer.getvalue().encode(), name, mode)
