"""The data contract: the columns, their types and rules, one CSV reader and one validator.

Two modes: TRAINING files hold all five columns (a missing feature value is allowed: training and
scoring leave such rows out); PREDICTION rows need the three features, and may carry `corporation`
and `exited`. Ingestion, uploads, JSON records, `filepath` files, diagnostics and the reports all
read through here, so the same bad row gets the same message everywhere: a file's physical line
(line 1 is the header, blank lines count), a record's index in the `records` list. A message quotes a
file's value only up to 20 characters and a column name only when it looks like one; anything else
(perhaps a line of another kind of file, a key or a password) is named by its line, column and length.

The reference reader (Python's csv module, value by value) defines the contract and names the first
problem. Fast paths accept only what it accepts: a typed pyarrow read for big files, a columnwise
check for JSON records; any doubt sends the input to the reference reader (property tests check
that both always agree). Readers return a pyarrow Table with the contract's schema; `to_frame`
gives pandas, `to_rows` the feature matrix the model needs.
"""

from __future__ import annotations

import collections
import csv
import difflib
import io
import re
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from pyarrow import csv as pacsv

if TYPE_CHECKING:  # pandas (50 MiB) is imported where a DataFrame is asked for: ingestion never needs it
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
# A message quotes a file only this far: a value of at most 20 characters, and a column name that
# looks like one. Anything longer may be a line of some other file (a secret's), so it is described.
SHOWN_CHARS = 20
NAME_CHARS = 8  # an unknown column name is quoted only this short: a rejected file's first line may be a secret
NAME_RE = re.compile(rf"[\w .-]{{0,{NAME_CHARS}}}")
MAX_COLUMNS = 100  # a header (or a record) with more columns is refused before its names are compared
SHOWN_NAMES = 5  # at most this many column names in one message
LETTERS = bytes(range(ord("a"), ord("z") + 1))
PLAIN_BODY_BYTES = LETTERS + b"0123456789,\r\n"
SMALL_FILE_BYTES = 32 * 1024  # below this, the reference reader is also the fastest
SCHEMA = pa.schema([(ID_COLUMN, pa.string())] + [(column, pa.int64()) for column in [*FEATURES, TARGET]])


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


@dataclass
class Rows:
    """Rows to predict: the features as a float64 matrix, and the codes when they were given."""

    X: np.ndarray
    corporation: list | None = None

    def __len__(self) -> int:
        return len(self.X)


# --- one value -------------------------------------------------------------------------------


def shown(text: str) -> str:
    """A field's value for a message: quoted when short, else only its length (see SHOWN_CHARS)."""
    return repr(text) if len(text) <= SHOWN_CHARS else f"a value of {len(text):,} characters (not shown)"


def shown_names(names: list[str], header: list[str]) -> str:
    """Column names for a message: a short name that looks like one as it is, any other by its position
    (and the expected column it resembles, if any); at most SHOWN_NAMES of them."""
    shown_list = [repr(name) if NAME_RE.fullmatch(name) else unnamed(name, header) for name in names[:SHOWN_NAMES]]
    if len(names) > SHOWN_NAMES:
        shown_list.append(f"and {len(names) - SHOWN_NAMES:,} more")
    return "[" + ", ".join(shown_list) + "]"


def unnamed(name: str, header: list[str]) -> str:
    close = difflib.get_close_matches(name, COLUMNS, n=1, cutoff=0.8)
    hint = f"; close to {close[0]!r}" if close else ""
    return f"column {header.index(name) + 1} ({len(name):,} characters, not shown{hint})"


def too_large(column: str, text: str) -> str:
    if len(text) > SHOWN_CHARS:
        return f"{column} is larger than {MAX_COUNT:,}, too large to be a count ({len(text):,} characters, not shown)"
    return f"{column} {text} is larger than {MAX_COUNT:,}, too large to be a count"


