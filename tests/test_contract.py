"""The data contract, the same in every form: a file for ingestion, an upload, a `filepath`, JSON records.

A table of bad inputs with the exact message and status in each form; property tests that the fast
readers agree with the reference reader on any input, that any byte string is accepted or refused
with a message (never a crash), and that any row the contract accepts is predicted.
"""

import io
import json
import string

import numpy as np
import pytest
from conftest import FEATURES, HEADER, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ingestion
from risk import contract
from risk.contract import PREDICTION, TRAINING, DataError

GOOD = "abcd,5,100,12,0\n"
PREDICT_HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees"
# the columns a header must have, as the messages list them (optional ones marked)
TRAINING_COLUMNS = "['corporation', 'lastmonth_activity', 'lastyear_activity', 'number_of_employees', 'exited']"
PREDICTION_COLUMNS = (
    "['lastmonth_activity', 'lastyear_activity', 'number_of_employees', 'corporation (optional)', 'exited (optional)']"
)

# (text, the message after "<name>: ", whether it applies to rows to predict as well as to training files)
SECRET = "root:x:0:0:root:/root:/bin/bash"  # the first line of a file that must never be quoted
BAD_CSV = [
    ("", "the file is empty", True),
    (
        f"{SECRET}\n",
        f"line 1: missing column(s) {TRAINING_COLUMNS}; unexpected column(s) [column 1 (31 characters, not shown)]",
        False,
    ),
    (
        f"{HEADER},{SECRET},exitd\n{GOOD}",
        "line 1: unexpected column(s) [column 6 (31 characters, not shown), 'exitd']",
        False,
    ),
    (
        f"{HEADER},{'x' * 21},{'x' * 21}\n{GOOD}",
        "line 1: the header repeats column(s) [column 6 (21 characters, not shown)]",
        True,
    ),
    (
        f"{HEADER}\n{SECRET},1,2,3,0\n",
        "line 2: corporation must be four lowercase letters, got a value of 31 characters (not shown)",
        True,
    ),
    (
        f"{HEADER}\nabcd,1,{'9' * 21},3,0\n",
        "line 2: lastyear_activity is larger than 1,000,000,000, too large to be a count (21 characters, not shown)",
        True,
    ),
    (
        f"{HEADER}\nabcd,1,{'9' * 20},3,0\n",
        f"line 2: lastyear_activity {'9' * 20} is larger than 1,000,000,000, too large to be a count",
        True,
    ),
    ("\n\n", "the file is empty", True),
    (f"{HEADER}\n", "the file has a header but no rows", True),
    (f"{HEADER}\n\n\n", "the file has a header but no rows", True),
    (f"\n{HEADER}\n{GOOD}", "line 1: the header is blank", True),
    (f'""\n{HEADER}\n{GOOD}', "line 1: the header is blank", True),  # a quoted empty field is blank too
    (f"{HEADER}\n{GOOD}abcd,1,2,3,0,\n", "line 3: 6 field(s) where the header has 5", True),
    (f"{HEADER}\n\n{GOOD}\nabcd,1,2,3\n", "line 5: 4 field(s) where the header has 5", True),
    (f"{HEADER},colour\n{GOOD}", f"line 1: unexpected column(s) ['colour']; expected {TRAINING_COLUMNS}", False),
    (  # a short word of a file's first line is quoted; a longer one only by its place
        f"{HEADER},hunter2pass\n{GOOD}",
        f"line 1: unexpected column(s) [column 6 (11 characters, not shown)]; expected {TRAINING_COLUMNS}",
        False,
    ),
    (  # a misspelt column is not quoted either, but named by the expected column it resembles
        "corporation,lastmonth_activty,lastyear_activity,number_of_employees,exited\nabcd,5,100,12,0\n",
        "line 1: missing column(s) ['lastmonth_activity']; unexpected column(s) [column 2 (17 characters, not shown; "
        f"close to 'lastmonth_activity')]; expected {TRAINING_COLUMNS}",
        False,
    ),
    (  # at most five names in one message
        f"{HEADER},a,b,c,d,e,f,g\n{GOOD}",
        f"line 1: unexpected column(s) ['a', 'b', 'c', 'd', 'e', and 2 more]; expected {TRAINING_COLUMNS}",
        False,
    ),
    (  # a wide header is refused on its width, before any name is compared
        ",".join(f"k{i}" for i in range(40_000)) + "\n",
        "line 1: 40,000 columns, more than 100 (expected 5 at most)",
        True,
    ),
    (f"{HEADER},exited\n{GOOD}", "line 1: the header repeats column(s) ['exited']", True),
    (f"{HEADER}\nABCD,1,2,3,0\n", "line 2: corporation must be four lowercase letters, got 'ABCD'", True),
    (f"{HEADER}\n,1,2,3,0\n", "line 2: corporation must be four lowercase letters, got ''", True),
    (f"{HEADER}\nabcde,1,2,3,0\n", "line 2: corporation must be four lowercase letters, got 'abcde'", True),
    (f"{HEADER}\nabcd,many,2,3,0\n", "line 2: lastmonth_activity must be a whole number, got 'many'", True),
    (f"{HEADER}\nabcd,NaN,2,3,0\n", "line 2: lastmonth_activity must be a whole number, got 'NaN'", True),
    (f"{HEADER}\nabcd,true,2,3,0\n", "line 2: lastmonth_activity must be a whole number, got 'true'", True),
    (f"{HEADER}\nabcd,1,-2,3,0\n", "line 2: lastyear_activity must be at least 0, got -2", True),
    (f"{HEADER}\nabcd,1,2,0,0\n", "line 2: number_of_employees must be at least 1, got 0", True),
    (f"{HEADER}\nabcd,1,2,3.5,0\n", "line 2: number_of_employees must be a whole number, got '3.5'", True),
    # at the bounds, a count written otherwise than in digits is refused for its spelling, not its size
    (f"{HEADER}\nabcd,0e0,2,3,0\n", "line 2: lastmonth_activity must be written in plain digits, got '0e0'", True),
    (f"{HEADER}\nabcd,1,2,1e0,0\n", "line 2: number_of_employees must be written in plain digits, got '1e0'", True),
    (f"{HEADER}\nabcd,1e9,2,3,0\n", "line 2: lastmonth_activity must be written in plain digits, got '1e9'", True),
    (
        f"{HEADER}\nabcd,1e3,2,3,0\n",
        "line 2: lastmonth_activity must be written in plain digits, got '1e3'",
        True,
    ),
    (
        f"{HEADER}\nabcd,+5,2,3,0\n",
        "line 2: lastmonth_activity must be written in plain digits, got '+5'",
        True,
    ),
    (f"{HEADER}\nabcd, 5,2,3,0\n", "line 2: lastmonth_activity must be a whole number, got ' 5'", True),
    (
        f"{HEADER}\nabcd,1e300,2,3,0\n",
        "line 2: lastmonth_activity 1e300 is larger than 1,000,000,000, too large to be a count",
        True,
    ),
    (
        f"{HEADER}\nabcd,{2**63},2,3,0\n",
        f"line 2: lastmonth_activity {2**63} is larger than 1,000,000,000, too large to be a count",
        True,
    ),
    (f"{HEADER}\nabcd,1,2,3,2\n", "line 2: exited must be 0 or 1, got '2'", True),
    (f"{HEADER}\nabcd,1,2,3,yes\n", "line 2: exited must be 0 or 1, got 'yes'", True),
    (f"{HEADER}\nabcd,1,2,3,\n", "line 2: exited must be 0 or 1, got ''", False),
    (
        f"{HEADER}\nabcd,1,2,3,0\r\nabcd,1,2,x,0\r\n",
        "line 3: number_of_employees must be a whole number, got 'x'",
        True,
    ),
    (
        f'{HEADER}\n"ab\ncd",1,2,3,0\n',
        "line 2: corporation must be four lowercase letters, got 'ab\\ncd'",
        True,
    ),
    (  # the field is quoted as the file has it, line end and all
        f'{HEADER}\r\n"ab\r\ncd",1,2,3,0\r\n',
        "line 2: corporation must be four lowercase letters, got 'ab\\r\\ncd'",
        True,
    ),
    (f'{HEADER}\nabcd,"1,2,3,0\n', "line 2: not valid CSV (unexpected end of data)", True),
]
BAD_BYTES = [
    (
        HEADER.encode() + b"\nabcd,1,2,3,0\n\xff\xfe,1,2,3,0\n",
        "line 3: not UTF-8 text (undecodable byte 0xff)",
    )
]
BAD_PREDICTION_ONLY = [
    (
        f"{PREDICT_HEADER}\nabcd,,2,3\n",
        "line 2: lastmonth_activity is missing; the model needs all three features",
    ),
    (
        "lastmonth_activity,lastyear_activity\n1,2\n",
        f"line 1: missing column(s) ['number_of_employees']; expected {PREDICTION_COLUMNS}",
    ),
    (f"{HEADER},colour\n{GOOD}", f"line 1: unexpected column(s) ['colour']; expected {PREDICTION_COLUMNS}"),
    (
        "lastmonth_activity,lastyear_activity,colour\n1,2,3\n",
        "line 1: missing column(s) ['number_of_employees']; unexpected column(s) ['colour'];"
        f" expected {PREDICTION_COLUMNS}",
    ),
]


