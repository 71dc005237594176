"""Ingestion: every CSV of the input folder, checked by the contract, combined, de-duplicated, recorded."""

import hashlib
import json
import logging
import os
import sqlite3
import time

import pandas as pd
import pytest
from conftest import HEADER, write_csv

import ingestion
from risk.artifacts import list_csv_names
from risk.config import PipelineError
from risk.contract import to_frame


def file_rows(config) -> list[dict]:
    with sqlite3.connect(config.history_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM files ORDER BY id")]


def test_csv_names_ignore_hidden_files_other_files_and_folders(tmp_path):
    for name in ["b.csv", "a.CSV", ".hidden.csv", "notes.txt", "data.csv.bak"]:
        (tmp_path / name).write_text(HEADER + "\n")
    (tmp_path / "folder.csv").mkdir()
    assert list_csv_names(tmp_path) == ["a.CSV", "b.csv"]


FORGED = "a\n2026-01-01 00:00:00,000 ERROR fullprocess: forged.csv"


def test_links_pipes_folders_and_names_with_control_characters_are_skipped_with_a_warning(config, caplog):
    secret = write_csv(config.config_path.parent / "outside" / "secret.txt", "root:x:0:0:root:/root:/bin/bash\n")
    folder = config.input_folder_path
    (folder / "passwd.csv").symlink_to(secret)
    (folder / "dataset1-link.csv").symlink_to(folder / "dataset1.csv")  # a link, even inside the folder
    os.mkfifo(folder / "pipe.csv")  # opening it would wait for a writer for ever
    (folder / "folder.csv").mkdir()
    write_csv(folder / FORGED, f"{HEADER}\nzzzz,1,2,3,0\n")
    with caplog.at_level(logging.WARNING, logger="ingestion"):
        metrics = ingestion.ingest(config).metrics
    assert [item["name"] for item in metrics["files_read"] + metrics["files_rejected"]] == [
        "dataset1.csv",
        "dataset2.csv",
    ]
    assert caplog.messages == [
        "skipped a\\n2026-01-01 00:00:00,000 ERROR fullprocess: forged.csv in the input folder: its name holds"
        " a control character; rename it to read it",
        "skipped dataset1-link.csv in the input folder: a symbolic link; only regular files are read",
        "skipped folder.csv in the input folder: not a regular file",
        "skipped passwd.csv in the input folder: a symbolic link; only regular files are read",
        "skipped pipe.csv in the input folder: not a regular file",
    ]
    assert sorted(row["name"] for row in file_rows(config)) == ["dataset1.csv", "dataset2.csv"]


def test_a_file_still_being_written_waits_until_it_ends_its_last_line_or_a_minute_passed(config, caplog):
    # a copy cut in the middle of a number ("288" as "28") still reads as good rows: it must wait
    path = config.input_folder_path / "dataset3.csv"
    header = "corporation,lastmonth_activity,lastyear_activity,exited,number_of_employees"  # any order is good
    path.write_text(f"{header}\nzzzz,1,2,0,3\nzzzy,1,2,0,28")
    with caplog.at_level(logging.WARNING, logger="ingestion"):
        metrics = ingestion.ingest(config).metrics
    assert "dataset3.csv" not in [item["name"] for item in metrics["files_read"] + metrics["files_rejected"]]
    assert caplog.messages[0].startswith(
        "skipped dataset3.csv in the input folder: it may still be being written (no line end at its end, changed 0 s"
    )
    assert caplog.messages[0].endswith("it is read once it ends with one, or has not changed for 60 s")
    old = time.time() - 61
    os.utime(path, (old, old))  # a file that simply has no final line end is read a minute after its last change
    assert "dataset3.csv" in [item["name"] for item in ingestion.ingest(config).metrics["files_read"]]
    path.write_text(f"{header}\nzzzz,1,2,0,3\nzzzy,1,2,0,288\n")  # the copy completed: read at once
    assert "dataset3.csv" in [item["name"] for item in ingestion.ingest(config).metrics["files_read"]]


def test_a_file_replaced_by_a_link_after_it_was_listed_is_skipped_not_followed(config, caplog):
    secret = write_csv(config.config_path.parent / "secret.csv", f"{HEADER}\nzzzz,1,2,3,0\n")
    path = config.input_folder_path / "dataset2.csv"
    path.unlink()
    path.symlink_to(secret)
    with caplog.at_level(logging.WARNING, logger="ingestion"):
        _, metrics = ingestion.ingest_files([config.input_folder_path / "dataset1.csv", path])
    assert [item["name"] for item in metrics["files_read"]] == ["dataset1.csv"]
    assert caplog.messages == ["skipped dataset2.csv in the input folder: Too many levels of symbolic links"]


def test_a_missing_input_folder_is_named(tmp_path):
    with pytest.raises(PipelineError, match="input folder .*nope does not exist"):
        list_csv_names(tmp_path / "nope")


def test_ingest_combines_files_and_drops_duplicate_rows(tmp_path):
    a = write_csv(tmp_path / "a.csv", f"{HEADER}\naaaa,1,2,3,0\nbbbb,4,5,6,1\naaaa,1,2,3,0\n")
    b = write_csv(tmp_path / "b.csv", f"{HEADER}\nbbbb,4,5,6,1\ncccc,7,8,9,0\nbbbb,4,5,7,1\n")
    table, metrics = ingestion.ingest_files([a, b])
    finaldata = to_frame(table)
    expected = pd.DataFrame(
        {
            "corporation": ["aaaa", "bbbb", "cccc", "bbbb"],
            "lastmonth_activity": [1, 4, 7, 4],
            "lastyear_activity": [2, 5, 8, 5],
            "number_of_employees": [3, 6, 9, 7],
            "exited": [0, 1, 0, 1],
        }
    )
    pd.testing.assert_frame_equal(finaldata, expected, check_dtype=False)
    counts = (metrics["rows_read"], metrics["rows_after_deduplication"], metrics["duplicates_dropped"])
    assert counts == (6, 4, 2)
    assert [(f["name"], f["rows"]) for f in metrics["files_read"]] == [("a.csv", 3), ("b.csv", 3)]
    assert metrics["files_read"][0]["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()


def test_columns_in_another_order_are_accepted(tmp_path):
    path = write_csv(
        tmp_path / "a.csv",
        "exited,corporation,number_of_employees,lastyear_activity,lastmonth_activity\n1,abcd,3,2,1\n",
    )
    table, _ = ingestion.ingest_files([path])
    assert table.to_pylist() == [
        {"corporation": "abcd", "lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3, "exited": 1}
    ]


def test_missing_feature_values_are_kept_as_empty_fields(config):
    write_csv(config.input_folder_path / "dataset3.csv", f"{HEADER}\nzzza,,2,3,0\nzzzb,4,5,,1\n")
    ingestion.ingest(config)
    text = (config.output_folder_path / "finaldata.csv").read_text()
    assert "\nzzza,,2,3,0\n" in text and "\nzzzb,4,5,,1\n" in text


def test_bad_files_are_recorded_as_rejected_and_good_ones_still_ingested(config):
    bad = write_csv(config.input_folder_path / "broken.csv", f"{HEADER}\nabcd,1,2,3,7\n")
    metrics = ingestion.ingest(config).metrics
    assert [item["name"] for item in metrics["files_rejected"]] == ["broken.csv"]
    assert metrics["files_rejected"][0]["reason"] == "broken.csv: line 2: exited must be 0 or 1, got '7'"
    ingested = (config.output_folder_path / "ingestedfiles.txt").read_text().splitlines()
    assert ingested == ["dataset1.csv", "dataset2.csv"]
    saved = json.loads((config.output_folder_path / "ingestionmetrics.json").read_text())
    assert saved["files_rejected"][0]["reason"] == metrics["files_rejected"][0]["reason"]
    assert saved["rows_after_deduplication"] == 700
    recorded = {row["name"]: row for row in file_rows(config)}
    assert (recorded["broken.csv"]["status"], recorded["broken.csv"]["reason"]) == (
        "rejected",
        "broken.csv: line 2: exited must be 0 or 1, got '7'",
    )
    assert recorded["broken.csv"]["sha256"] == hashlib.sha256(bad.read_bytes()).hexdigest()
    assert (recorded["dataset1.csv"]["status"], recorded["dataset1.csv"]["rows"]) == ("accepted", 400)


def test_no_good_file_leaves_earlier_outputs_untouched_and_records_the_rejections(config):
    ingestion.ingest(config)
    outputs = ["finaldata.csv", "ingestedfiles.txt", "ingestionmetrics.json"]
    before = {name: (config.output_folder_path / name).read_bytes() for name in outputs}
    for path in config.input_folder_path.iterdir():
        path.write_text(f"{HEADER}\n")
    with pytest.raises(PipelineError, match="no usable CSV file among 2 in .*sourcedata; outputs left unchanged"):
        ingestion.ingest(config)
    assert {name: (config.output_folder_path / name).read_bytes() for name in outputs} == before
    rejected = [row for row in file_rows(config) if row["status"] == "rejected"]
    assert [(row["name"], row["reason"]) for row in rejected] == [
        ("dataset1.csv", "dataset1.csv: the file has a header but no rows"),
        ("dataset2.csv", "dataset2.csv: the file has a header but no rows"),
    ]


def test_outputs_are_written_and_no_temporary_file_is_left(config):
    ingestion.ingest(config)
    names = sorted(p.name for p in config.output_folder_path.iterdir())
    assert names == ["finaldata.csv", "ingestedfiles.txt", "ingestionmetrics.json"]
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    assert len(finaldata) == 700 and not finaldata.duplicated().any()


def test_first_arrival_is_kept_across_runs_and_new_files_come_last(config):
    ingestion.ingest(config)
    first = {row["name"]: row["first_seen_at"] for row in file_rows(config)}
    write_csv(config.input_folder_path / "dataset0.csv", f"{HEADER}\nzzzz,1,2,3,0\n")
    second = ingestion.ingest(config).metrics
    arrivals = {item["name"]: item["first_seen_at"] for item in second["files_read"]}
    assert arrivals["dataset1.csv"] == first["dataset1.csv"]
    assert arrivals["dataset0.csv"] > first["dataset1.csv"]
    # Arrival order, not name order: the later file's rows come last, so they are the newest.
    assert [item["name"] for item in second["files_read"]] == ["dataset1.csv", "dataset2.csv", "dataset0.csv"]
    assert (config.output_folder_path / "finaldata.csv").read_text().endswith("zzzz,1,2,3,0\n")


def test_a_changed_file_is_a_new_version_and_the_old_one_is_marked_gone(config):
    ingestion.ingest(config)
    path = config.input_folder_path / "dataset2.csv"
    path.write_text(path.read_text() + "zzzz,1,2,3,0\n")
    ingestion.ingest(config)
    versions = [(row["name"], row["rows"], row["present"]) for row in file_rows(config)]
    assert versions == [("dataset1.csv", 400, 1), ("dataset2.csv", 300, 0), ("dataset2.csv", 301, 1)]


def test_duplicates_are_dropped_exactly_keeping_first_occurrences_in_order():
    """The hashed de-duplication against pandas' drop_duplicates on many rows with missing values."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(3)
    n = 50_000
    counts = {column: rng.integers(0, 4, n) for column in ["lastmonth_activity", "lastyear_activity"]}
    table = pa.table(
        {
            "corporation": pa.array(rng.choice(["aaaa", "bbbb", "null"], n)),
            "lastmonth_activity": pa.array(counts["lastmonth_activity"], mask=rng.random(n) < 0.1),
            "lastyear_activity": pa.array(counts["lastyear_activity"]),
            "number_of_employees": pa.array(rng.integers(1, 3, n)),
            "exited": pa.array(rng.integers(0, 2, n)),
        }
    )
    expected = to_frame(table).drop_duplicates(ignore_index=True)
    kept = to_frame(ingestion.drop_duplicate_rows(table))
    assert len(kept) == len(expected) < n
    pd.testing.assert_frame_equal(kept, expected)


def test_a_hash_collision_falls_back_to_an_exact_comparison(monkeypatch):
    import numpy as np
    import pyarrow as pa

    table = pa.table(
        {
            "corporation": ["aaaa", "bbbb", "aaaa", "cccc"],
            "lastmonth_activity": [1, 2, 1, 3],
            "lastyear_activity": [1, 1, 1, 1],
            "number_of_employees": [1, 1, 1, 1],
            "exited": [0, 0, 0, 0],
        }
    )
    monkeypatch.setattr(ingestion, "row_hash", lambda first, second: np.zeros(len(first), np.int64))
    kept = ingestion.drop_duplicate_rows(table)  # every row has the same hash: only the keys can tell
    assert kept.column("corporation").to_pylist() == ["aaaa", "bbbb", "cccc"]


def unjudged(config) -> list[str]:
    from risk import history

    with history.opened(config.history_path) as conn:
        return history.unjudged_files(conn, config.input_folder_path, config.history_path)


def decide_all(config) -> None:
    from risk import history

    with history.opened(config.history_path) as conn, conn:
        history.decide_files(conn, [row["id"] for row in file_rows(config)], None, "decided")


def test_a_file_is_new_when_unknown_never_judged_or_changed_and_its_sha256_decides_if_the_content_did(config):
    import os

    assert unjudged(config) == ["dataset1.csv", "dataset2.csv"]  # unknown to the history
    ingestion.ingest(config)
    assert unjudged(config) == ["dataset1.csv", "dataset2.csv"]  # known, never judged
    decide_all(config)
    assert unjudged(config) == []
    path = config.input_folder_path / "dataset1.csv"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: its time changed
    assert unjudged(config) == ["dataset1.csv"]
    ingestion.ingest(config)  # same SHA-256: the same version, its new time recorded
    assert [(row["name"], row["mtime_ns"]) for row in file_rows(config)] == [
        ("dataset1.csv", stat.st_mtime_ns + 10**9),
        ("dataset2.csv", (config.input_folder_path / "dataset2.csv").stat().st_mtime_ns),
    ]
    assert unjudged(config) == []
    path.write_text(path.read_text() + "zzzz,1,2,3,0\n")  # new content
    assert unjudged(config) == ["dataset1.csv"]
    ingestion.ingest(config)
    assert [(row["name"], row["rows"], row["decision"]) for row in file_rows(config)][-1] == ("dataset1.csv", 401, None)


def test_ingestion_records_how_long_it_took_in_the_history(config):
    started = time.time()
    ingestion.ingest(config)
    with sqlite3.connect(config.history_path) as conn:
        ((step, seconds, ok, path),) = conn.execute("SELECT step, seconds, ok, config_path FROM step_runs").fetchall()
    assert (step, ok, path) == ("ingestion", 1, str(config.config_path))
    assert 0 < seconds <= time.time() - started
