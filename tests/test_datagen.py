"""The bundled data: reproducible byte for byte, realistic, and drifting as the README says."""

import re

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_DIR

from common import FEATURES, PipelineError, find_csv_files
from datagen import generate_data
from ingestion import ingest_files, read_dataset
from scoring import score_model
from training import train_model

FILES = list(generate_data.build_datasets())


def load_folder(name: str) -> pd.DataFrame:
    finaldata, _ = ingest_files(find_csv_files(PROJECT_DIR / name))
    return finaldata


def constant_guess_f1(df: pd.DataFrame) -> float:
    rate = df["exited"].mean()
    return 2 * rate / (1 + rate)


def test_generator_reproduces_the_committed_files_byte_for_byte(tmp_path):
    generate_data.main(["--out", str(tmp_path)])
    for relative_path in FILES:
        assert (tmp_path / relative_path).read_bytes() == (PROJECT_DIR / relative_path).read_bytes(), (
            relative_path
        )


@pytest.mark.parametrize("relative_path", FILES)
def test_each_file_is_valid_input(relative_path):
    df = read_dataset(PROJECT_DIR / relative_path)
    assert df["corporation"].str.fullmatch(r"[a-z]{4}").all()
    assert df[FEATURES].notna().all().all() and (df[FEATURES] >= 0).all().all()
    assert 0.10 <= df["exited"].mean() <= 0.30


def test_source_data_holds_10000_distinct_clients_plus_duplicate_rows():
    source = load_folder("sourcedata")
    assert len(source) == 10_000 and source["corporation"].nunique() == 10_000
    files = [pd.read_csv(path) for path in find_csv_files(PROJECT_DIR / "sourcedata")]
    assert all(df.duplicated().any() for df in files)
    assert len(files[0].merge(files[1])) > 0


def test_practice_files_share_some_rows_and_test_data_is_large():
    first, second = (pd.read_csv(path) for path in find_csv_files(PROJECT_DIR / "practicedata"))
    assert 200 <= len(first) <= 500 and 200 <= len(second) <= 500
    assert len(first.merge(second)) > 0
    testdata = pd.read_csv(PROJECT_DIR / "testdata" / "testdata.csv")
    assert len(testdata) >= 1000 and testdata["corporation"].is_unique


def test_features_are_skewed():
    source = load_folder("sourcedata")
    for column in FEATURES:
        assert source[column].mean() > 1.3 * source[column].median(), column


def test_practice_model_is_found_drifted_and_source_model_learns_the_new_rule():
    practice, source = load_folder("practicedata"), load_folder("sourcedata")
    testdata = pd.read_csv(PROJECT_DIR / "testdata" / "testdata.csv")
    practice_model, source_model = train_model(practice), train_model(source)
    deployed_score = score_model(practice_model, testdata)
    assert deployed_score > constant_guess_f1(testdata) + 0.1
    assert score_model(practice_model, source) < deployed_score - 0.1  # drift, by a clear margin
    assert score_model(source_model, testdata) > constant_guess_f1(testdata) + 0.1
    assert score_model(source_model, source) > constant_guess_f1(source) + 0.2


@pytest.mark.parametrize("regime, drifts", [("source", False), ("shifted", True)])
def test_a_new_month_drifts_only_when_the_business_changes(tmp_path, regime, drifts):
    generate_data.main(["--month", str(tmp_path), "--regime", regime])
    (path,) = tmp_path.iterdir()
    assert path.name == "dataset1.csv"
    month = read_dataset(path)
    assert len(month) == 10_000 and month["corporation"].nunique() == 10_000
    source = load_folder("sourcedata")
    model = train_model(source)
    combined = pd.concat([source, month]).drop_duplicates()
    testdata = pd.read_csv(PROJECT_DIR / "testdata" / "testdata.csv")
    assert (score_model(model, combined) < score_model(model, testdata)) == drifts


def test_month_files_are_numbered_after_the_existing_ones(tmp_path):
    (tmp_path / "dataset4.csv").write_text("x")
    (tmp_path / "notes.csv").write_text("x")
    assert generate_data.next_dataset_path(tmp_path).name == "dataset5.csv"


def test_codes_are_distinct_four_letter_words():
    codes = generate_data.make_codes(np.random.default_rng(0), 5000)
    assert len(set(codes)) == 5000 and all(re.fullmatch(r"[a-z]{4}", code) for code in codes)


def test_reading_a_missing_folder_is_refused():
    with pytest.raises(PipelineError):
        find_csv_files(PROJECT_DIR / "no-such-folder")
