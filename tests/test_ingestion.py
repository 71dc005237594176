import json

import pandas as pd
import pytest
from conftest import HEADER, write_csv

import ingestion
from common import PipelineError, find_csv_files
from ingestion import DataFileError, ingest_files, read_dataset


def test_find_csv_files_ignores_hidden_files_other_files_and_folders(tmp_path):
    for name in ["b.csv", "a.CSV", ".hidden.csv", "notes.txt", "data.csv.bak"]:
        (tmp_path / name).write_text(HEADER + "\n")
    (tmp_path / "folder.csv").mkdir()
    assert [p.name for p in find_csv_files(tmp_path)] == ["a.CSV", "b.csv"]


def test_find_csv_files_on_a_missing_folder_names_it(tmp_path):
    with pytest.raises(PipelineError, match="input folder .*nope does not exist"):
        find_csv_files(tmp_path / "nope")


def test_ingest_combines_files_and_drops_duplicate_rows(tmp_path):
    a = write_csv(tmp_path / "a.csv", f"{HEADER}\naaaa,1,2,3,0\nbbbb,4,5,6,1\naaaa,1,2,3,0\n")
    b = write_csv(tmp_path / "b.csv", f"{HEADER}\nbbbb,4,5,6,1\ncccc,7,8,9,0\nbbbb,4,5,7,1\n")
    finaldata, metrics = ingest_files([a, b])
    expected = pd.DataFrame(
        {
            "corporation": ["aaaa", "bbbb", "cccc", "bbbb"],
            "lastmonth_activity": pd.array([1, 4, 7, 4], dtype="Int64"),
            "lastyear_activity": pd.array([2, 5, 8, 5], dtype="Int64"),
            "number_of_employees": pd.array([3, 6, 9, 7], dtype="Int64"),
            "exited": [0, 1, 0, 1],
        }
    )
    pd.testing.assert_frame_equal(finaldata, expected, check_dtype=False)
    assert (metrics["rows_read"], metrics["rows_after_deduplication"], metrics["duplicates_dropped"]) == (
        6,
        4,
        2,
    )
    assert [(f["name"], f["rows"]) for f in metrics["files_read"]] == [("a.csv", 3), ("b.csv", 3)]


def test_columns_in_another_order_are_accepted(tmp_path):
    path = write_csv(
        tmp_path / "a.csv",
        "exited,corporation,number_of_employees,lastyear_activity,lastmonth_activity\n1,abcd,3,2,1\n",
    )
    assert read_dataset(path).iloc[0].tolist() == ["abcd", 1, 2, 3, 1]


def test_missing_feature_values_are_kept(tmp_path):
    path = write_csv(tmp_path / "a.csv", f"{HEADER}\naaaa,,2,3,0\nbbbb,4,5,,1\n")
    df = read_dataset(path)
    assert df["lastmonth_activity"].isna().tolist() == [True, False]
    assert df["number_of_employees"].isna().tolist() == [False, True]


BAD_FILES = [
    (
        "corporation,lastmonth_activity,lastyear_activity,exited\nabcd,1,2,0\n",
        "bad.csv: missing column(s) ['number_of_employees']",
    ),
    (f"{HEADER},colour\nabcd,1,2,3,0,red\n", "bad.csv: unexpected column(s) ['colour']"),
    (
        f"{HEADER}\nabcd,1,2,3,0\nefgh,many,2,3,0\n",
        "bad.csv: column 'lastmonth_activity' has a non-numeric value 'many' (line 3)",
    ),
    (f"{HEADER}\nabcd,1,-2,3,0\n", "bad.csv: column 'lastyear_activity' has a negative value -2 (line 2)"),
    (
        f"{HEADER}\nabcd,1,2,3.5,0\n",
        "bad.csv: column 'number_of_employees' has a non-integer value 3.5 (line 2)",
    ),
    (f"{HEADER}\nabcd,1,2,3,0\nefgh,1,2,3,2\n", "bad.csv: column 'exited' must be 0 or 1, got 2 (line 3)"),
    (f"{HEADER}\nabcd,1,2,3,\n", "bad.csv: column 'exited' must be 0 or 1, got nan (line 2)"),
    (f"{HEADER}\nabcd,1,2,3,yes\n", "bad.csv: column 'exited' must be 0 or 1, got 'yes' (line 2)"),
    ("", "bad.csv: the file is empty"),
    (f"{HEADER}\n", "bad.csv: the file has a header but no rows"),
    (f"{HEADER}\nabcd,1,2,3,0,9,9\n", "bad.csv: a row has more fields than the header"),
    (f"{HEADER}\nabcd,1,2,3,0\nefgh,1,2,3,0,9\n", "bad.csv: cannot be read as CSV: Error tokenizing data"),
]