@pytest.mark.parametrize("text, message, _", BAD_CSV)
def test_a_bad_training_file_is_rejected_by_ingestion_naming_line_and_problem(config, text, message, _):
    write_csv(config.input_folder_path / "bad.csv", text)
    metrics = ingestion.ingest(config).metrics
    (rejected,) = metrics["files_rejected"]
    assert rejected["reason"].startswith(f"bad.csv: {message}")
    assert [item["name"] for item in metrics["files_read"]] == ["dataset1.csv", "dataset2.csv"]


@pytest.mark.parametrize("data, message", BAD_BYTES)
def test_bad_bytes_are_named_by_line(data, message):
    with pytest.raises(DataError) as error:
        contract.read_table(data, "bad.csv", TRAINING)
    assert str(error.value) == f"bad.csv: {message}"


PREDICTION_CASES = [(text, message) for text, message, both in BAD_CSV if both] + BAD_PREDICTION_ONLY


@pytest.mark.parametrize("text, message", PREDICTION_CASES)
def test_a_bad_upload_is_a_400_with_the_same_message(client, text, message):
    response = client.post("/prediction", data={"file": (io.BytesIO(text.encode()), "mine.csv")})
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(f"mine.csv: {message}")


@pytest.mark.parametrize("text, message", PREDICTION_CASES)
def test_a_bad_filepath_file_is_a_400_with_the_same_message(client, config, text, message):
    write_csv(config.test_data_path / "bad.csv", text)
    response = client.post("/prediction", json={"filepath": "testdata/bad.csv"})
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(f"testdata/bad.csv: {message}")