def count_problem(column: str, text: str) -> str | None:
    """Why `text` is not a valid count for `column`, or None when it is."""
    if WHOLE_RE.fullmatch(text):
        value = int(text.split(".")[0])
        if value > MAX_COUNT:
            return too_large(column, text)
        if value < MIN_VALUE[column]:
            return f"{column} must be at least {MIN_VALUE[column]}, got {text}"
        return None
    if NUMBER_RE.fullmatch(text):
        value = float(text)
        if value < MIN_VALUE[column]:
            return f"{column} must be at least {MIN_VALUE[column]}, got {text}"
        if value > MAX_COUNT:
            return too_large(column, text)
        if not value.is_integer():
            return f"{column} must be a whole number, got {shown(text)}"
        return f"{column} must be written in plain digits, got {shown(text)}"
    return f"{column} must be a whole number, got {shown(text)}"


def field_problem(column: str, text: str, mode: Mode) -> str | None:
    """Why one CSV field breaks the contract, or None."""
    if column == ID_COLUMN:
        return None if CODE_RE.fullmatch(text) else f"corporation must be four lowercase letters, got {shown(text)}"
    if column == TARGET:
        if (text == "" and mode is PREDICTION) or (WHOLE_RE.fullmatch(text) and float(text) in (0, 1)):
            return None
        return f"exited must be 0 or 1, got {shown(text)}"
    if text == "":
        if mode.missing_features_allowed:
            return None
        return f"{column} is missing; the model needs all three features"
    return count_problem(column, text)


def parse_field(column: str, text: str):
    """A checked field as its value: the code, or the count as an int (None when empty)."""
    if column == ID_COLUMN:
        return text
    return int(text.split(".")[0]) if text else None


def header_problem(header: list[str], mode: Mode) -> str | None:
    """Why a header (or a record's keys) does not fit the mode, or None (linear in the header's length)."""
    if len(header) > MAX_COLUMNS:
        return f"{len(header):,} columns, more than {MAX_COLUMNS} (expected {len(COLUMNS)} at most)"
    duplicated = sorted(name for name, count in collections.Counter(header).items() if count > 1)
    if duplicated:
        return f"the header repeats column(s) {shown_names(duplicated, header)}"
    missing = [name for name in mode.required if name not in header]
    unexpected = [name for name in header if name not in (*mode.required, *mode.optional)]
    if not missing and not unexpected:
        return None
    parts = [f"missing column(s) {missing}"] if missing else []
    parts += [f"unexpected column(s) {shown_names(unexpected, header)}"] if unexpected else []
    expected = list(mode.required) + [f"{name} (optional)" for name in mode.optional]
    return "; ".join(parts) + f"; expected {expected}"


# --- the reference reader --------------------------------------------------------------------


