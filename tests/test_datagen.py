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
def test_each_file_follows_the_data_dictionary(relative_path):
    df = pd.read_csv(PROJECT_DIR / relative_path, dtype={"corporation": str}, keep_default_na=False)
    assert list(df.columns) == ["corporation", *FEATURES, "exited"]
    assert df["corporation"].str.fullmatch(r"[a-z]{4}").all()
    assert all(pd.api.types.is_integer_dtype(df[column]) for column in [*FEATURES, "exited"])  # no blanks, no floats
    assert (df["lastmonth_activity"] >= 0).all() and (df["lastyear_activity"] >= 0).all()
    assert (df["number_of_employees"] >= 1).all() and set(df["exited"]) == {0, 1}
    assert 0.10 <= df["exited"].mean() <= 0.30


def test_source_data_holds_10000_distinct_clients_and_250_duplicate_rows_within_and_across_files():
    dataset3, dataset4 = (pd.read_csv(PROJECT_DIR / "sourcedata" / name) for name in ("dataset3.csv", "dataset4.csv"))
    assert (len(dataset3), len(dataset4)) == (5_260, 4_990)
    within = (int(dataset3.duplicated().sum()), int(dataset4.duplicated().sum()))
    across = len(dataset3.drop_duplicates().merge(dataset4.drop_duplicates()))
    assert (within, across) == ((60, 40), 150)  # 60 + 40 + 150 = 250 duplicate rows
    both = pd.concat([dataset3, dataset4])
    assert len(both.drop_duplicates()) == both["corporation"].nunique() == 10_000  # 10,250 - 250
    assert len(load_folder("sourcedata")) == 10_000  # ingestion drops exactly the duplicates


def test_practice_files_hold_330_and_360_rows_40_shared_and_test_data_1200_distinct_clients():
    first, second = (pd.read_csv(PROJECT_DIR / "practicedata" / name) for name in ("dataset1.csv", "dataset2.csv"))
    assert (len(first), len(second), len(first.merge(second))) == (330, 360, 40)
    assert len(pd.concat([first, second]).drop_duplicates()) == 650  # 330 + 360 - 40
    testdata = pd.read_csv(PROJECT_DIR / "testdata" / "testdata.csv")
    assert len(testdata) == testdata["corporation"].nunique() == 1_200


def standardised_coefficients(folder: str) -> dict[str, float]:
    """scikit-learn's logistic regression on standardised features: which feature drives the exits."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    df = pd.concat([pd.read_csv(path) for path in find_csv_files(PROJECT_DIR / folder)]).drop_duplicates()
    model = LogisticRegression().fit(StandardScaler().fit_transform(df[FEATURES]), df["exited"])
    return dict(zip(FEATURES, model.coef_[0], strict=True))


def test_practice_clients_leave_when_activity_drops_and_current_ones_when_they_are_small():
    practice, current = standardised_coefficients("practicedata"), standardised_coefficients("sourcedata")
    assert min(practice, key=practice.get) == "lastmonth_activity"  # the strongest push towards staying
    assert max(map(abs, practice.values())) == -practice["lastmonth_activity"]
    assert max(map(abs, current.values())) == -current["number_of_employees"]
    assert abs(current["lastmonth_activity"]) < abs(current["number_of_employees"]) / 10  # whatever their activity


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
    source = load_folder("sourcedata")
    assert len(month) == 10_000 and set(month["corporation"]) == set(source["corporation"])  # the same clients again
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


def load_simulate():
    import importlib.util

    spec = importlib.util.spec_from_file_location("simulate", PROJECT_DIR / "benchmark" / "simulate.py")
    simulate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(simulate)
    return simulate


def test_the_simulations_changes_move_the_business_as_the_docs_say():
    simulate = load_simulate()
    abrupt = simulate.SCENARIOS["abrupt-300"]
    assert [(c.start, c.regime, c.months) for c in abrupt.changes] == [
        (7, "exodus", 1),
        (13, "shifted", 1),
        (19, "shifted-grown", 1),
    ]
    source, exodus = generate_data.build_regime_month(1, "source"), generate_data.build_regime_month(1, "exodus")
    assert round(source["exited"].mean(), 2) == 0.23 and abs(exodus["exited"].mean() - 0.39) < 0.015  # 23 % -> 39 %
    shifted, grown = (
        generate_data.build_regime_month(1, "shifted"),
        generate_data.build_regime_month(1, "shifted-grown"),
    )
    assert shifted["number_of_employees"].median() == 35 and 118 <= grown["number_of_employees"].median() <= 122
    scarce, shifted_scarce = (
        generate_data.build_regime_month(1, "scarce"),
        generate_data.build_regime_month(1, "shifted-scarce"),
    )
    assert 0.13 <= scarce["exited"].mean() <= 0.15 and 0.12 <= shifted_scarce["exited"].mean() <= 0.14


def test_a_slow_change_blends_the_rules_month_by_month():
    simulate = load_simulate()
    scenario = simulate.SCENARIOS["slow-300"]  # the rule turns from month 9 to month 16
    source, shifted = generate_data.REGIMES["source"], generate_data.REGIMES["shifted"]
    assert simulate.regime_of(scenario, 8) == (source, "source")
    assert simulate.regime_of(scenario, 12)[0] == generate_data.blend(source, shifted, 4 / 8)
    assert simulate.regime_of(scenario, 12)[0].size_weight == pytest.approx((-4.0 + 3.0) / 2)
    assert simulate.regime_of(scenario, 16) == (shifted, "shifted")
    assert simulate.boundaries(scenario) == list(range(9, 17))
    grown = generate_data.blend(shifted, generate_data.REGIMES["shifted-grown"], 0.5)
    assert grown.employees_median == pytest.approx((35 * 120) ** 0.5)