RECORD = {"lastmonth_activity": 5, "lastyear_activity": 100, "number_of_employees": 12}
BAD_RECORDS = [
    ("x", "'records' must be a non-empty list of objects, one per row"),
    ([], "'records' must be a non-empty list of objects, one per row"),
    ([RECORD, 7], "records[1]: must be an object of column: value, got int"),
    ([{**RECORD, "colour": "red"}], "records[0]: unexpected column(s) ['colour']; expected"),
    (
        [{"lastmonth_activity": 1}],
        "records[0]: missing column(s) ['lastyear_activity', 'number_of_employees']",
    ),
    (
        [{**RECORD, "lastmonth_activity": True}],
        "records[0]: lastmonth_activity must be a whole number, got True",
    ),
    (
        [{**RECORD, "lastmonth_activity": "5"}],
        "records[0]: lastmonth_activity must be a whole number, got '5'",
    ),
    (
        [{**RECORD, "lastmonth_activity": 5.5}],
        "records[0]: lastmonth_activity must be a whole number, got 5.5",
    ),
    (
        [{**RECORD, "lastmonth_activity": None}],
        "records[0]: lastmonth_activity is missing; the model needs all",
    ),
    ([{**RECORD, "lastmonth_activity": -1}], "records[0]: lastmonth_activity must be at least 0, got -1"),
    ([{**RECORD, "number_of_employees": 0}], "records[0]: number_of_employees must be at least 1, got 0"),
    (
        [RECORD, {**RECORD, "lastyear_activity": 1e300}],
        "records[1]: lastyear_activity 1e+300 is larger than 1,000,000,000, too large to be a count",
    ),
    (
        [{**RECORD, "corporation": "ABCD"}],
        "records[0]: corporation must be four lowercase letters, got 'ABCD'",
    ),
    ([{**RECORD, "corporation": None}], "records[0]: corporation must be four lowercase letters, got None"),
    ([{**RECORD, "exited": 2}], "records[0]: exited must be 0 or 1, got 2"),
    ([{**RECORD, "exited": True}], "records[0]: exited must be 0 or 1, got True"),
]


@pytest.mark.parametrize("records, message", BAD_RECORDS)
def test_bad_records_are_a_400_naming_the_index(client, records, message):
    response = client.post("/prediction", json={"records": records})
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(message)