def decode(data: bytes, name: str) -> str:
    """UTF-8 text (a byte-order mark is dropped); raise DataError naming the line of a bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(f"{name}: line {line}: not UTF-8 text (undecodable byte 0x{data[error.start]:02x})") from None


def read_reference(data: bytes, name: str, mode: Mode) -> dict[str, list]:
    """The contract's definition: every row checked in order; the first problem is the message.

    Returns the columns (in the file's order) as lists of parsed values.
    """
    text = decode(data, name)
    if not text.strip():
        raise DataError(f"{name}: the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: dict[str, list] = {}
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
            if record in ([], [""]):
                continue
            if len(record) != len(header):
                raise DataError(f"{name}: line {start}: {len(record)} field(s) where the header has {len(header)}")
            for column, field in zip(header, record, strict=True):
                problem = field_problem(column, field, mode)
                if problem:
                    raise DataError(f"{name}: line {start}: {problem}")
                columns[column].append(parse_field(column, field))
    except csv.Error as error:
        raise DataError(f"{name}: line {line + 1}: not valid CSV ({error})") from None
    if not columns[header[0]]:
        raise DataError(f"{name}: the file has a header but no rows")
    return columns


def table_of(columns: dict[str, list]) -> pa.Table:
    """Parsed columns as a Table in contract order and types."""
    fields = [field for field in SCHEMA if field.name in columns]
    return pa.table({field.name: pa.array(columns[field.name], field.type) for field in fields}, pa.schema(fields))


# --- the fast reader -------------------------------------------------------------------------


def read_fast(data: bytes, mode: Mode) -> pa.Table | None:
    """A typed read with pyarrow that accepts only a file the reference reader also accepts.

    Returns None whenever the file needs a closer look.
    """
    first_line, _, body = data.partition(b"\n")
    first_line = first_line.rstrip(b"\r").removeprefix(b"\xef\xbb\xbf")
    header = first_line.decode("utf-8", errors="replace").split(",")
    # pyarrow also reads ` 5`, `-0`, `0x5` and `"5"` as numbers: a valid body holds only codes, digits,
    # commas and line ends, so any other byte (or `0x`) sends the file to the reference reader.
    if header_problem(header, mode) or body.translate(None, PLAIN_BODY_BYTES) or b"0x" in body:
        return None
    try:
        table = pacsv.read_csv(
            pa.py_buffer(body),
            read_options=pacsv.ReadOptions(column_names=header),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={column: SCHEMA.field(column).type for column in header},
                null_values=[""],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    if table.num_rows == 0 or not all(column_is_valid(table.column(column), column, mode) for column in header):
        return None
    return table.select([field.name for field in SCHEMA if field.name in header])


def column_is_valid(values: pa.ChunkedArray, column: str, mode: Mode) -> bool:
    """The fast path's checks of one column (the body holds only [a-z0-9,] and line ends)."""
    if column == ID_COLUMN:  # four letters: every value 4 bytes long, and no digit among them
        return all(
            (
                np.diff(np.frombuffer(chunk.buffers()[1], np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]) == 4
            ).all()
            and not pa.py_buffer(chunk.buffers()[2]).to_pybytes().translate(None, LETTERS)
            for chunk in values.chunks
        )
    if values.null_count and not (mode.missing_features_allowed if column in FEATURES else mode is PREDICTION):
        return False
    low, high = (0, 1) if column == TARGET else (MIN_VALUE[column], MAX_COUNT)
    numbers = int_values(values, missing=low)
    return not len(numbers) or (low <= numbers.min() and numbers.max() <= high)


def int_values(values: pa.ChunkedArray, missing: int) -> np.ndarray:
    """An int64 column as NumPy, missing values as `missing` (read from Arrow's buffers: pyarrow's own
    conversion imports pandas, and pyarrow.compute takes longer to import than ingestion to run)."""
    parts = []
    for chunk in values.chunks:
        data = np.frombuffer(chunk.buffers()[1], np.int64)[chunk.offset : chunk.offset + len(chunk)]
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(chunk.buffers()[0], np.uint8), bitorder="little")
            data = np.where(bits[chunk.offset : chunk.offset + len(chunk)].astype(bool), data, missing)
        parts.append(data)
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


# --- the entry points ------------------------------------------------------------------------


def read_table(data: bytes, name: str, mode: Mode) -> pa.Table:
    """Rows of a CSV given as bytes, checked against the contract; DataError names the first problem."""
    if not data:
        raise DataError(f"{name}: the file is empty")
    table = read_fast(data, mode) if len(data) > SMALL_FILE_BYTES else None
    return table if table is not None else table_of(read_reference(data, name, mode))


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A contract Table as pandas: codes as text, counts as nullable integers."""
    import pandas as pd  # only here: ingestion reads and writes with pyarrow and never loads pandas

    mapping = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype(na_value=np.nan)}
    return table.to_pandas(types_mapper=mapping.get)


def to_rows(table: pa.Table) -> Rows:
    """A contract Table (prediction mode: no missing feature) as the model's input."""
    X = np.column_stack([int_values(table.column(column), 0) for column in FEATURES]).astype(np.float64)
    codes = table.column(ID_COLUMN).to_pylist() if ID_COLUMN in table.column_names else None
    return Rows(X, codes)


def read_csv_bytes(data: bytes, name: str, mode: Mode = TRAINING) -> pd.DataFrame:
    """read_table as a DataFrame."""
    return to_frame(read_table(data, name, mode))


def read_csv(path, name: str | None = None, mode: Mode = TRAINING) -> pd.DataFrame:
    """Rows of a CSV file, checked against the contract; DataError names the file and the problem."""
    path = Path(path)
    name = name or path.name
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{name}: cannot be read ({error.strerror})") from None
    return read_csv_bytes(data, name, mode)