@pytest.mark.parametrize("text, message", BAD_FILES)
def test_bad_file_is_rejected_with_one_clear_message(tmp_path, text, message):
    path = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(DataFileError) as error:
        read_dataset(path)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_undecodable_bytes_are_rejected(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(HEADER.encode() + b"\n\xff\xfeab,1,2,3,0\n")
    with pytest.raises(DataFileError, match=r"bad.csv: not UTF-8 text \(undecodable byte at offset \d+\)"):
        read_dataset(path)


def test_bad_files_are_recorded_as_rejected_and_good_ones_still_ingested(config):
    write_csv(config.input_folder_path / "broken.csv", f"{HEADER}\nabcd,1,2,3,7\n")
    metrics = ingestion.main(config.config_path)
    assert [item["name"] for item in metrics["files_rejected"]] == ["broken.csv"]
    assert "must be 0 or 1" in metrics["files_rejected"][0]["reason"]
    ingested = (config.output_folder_path / "ingestedfiles.txt").read_text().splitlines()
    assert ingested == ["dataset1.csv", "dataset2.csv"]
    saved = json.loads((config.output_folder_path / "ingestionmetrics.json").read_text())
    assert saved["files_rejected"] == metrics["files_rejected"]
    assert saved["rows_after_deduplication"] == 200


def test_no_good_file_leaves_earlier_outputs_untouched(config):
    ingestion.main(config.config_path)
    outputs = ["finaldata.csv", "ingestedfiles.txt", "ingestionmetrics.json"]
    before = {name: (config.output_folder_path / name).read_bytes() for name in outputs}
    for path in config.input_folder_path.iterdir():
        path.write_text(f"{HEADER}\n")
    with pytest.raises(PipelineError, match="no usable CSV file among 2 in the input folder"):
        ingestion.main(config.config_path)
    assert {name: (config.output_folder_path / name).read_bytes() for name in outputs} == before
    history = (config.output_folder_path / "ingestionhistory.jsonl").read_text().splitlines()
    assert len(history) == 2 and "failed" in json.loads(history[1])


def test_outputs_are_written_and_no_temporary_file_is_left(config):
    ingestion.main(config.config_path)
    names = sorted(p.name for p in config.output_folder_path.iterdir())
    assert names == ["finaldata.csv", "ingestedfiles.txt", "ingestionhistory.jsonl", "ingestionmetrics.json"]
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    assert len(finaldata) == 200 and not finaldata.duplicated().any()
    assert set(finaldata["exited"]) == {0, 1}


def test_first_ingestion_time_of_a_file_is_kept_across_runs(config):
    first = ingestion.main(config.config_path)
    first["files_read"][0]["first_ingested_at"] = "2020-01-01T00:00:00+00:00"
    (config.output_folder_path / "ingestionmetrics.json").write_text(json.dumps(first))
    write_csv(config.input_folder_path / "dataset9.csv", f"{HEADER}\nzzzz,1,2,3,0\n")
    second = ingestion.main(config.config_path)
    arrivals = {item["name"]: item["first_ingested_at"] for item in second["files_read"]}
    assert arrivals["dataset1.csv"] == "2020-01-01T00:00:00+00:00"
    assert arrivals["dataset9.csv"] == second["ingested_at"]
    assert set(arrivals) == {"dataset1.csv", "dataset2.csv", "dataset9.csv"}