@pytest.mark.parametrize(
    "body, status, message",
    [
        ('{"records": [{"lastmonth_activity": ' + "9" * 400 + "}]}", 400, "the body is not valid JSON"),
        ("[" * 5000 + "]" * 5000, 400, "the body is not valid JSON"),
        ('{"records": [{"lastmonth_activity": NaN}]}', 400, "the body is not valid JSON"),
        ('{"filepath": "' + "a/" * 3000 + '"}', 400, "'filepath' must be a path of at most 1024 characters"),
        ('{"filepath": "testdata/' + "x" * 900 + '.csv"}', 400, "cannot be used: File name too long"),
    ],
)
def test_hostile_bodies_are_4xx_not_500(client, body, status, message):
    response = client.post("/prediction", data=body, content_type="application/json")
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_a_code_spelled_null_is_a_client_not_a_missing_value(config, client):
    write_csv(config.input_folder_path / "dataset3.csv", f"{HEADER}\nnull,1,2,3,0\n")
    finaldata, _ = ingestion.ingest_files([config.input_folder_path / "dataset3.csv"])
    assert finaldata.column("corporation").to_pylist() == ["null"]
    response = client.post("/prediction", json={"records": [{**RECORD, "corporation": "null"}]})
    assert response.get_json()["corporation"] == ["null"]


def test_records_may_leave_out_optional_columns_row_by_row(client):
    body = client.post("/prediction", json={"records": [RECORD, {**RECORD, "corporation": "abcd"}]}).get_json()
    assert body["corporation"] == [None, "abcd"] and body["rows"] == 2


def strict_loads(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("get", "/health", {}),
        ("get", "/scoring", {}),
        ("get", "/summarystats", {}),
        ("get", "/diagnostics", {}),
        ("post", "/prediction", {"json": {"filepath": "testdata/testdata.csv"}}),
        ("post", "/prediction", {"json": {"records": [RECORD]}}),
        ("post", "/prediction", {"json": {"records": [{"x": float("nan")}]}}),
        ("get", "/nope", {}),
    ],
)
def test_every_answer_is_strict_json(client, method, path, kwargs):
    response = getattr(client, method)(path, **kwargs)
    assert response.mimetype == "application/json"
    strict_loads(response.get_data(as_text=True))


def test_errors_show_no_absolute_server_path(client, config):
    (config.test_data_path / "testdata.csv").unlink()
    response = client.get("/scoring")
    assert response.status_code == 503
    text = response.get_json()["error"]
    assert str(config.config_path.parent) not in text and "testdata/testdata.csv does not exist" in text


# --- property tests --------------------------------------------------------------------------

TRICKY = st.one_of(
    st.sampled_from(
        ["", "0", "5.0", "5.5", "+5", " 5", "5 ", "\t5", "-1", "-0", "0x5", "0X5", "00", "1e3", "null", "abcd"]
        + ["ABCD", "x", '"7"', "2", "ab cd", "é"]
    ),
    st.integers(10**8, 10**20).map(str),
    st.text(string.ascii_lowercase, min_size=3, max_size=5),
)
VALID = {
    "corporation": st.text(string.ascii_lowercase, min_size=4, max_size=4),
    "lastmonth_activity": st.integers(0, 2000).map(str),
    "lastyear_activity": st.integers(0, contract.MAX_COUNT).map(str),
    "number_of_employees": st.integers(1, 5000).map(str),
    "exited": st.sampled_from(["0", "1"]),
}


def field(column):
    """Mostly a valid value, sometimes a tricky one: files the fast path accepts, and near misses."""
    return st.integers(0, 24).flatmap(lambda draw: TRICKY if draw == 0 else VALID[column])


@st.composite
def csv_files(draw):
    header = draw(st.sampled_from([COLUMNS_ALL, PREDICT_COLUMNS, COLUMNS_SHUFFLED]))
    rows = draw(st.lists(st.tuples(*[field(column) for column in header]), min_size=0, max_size=6))
    lines = [",".join(header)] + [",".join(row) for row in rows]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines))), "")
    return ("\r\n" if draw(st.booleans()) else "\n").join(lines) + "\n"


COLUMNS_ALL = HEADER.split(",")
PREDICT_COLUMNS = PREDICT_HEADER.split(",")
COLUMNS_SHUFFLED = ["exited", *reversed(FEATURES), "corporation"]