def prediction_rows_from_csv(data: bytes, name: str) -> Rows:
    """Rows to predict from an uploaded or named CSV file."""
    return to_rows(read_table(data, name, PREDICTION))


# --- JSON records ----------------------------------------------------------------------------


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
                return f"corporation must be four lowercase letters, got {short(value)}"
        elif column == TARGET:
            if value not in (0, 1, None) or isinstance(value, bool | float):
                return f"exited must be 0 or 1, got {short(value)}"
        elif value is None:
            return f"{column} is missing; the model needs all three features"
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return f"{column} must be a whole number, got {short(value)}"
        elif value != value or value in (float("inf"), float("-inf")):
            return f"{column} must be a whole number, got {short(value)}"
        elif value > MAX_COUNT:
            return f"{column} {short(value)} is larger than {MAX_COUNT:,}, too large to be a count"
        elif isinstance(value, float) and not value.is_integer():
            return f"{column} must be a whole number, got {short(value)}"
        elif value < MIN_VALUE[column]:
            return f"{column} must be at least {MIN_VALUE[column]}, got {short(value)}"
    return None


def short(value) -> str:
    """A value for a message, cut to a readable length (a caller may send a 400-digit number)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


ABSENT = object()


def present_values(records: list, column: str) -> tuple[list, list]:
    """(the column's value in each record, ABSENT where it is left out; the values given)."""
    values = [record.get(column, ABSENT) for record in records]
    if ABSENT not in values:
        return values, values
    return values, [value for value in values if value is not ABSENT]


def fast_records(records: list) -> Rows | None:
    """Columnwise checks of the common case (plain ints, valid codes), at C speed; None on any doubt."""
    try:
        values = list(map(itemgetter(*FEATURES), records))
        optional = sum(map(len, records)) - len(records) * len(FEATURES)  # keys beyond the features
    except (KeyError, TypeError):  # a feature left out, or a record that is not an object
        return None
    codes, given = present_values(records, ID_COLUMN) if optional else ([], [])
    labelled = present_values(records, TARGET)[1] if optional > len(given) else []
    if optional != len(given) + len(labelled) or set(map(type, records)) != {dict}:
        return None  # a record has a column the contract does not know
    if set(map(type, chain.from_iterable(values))) != {int}:
        return None
    try:
        X = np.fromiter(chain.from_iterable(values), dtype=np.int64, count=len(records) * len(FEATURES))
    except OverflowError:
        return None
    X = X.reshape(-1, len(FEATURES))
    if (X.min(axis=0) < [MIN_VALUE[column] for column in FEATURES]).any() or X.max() > MAX_COUNT:
        return None
    if not set(map(type, labelled)) <= {int, type(None)} or not set(labelled) <= {0, 1, None}:
        return None
    if given and (
        set(map(type, given)) != {str} or set(map(len, given)) != {4} or not re.fullmatch("[a-z]*", "".join(given))
    ):
        return None
    if not given:
        return Rows(X.astype(np.float64))
    return Rows(X.astype(np.float64), codes if codes is given else [None if c is ABSENT else c for c in codes])


def prediction_rows(records) -> Rows:
    """JSON records (a list of objects), checked against the contract; DataError names the index.

    An optional column (corporation, exited) may be absent from some records: it is empty there.
    """
    if not isinstance(records, list) or not records:
        raise DataError("'records' must be a non-empty list of objects, one per row")
    rows = fast_records(records)
    if rows is not None:
        return rows
    for index, record in enumerate(records):
        problem = record_problem(record, PREDICTION)
        if problem:
            raise DataError(f"records[{index}]: {problem}")
    X = np.array([[record[column] for column in FEATURES] for record in records], dtype=np.float64)
    present = any(ID_COLUMN in record for record in records)
    return Rows(X, [record.get(ID_COLUMN) for record in records] if present else None)


def check_frame(df: pd.DataFrame, name: str, mode: Mode) -> pd.DataFrame:
    """A DataFrame from elsewhere, checked by the same rules (through its CSV form)."""
    buffer = io.StringIO()
    df.to_csv(buffer, index=False, lineterminator="\n")
    return read_csv_bytes(buffer.getvalue().encode(), name, mode)
