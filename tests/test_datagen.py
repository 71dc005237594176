"""The bundled data: reproducible byte for byte, realistic, and drifting as the README says."""

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_DIR

from datagen import generate_data
from ingestion import ingest_files
from risk.artifacts import list_csv_names
from risk.config import PipelineError
from risk.contract import FEATURES, read_csv, to_frame
from risk.model import score_model, train_model

FILES = list(generate_data.build_datasets())


def find_csv_files(folder_path) -> list:
    return [folder_path / name for name in list_csv_names(folder_path)]


def load_folder(name: str) -> pd.DataFrame:
    finaldata, _ = ingest_files(find_csv_files(PROJECT_DIR / name))
    return to_frame(finaldata)


def constant_guess_f1(df: pd.DataFrame) -> float:
    rate = df["exited"].mean()
    return 2 * rate / (1 + rate)


def test_generator_reproduces_the_committed_files_byte_for_byte(tmp_path):
    generate_data.main(["--out", str(tmp_path)])
    for relative_path in FILES:
        assert (tmp_path / relative_path).read_bytes() == (PROJECT_DIR / relative_path).read_bytes(), relative_path


@pytest.mark.parametrize("relative_path", FILES)
def test_each_file_is_valid_input(relative_path):
    df = read_csv(PROJECT_DIR / relative_path)
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
    month = read_csv(path)
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


# --- the regimes of new months (the simulation benchmark's changes) ---------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exodus_raises_the_exit_rate_by_more_than_10_points(seed):
    source = generate_data.build_regime_month(seed, "source")
    exodus = generate_data.build_regime_month(seed, "exodus")
    assert len(source) == len(exodus) == 10_000
    assert exodus["exited"].mean() - source["exited"].mean() > 0.10


def test_exodus_keeps_the_source_rule_of_who_leaves():
    source, exodus = generate_data.REGIMES["source"], generate_data.REGIMES["exodus"]
    assert (exodus.month_weight, exodus.size_weight) == (source.month_weight, source.size_weight)
    assert exodus.intercept > source.intercept


def test_shifted_grown_is_the_shifted_rule_with_larger_clients():
    shifted, grown = generate_data.REGIMES["shifted"], generate_data.REGIMES["shifted-grown"]
    assert replace(shifted, employees_median=grown.employees_median) == grown
    shifted_month = generate_data.build_regime_month(1, "shifted")
    grown_month = generate_data.build_regime_month(1, "shifted-grown")
    ratio = grown_month["number_of_employees"].median() / shifted_month["number_of_employees"].median()
    assert ratio > 2.5


def test_activity_factor_scales_the_activity_level():
    codes = generate_data.make_codes(np.random.default_rng(0), 10_000)
    regime = generate_data.REGIMES["source"]
    base = generate_data.draw_clients(np.random.default_rng(5), codes, regime)
    busier = generate_data.draw_clients(np.random.default_rng(5), codes, replace(regime, activity_factor=2.0))
    assert busier["lastyear_activity"].median() / base["lastyear_activity"].median() == pytest.approx(2, rel=0.05)
    assert busier["lastmonth_activity"].median() > 1.7 * base["lastmonth_activity"].median()
    assert busier["number_of_employees"].equals(base["number_of_employees"])


@pytest.mark.parametrize("regime", ["source", "exodus", "shifted", "shifted-grown"])
def test_a_months_holdout_is_an_independent_draw_of_the_same_clients(regime):
    month = generate_data.build_regime_month(7, regime)
    holdout = generate_data.build_regime_month(7, regime, holdout=True)
    assert set(month["corporation"]) == set(holdout["corporation"])
    paired = month.merge(holdout, on="corporation", suffixes=("", "_holdout"))
    same = np.ones(len(paired), dtype=bool)
    for column in FEATURES:
        same &= (paired[column] == paired[f"{column}_holdout"]).to_numpy()
    assert same.mean() < 0.01  # a small client may repeat its three values by chance
    assert abs(month["exited"].mean() - holdout["exited"].mean()) < 0.03  # the same regime
    pd.testing.assert_frame_equal(holdout, generate_data.build_regime_month(7, regime, holdout=True))


@pytest.mark.parametrize("regime", ["exodus", "shifted-grown"])
def test_the_command_line_writes_a_month_of_the_new_regimes(tmp_path, regime):
    generate_data.main(["--month", str(tmp_path), "--regime", regime, "--seed", "11"])
    month = read_csv(tmp_path / "dataset1.csv")
    expected = generate_data.build_regime_month(11, regime)
    pd.testing.assert_frame_equal(month, expected, check_dtype=False)