def outcome(read):
    try:
        return read().to_pylist()
    except DataError as error:
        return str(error)


@settings(max_examples=400, deadline=None)
@given(csv_files(), st.sampled_from([TRAINING, PREDICTION]))
def test_the_fast_reader_agrees_with_the_reference_reader(text, mode):
    data = text.encode()
    reference = outcome(lambda: contract.table_of(contract.read_reference(data, "f.csv", mode)))
    fast = contract.read_fast(data, mode)
    if fast is not None:
        assert fast.to_pylist() == reference
    small, contract.SMALL_FILE_BYTES = contract.SMALL_FILE_BYTES, 0  # every file takes the fast path first
    try:
        assert outcome(lambda: contract.read_table(data, "f.csv", mode)) == reference
    finally:
        contract.SMALL_FILE_BYTES = small


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_read_or_refused_with_a_message(data):
    for mode in (TRAINING, PREDICTION):
        try:
            contract.read_table(HEADER.encode() + b"\n" + data, "f.csv", mode)
            contract.read_table(data, "f.csv", mode)
        except DataError as error:
            assert str(error).startswith("f.csv: ") and "\n" not in str(error)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=string.ascii_letters + string.digits + ":/ _$!", min_size=21, max_size=80).filter(
        lambda text: ":" in text and text.strip() == text
    ),
    st.integers(0, 5),
    st.sampled_from(["header", "value"]),
)
def test_no_message_quotes_more_than_twenty_characters_of_a_file(secret, position, where):
    """A file of another kind (a key, a password line) is named by line and column, never quoted."""
    if where == "header":
        columns = HEADER.split(",")
        text = ",".join(columns[:position] + [secret] + columns[position:]) + "\n" + GOOD
    else:
        values = GOOD.strip().split(",")
        values[position % 5] = secret
        text = f"{HEADER}\n" + ",".join(values) + "\n"
    for mode in (TRAINING, PREDICTION):
        with pytest.raises(DataError) as raised:
            contract.read_table(text.encode(), "f.csv", mode)
        assert secret not in str(raised.value) and secret[:21] not in str(raised.value)


JSON_ODD = st.one_of(
    st.integers(-5, 0),
    st.integers(10**9, 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.sampled_from(["abcd", "null", "zzzz"]),
)


def json_value(good):
    return st.integers(0, 24).flatmap(lambda draw: JSON_ODD if draw == 0 else good)


RECORDS = st.lists(
    st.fixed_dictionaries(
        {feature: json_value(st.integers(1, 3000)) for feature in FEATURES},
        optional={
            "corporation": json_value(st.text(string.ascii_lowercase, min_size=4, max_size=4)),
            "exited": json_value(st.sampled_from([0, 1, None])),
            "colour": st.just("red"),
        },
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(RECORDS)
def test_the_fast_records_check_agrees_with_the_record_by_record_check(records):
    fast = contract.fast_records(records)
    problems = [contract.record_problem(record, PREDICTION) for record in records]
    if fast is not None:
        assert problems == [None] * len(records)
        expected = np.array([[record[f] for f in FEATURES] for record in records], dtype=float)
        np.testing.assert_array_equal(fast.X, expected)
    try:
        rows = contract.prediction_rows(records)
    except DataError as error:
        index = next(i for i, problem in enumerate(problems) if problem)
        assert str(error) == f"records[{index}]: {problems[index]}"
    else:  # accepted, by either path: the features as floats, the codes only when a record gives one
        assert all(problem is None for problem in problems)
        expected = np.array([[float(record[f]) for f in FEATURES] for record in records])
        np.testing.assert_array_equal(rows.X, expected)
        assert rows.X.dtype == np.float64
        codes = [record.get("corporation") for record in records]
        assert rows.corporation == (codes if any("corporation" in record for record in records) else None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "lastmonth_activity": st.integers(0, contract.MAX_COUNT),
                "lastyear_activity": st.integers(0, contract.MAX_COUNT),
                "number_of_employees": st.integers(1, contract.MAX_COUNT),
            }
        ),
        min_size=1,
        max_size=20,
    )
)
def test_any_row_the_contract_accepts_is_predicted_as_scikit_learn_would(client, config, records):
    from risk.model import load_model

    response = client.post("/prediction", json={"records": records})
    assert response.status_code == 200
    body = response.get_json()
    model = load_model(config.prod_deployment_path / "trainedmodel.pkl")
    X = np.array([[record[f] for f in FEATURES] for record in records], dtype=float)
    assert body["predictions"] == model.predict(X).tolist()
    assert body["probabilities"] == np.round(model.predict_proba(X)[:, 1], 6).tolist()


# --- the fast records check takes the common cases -------------------------------------------------

ROW = {"lastmonth_activity": 5, "lastyear_activity": 100, "number_of_employees": 12}


@pytest.mark.parametrize(
    "records, X, corporation",
    [
        ([ROW, {**ROW, "lastmonth_activity": 7}], [[5, 100, 12], [7, 100, 12]], None),
        (  # the smallest and the largest counts the contract accepts
            [
                {"lastmonth_activity": 0, "lastyear_activity": 0, "number_of_employees": 1},
                {**ROW, "lastyear_activity": 10**9},
            ],
            [[0, 0, 1], [5, 10**9, 12]],
            None,
        ),
        ([{"corporation": "abcd", **ROW}, {"corporation": "wxyz", **ROW}], [[5, 100, 12]] * 2, ["abcd", "wxyz"]),
        ([{"corporation": "abcd", **ROW}, ROW], [[5, 100, 12]] * 2, ["abcd", None]),  # left out of one record
        ([{**ROW, "exited": 0}, {**ROW, "exited": 1}, {**ROW, "exited": None}], [[5, 100, 12]] * 3, None),
        ([{**ROW, "exited": 1, "corporation": "abcd"}, {**ROW, "exited": 0}], [[5, 100, 12]] * 2, ["abcd", None]),
    ],
    ids=["features", "bounds", "codes", "a code left out", "labels", "codes and labels"],
)
def test_the_fast_records_check_takes_the_common_cases(records, X, corporation):
    rows = contract.fast_records(records)
    assert rows is not None, "the common case must not need the record-by-record check"
    np.testing.assert_array_equal(rows.X, np.array(X, dtype=np.float64))
    assert rows.X.dtype == np.float64 and rows.corporation == corporation


@pytest.mark.parametrize(
    "value, message",
    [
        (float("nan"), "lastmonth_activity must be a whole number, got nan"),
        (float("inf"), "lastmonth_activity must be a whole number, got inf"),
        (float("-inf"), "lastmonth_activity must be a whole number, got -inf"),
    ],
)
def test_a_record_with_a_value_that_is_not_a_number_is_named(value, message):
    assert contract.record_problem({**ROW, "lastmonth_activity": value}, PREDICTION) == message
    with pytest.raises(DataError) as raised:
        contract.prediction_rows([ROW, {**ROW, "lastmonth_activity": value}])
    assert str(raised.value) == f"records[1]: {message}"


@pytest.mark.parametrize(
    "value, shown",
    [
        ("x" * 38, "'" + "x" * 38 + "'"),  # 40 characters with the quotes: shown whole
        ("x" * 39, "'" + "x" * 36 + "..."),  # 41: cut to 37 and "...", 40 in all
        (10**45, "1" + "0" * 36 + "..."),
    ],
)
def test_a_long_value_is_cut_to_forty_characters_in_a_message(value, shown):
    assert contract.short(value) == shown


def test_rows_to_predict_from_a_file_carry_the_codes_only_when_the_file_has_them():
    with_codes = contract.prediction_rows_from_csv(f"{PREDICT_HEADER}\nabcd,1,2,3\n".encode(), "x.csv")
    without = contract.prediction_rows_from_csv(
        b"lastmonth_activity,lastyear_activity,number_of_employees\n1,2,3\n", "x.csv"
    )
    for rows in (with_codes, without):
        np.testing.assert_array_equal(rows.X, [[1.0, 2.0, 3.0]])
    assert (with_codes.corporation, without.corporation) == (["abcd"], None)


@pytest.mark.parametrize(
    "records, corporation",
    [
        ([{**ROW, "lastmonth_activity": 5.0}, {**ROW, "corporation": "abcd"}], [None, "abcd"]),
        ([{**ROW, "number_of_employees": 12.0}, ROW], None),
    ],
    ids=["a code in one record", "no code"],
)
def test_whole_numbers_written_as_floats_are_checked_record_by_record_and_accepted(records, corporation):
    assert contract.fast_records(records) is None  # only plain ints take the fast path
    rows = contract.prediction_rows(records)
    np.testing.assert_array_equal(rows.X, [[5.0, 100.0, 12.0], [5.0, 100.0, 12.0]])
    assert rows.X.dtype == np.float64 and rows.corporation == corporation


@pytest.mark.parametrize("rows", [2, 5000], ids=["small", "large"])
def test_a_file_with_old_mac_line_ends_is_read(rows):
    data = (HEADER + "\r" + "".join(f"abcd,{i},2,3,{i % 2}\r" for i in range(rows))).encode()
    table = contract.read_table(data, "f.csv", TRAINING)
    assert table.column("lastmonth_activity").to_pylist() == list(range(rows))
    assert table.column("exited").to_pylist() == [i % 2 for i in range(rows)]


@pytest.mark.parametrize("blank", ["", '""', "\r"], ids=["empty", "quoted empty", "carriage return"])
def test_a_blank_line_between_rows_is_skipped(blank):
    data = f"{HEADER}\n{GOOD}{blank}\nwxyz,1,2,3,1\n".encode()
    assert contract.read_table(data, "f.csv", TRAINING).to_pylist() == [
        {
            "corporation": "abcd",
            "lastmonth_activity": 5,
            "lastyear_activity": 100,
            "number_of_employees": 12,
            "exited": 0,
        },
        {"corporation": "wxyz", "lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3, "exited": 1},
    ]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("bom", ["", "\ufeff"], ids=["plain", "bom"])
@pytest.mark.parametrize("columns", [COLUMNS_ALL, COLUMNS_SHUFFLED], ids=["in order", "shuffled"])
def test_the_fast_reader_takes_a_plain_file_whatever_its_line_ends_bom_or_column_order(line_end, bom, columns):
    values = {"corporation": "abcd", "lastmonth_activity": "5", "lastyear_activity": "100"}
    row = [{**values, "number_of_employees": "12", "exited": "1"}[column] for column in columns]
    text = bom + line_end.join([",".join(columns), ",".join(row), ",".join(row).replace("abcd", "wxyz")]) + line_end
    fast = contract.read_fast(text.encode(), TRAINING)
    assert fast is not None, "a plain file must not need the reference reader"
    assert fast.to_pylist() == [
        {"corporation": code, "lastmonth_activity": 5, "lastyear_activity": 100, "number_of_employees": 12, "exited": 1}
        for code in ("abcd", "wxyz")
    ]


def test_a_header_that_is_not_utf8_sends_the_file_to_the_reference_reader():
    assert contract.read_fast(b"corporation\xff," + HEADER.encode()[12:] + b"\nabcd,1,2,3,0\n", TRAINING) is None


@pytest.mark.parametrize("word", ["null", "nan"])
def test_a_count_spelled_as_a_null_word_is_refused_by_the_fast_reader_as_by_the_reference(word):
    data = f"{HEADER}\nabcd,{word},2,3,0\n".encode()  # pyarrow's default null values would read it as missing
    reference = outcome(lambda: contract.table_of(contract.read_reference(data, "f.csv", TRAINING)))
    assert reference == f"f.csv: line 2: lastmonth_activity must be a whole number, got '{word}'"
    assert contract.read_fast(data, TRAINING) is None


# Rows in the order of HEADER (corporation, lastmonth, lastyear, employees, exited): whether the fast
# reader may take the file itself, decided by the contract's bounds; the reference reader agrees.
@pytest.mark.parametrize(
    "mode, row, taken",
    [
        (TRAINING, "abcd,0,0,1,0", True),  # the smallest values
        (TRAINING, "abcd,1000000000,1000000000,1000000000,1", True),  # the largest
        (TRAINING, "abcd,1000000001,2,3,0", False),
        (TRAINING, "abcd,1,2,1000000001,0", False),
        (TRAINING, "abcd,1,2,0,0", False),  # no company has no employees
        (TRAINING, "abcd,1,2,3,2", False),
        (TRAINING, "abc,1,2,3,0", False),
        (TRAINING, "abcde,1,2,3,0", False),
        (TRAINING, "ab1d,1,2,3,0", False),
        (TRAINING, "abcd,,2,3,0", True),  # a training row may lack a feature
        (TRAINING, ",1,2,3,0", False),
        (TRAINING, "abcd,1,2,3,", False),
        (PREDICTION, "abcd,,2,3,0", False),  # a row to predict may not
        (PREDICTION, "abcd,1,2,3,", True),  # but may lack its label
        (PREDICTION, ",1,2,3,0", False),  # a code given is a code
    ],
)
def test_the_fast_reader_takes_only_rows_within_the_contracts_bounds(mode, row, taken):
    data = f"{HEADER}\n{row}\nwxyz,5,6,7,1\n".encode()
    fast = contract.read_fast(data, mode)
    reference = outcome(lambda: contract.table_of(contract.read_reference(data, "f.csv", mode)))
    assert (fast is not None) == taken
    assert isinstance(reference, list) == taken
    if taken:
        assert fast.to_pylist() == reference


@pytest.mark.parametrize(
    "value, problem",
    [
        (1e9, None),  # the largest count, written as a float: the record-by-record check's bound
        (1e9 + 1, "lastyear_activity 1000000001.0 is larger than 1,000,000,000, too large to be a count"),
    ],
)
def test_the_record_by_record_check_takes_counts_up_to_a_billion(value, problem):
    assert contract.record_problem({**ROW, "lastyear_activity": value}, PREDICTION) == problem


def test_a_frame_from_elsewhere_is_checked_by_the_same_rules_as_a_file():
    import pandas as pd

    good = pd.DataFrame([["abcd", 5, 100, 12, 1], ["wxyz", None, 7, 3, 0]], columns=HEADER.split(","))
    checked = contract.check_frame(good, "scores", TRAINING)
    assert checked["corporation"].tolist() == ["abcd", "wxyz"]
    assert checked["lastmonth_activity"].tolist()[0] == 5 and checked["lastmonth_activity"].isna().tolist() == [
        False,
        True,
    ]
    assert checked.columns.tolist() == HEADER.split(",")
    bad = good.assign(exited=[1, 2])
    with pytest.raises(DataError, match=r"^scores: line 3: exited must be 0 or 1, got '2'$"):
        contract.check_frame(bad, "scores", TRAINING)


@pytest.mark.parametrize(
    "text, message",
    [
        (f"{HEADER}\nabcd,0x5,2,3,0\n", "line 2: lastmonth_activity must be a whole number, got '0x5'"),
        (f"{HEADER} \nabcd,5,2,3,0\n", "unexpected column(s) ['exited ']"),  # a space after the last name
    ],
    ids=["hexadecimal", "trailing space"],
)
def test_what_pyarrow_would_read_leniently_goes_to_the_reference_reader(text, message):
    data = text.encode()
    assert contract.read_fast(data, TRAINING) is None
    reference = outcome(lambda: contract.table_of(contract.read_reference(data, "f.csv", TRAINING)))
    assert message in reference


def test_a_frame_of_rows_to_predict_is_checked_as_rows_to_predict():
    import pandas as pd

    rows = pd.DataFrame([[5, 100, 12]], columns=FEATURES)  # no code, no label: fine for predicting
    assert contract.check_frame(rows, "rows", PREDICTION)[FEATURES].values.tolist() == [[5, 100, 12]]


def test_read_csv_names_the_file_and_reads_in_the_mode_asked(tmp_path):
    missing = tmp_path / "gone.csv"
    with pytest.raises(DataError) as raised:
        contract.read_csv(missing)
    assert str(raised.value) == "gone.csv: cannot be read (No such file or directory)"
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\nabcd,1,2,3,7\n")
    with pytest.raises(DataError, match=r"^bad\.csv: line 2: exited must be 0 or 1"):
        contract.read_csv(bad)
    rows = tmp_path / "rows.csv"
    rows.write_text(",".join(FEATURES) + "\n5,,12\n")  # a file to predict from may not lack a feature ...
    with pytest.raises(DataError, match=r"^rows\.csv: line 2: lastyear_activity"):
        contract.read_csv(rows, mode=PREDICTION)
    rows.write_text(",".join(FEATURES) + "\n5,100,12\n")  # ... and needs no code or label
    assert contract.read_csv(rows, mode=PREDICTION)[FEATURES].values.tolist() == [[5, 100, 12]]


def test_counts_are_read_as_nullable_integers():
    df = contract.read_csv_bytes(f"{HEADER}\nabcd,,2,3,0\nwxyz,4,5,6,1\n".encode(), "f.csv")
    assert {column: str(dtype) for column, dtype in df.dtypes.items()} == {
        "corporation": "str",
        "lastmonth_activity": "Int64",
        "lastyear_activity": "Int64",
        "number_of_employees": "Int64",
        "exited": "Int64",
    }
    assert df["lastmonth_activity"].isna().tolist() == [True, False]
