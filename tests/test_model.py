"""The model: the specified logistic regression, its use (probabilities, scores), training and scoring."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURES, SPECIFIED, client_rows
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import f1_score

import scoring
import training
from risk.config import PipelineError
from risk.model import (
    contributions,
    load_model,
    model_bytes,
    model_id_of,
    predict,
    probabilities,
    score_model,
    train_model,
    training_summary,
)


def test_model_is_the_specified_logistic_regression():
    model = train_model(client_rows(1, 200))
    assert isinstance(model, LogisticRegression)
    params = model.get_params()
    assert {key: params[key] for key in SPECIFIED} == SPECIFIED
    assert params["penalty"] in ("l2", "deprecated") and params.get("l1_ratio") in (None, 0.0)
    reference = LogisticRegression(**SPECIFIED).fit(
        client_rows(1, 200)[FEATURES].to_numpy(float), client_rows(1, 200)["exited"]
    )
    np.testing.assert_array_equal(model.coef_, reference.coef_)


def test_a_model_is_written_as_the_same_bytes_whichever_strings_its_attributes_share():
    # pickle writes an object met twice as a reference to the first: whether the attribute name "C" and
    # NumPy's array order "C" are one string object or two depends on what the process did before (the
    # full process and training.py differ), and gave one model two ids. Here: the same model twice, its
    # names once as the strings scikit-learn set, once as the one-letter strings NumPy uses.
    model = train_model(client_rows(1, 200))
    twin = pickle.loads(pickle.dumps(model))
    twin.__dict__ = {(chr(ord(name)) if len(name) == 1 else name): value for name, value in vars(model).items()}
    assert model_bytes(twin) == model_bytes(model)
    assert model_id_of(model_bytes(twin)) == model_id_of(model_bytes(model))
    assert model_bytes(pickle.loads(model_bytes(model))) == model_bytes(model)  # loaded and written again
    np.testing.assert_array_equal(pickle.loads(model_bytes(model)).coef_, model.coef_)


def test_probabilities_equal_predict_proba_on_many_rows():
    model = train_model(client_rows(1, 500))
    X = client_rows(7, 20_000)[FEATURES].to_numpy(float)
    np.testing.assert_allclose(probabilities(model, X), model.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    y_pred, _ = predict(model, pd.DataFrame(X, columns=FEATURES))
    np.testing.assert_array_equal(y_pred, model.predict(X))


def test_model_beats_a_constant_guess():
    model = train_model(client_rows(1, 400))
    test = client_rows(3, 400)
    always_exit = f1_score(test["exited"], np.ones(len(test)))
    assert score_model(model, test) > always_exit + 0.2


def test_rows_with_missing_features_are_left_out_of_training():
    df = client_rows(1, 200).astype({"lastmonth_activity": "Int64"})
    flipped_incomplete = df.head(5).assign(lastmonth_activity=pd.NA, exited=1 - df.head(5)["exited"])
    np.testing.assert_array_equal(train_model(pd.concat([df, flipped_incomplete])).coef_, train_model(df).coef_)


def test_training_on_a_single_class_names_the_problem():
    with pytest.raises(PipelineError, match=r"needs rows with both exited=0 and exited=1; the data has only \[0\]"):
        train_model(client_rows(1, 50).assign(exited=0))


def test_score_is_sklearn_f1_of_the_predictions_on_complete_rows():
    model = train_model(client_rows(1, 400))
    test = client_rows(3, 300).astype({"lastyear_activity": "Int64"})
    test.loc[:9, "lastyear_activity"] = pd.NA
    complete = test.iloc[10:]
    expected = f1_score(complete["exited"], model.predict(complete[FEATURES].to_numpy(float)))
    assert score_model(model, test) == expected


def test_training_writes_the_model_and_its_card(config):
    import ingestion

    ingestion.ingest(config)
    model = training.train(config)
    text = (config.output_model_path / "modelcard.json").read_text()
    card = json.loads(text)
    assert text == json.dumps(card, indent=2) + "\n"  # for people too: indented
    assert card["test_f1"] is None  # until scoring.py scores it
    finaldata = pd.read_csv(config.output_folder_path / "finaldata.csv")
    assert card["rows"] == len(finaldata) == 700
    assert card["exit_rate"] == round(finaldata["exited"].mean(), 6)
    assert card["positives"] == int(finaldata["exited"].sum())
    assert card["coefficients"] == dict(zip(FEATURES, model.coef_[0].tolist(), strict=True))
    assert card["feature_means"]["lastmonth_activity"] == pytest.approx(finaldata["lastmonth_activity"].mean())
    assert [f["name"] for f in card["training_files"]] == ["dataset1.csv", "dataset2.csv"]
    assert card["validation_low"] <= card["validation_f1"] <= card["validation_high"]
    tp, fp, fn, tn = card["validation_counts"]
    assert tp + fp + fn + tn == 700 and card["validation_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_scoring_writes_the_f1_and_records_it_in_the_card(config):
    import ingestion

    ingestion.ingest(config)
    model = training.train(config)
    score = scoring.score(config)
    test = pd.read_csv(config.test_data_path / "testdata.csv")
    assert score == f1_score(test["exited"], model.predict(test[FEATURES].to_numpy(float)))
    assert (config.output_model_path / "latestscore.txt").read_text() == f"{score!r}\n"
    assert json.loads((config.output_model_path / "modelcard.json").read_text())["test_f1"] == score


@pytest.mark.parametrize(
    "content, message",
    [
        (None, r"does not exist \(training.py trains a model"),
        (b"not a pickle", "cannot be loaded: UnpicklingError: invalid load key, 'n'.$"),
    ],
)
def test_an_unloadable_model_is_named(tmp_path, content, message):
    path = tmp_path / "trainedmodel.pkl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PipelineError, match=f"model file {path} {message}"):
        load_model(path)


@pytest.mark.parametrize(
    "thing, message",
    [
        ({"not": "a model"}, "does not hold a fitted logistic regression"),
        (LogisticRegression(), "does not hold a fitted logistic regression"),
        (
            LogisticRegression().fit(np.eye(2), [0, 1]),
            r"holds a model of 2 feature\(s\) and classes \[0, 1\]; expected 3 features",
        ),
    ],
)
def test_a_pickle_that_is_not_our_model_is_refused(tmp_path, thing, message):
    path = tmp_path / "trainedmodel.pkl"
    path.write_bytes(pickle.dumps(thing))
    with pytest.raises(PipelineError, match=f"^model file {path} {message}"):
        load_model(path)


def fitted(coef, intercept=0.0, classes=(0, 1)):
    model = LogisticRegression()
    model.coef_, model.intercept_ = np.array([coef], dtype=float), np.array([intercept])
    if classes is not None:
        model.classes_ = np.array(classes)
    return model


@pytest.mark.parametrize(
    "thing, message",
    [
        (fitted([1, 2, 3], classes=None), "does not hold a fitted logistic regression"),  # coefficients, no classes
        (SGDClassifier().fit(np.eye(3), [0, 1, 1]), "does not hold a fitted logistic regression"),  # fitted, linear
        (fitted([1, np.inf, 3]), "has coefficients that are not finite numbers"),  # the intercept is finite
        (fitted([1, 2, 3], intercept=np.nan), "has coefficients that are not finite numbers"),
    ],
    ids=["no classes", "another linear model", "infinite coefficient", "intercept not a number"],
)
def test_a_model_that_cannot_be_trusted_is_refused_by_name(tmp_path, thing, message):
    path = tmp_path / "trainedmodel.pkl"
    path.write_bytes(pickle.dumps(thing))
    with pytest.raises(PipelineError) as raised:
        load_model(path)
    assert str(raised.value) == f"model file {path} {message}"


def test_scoring_rows_without_a_complete_row_names_the_problem():
    rows = pd.DataFrame({"corporation": ["abcd"], **{f: [np.nan] for f in FEATURES}, "exited": [1]})
    with pytest.raises(PipelineError) as raised:
        score_model(fitted([1, 2, 3]), rows)
    assert str(raised.value) == "no row with every feature value to score the model on"


def test_f1_without_any_exit_predicted_or_actual_is_zero_without_a_warning():
    rows = pd.DataFrame({"corporation": ["abcd", "efgh"], **{f: [1, 2] for f in FEATURES}, "exited": [0, 0]})
    assert score_model(fitted([-1, -1, -1], intercept=-5), rows) == 0.0  # warnings are errors here


def test_training_summary_counts_the_rows_left_out():
    df = pd.DataFrame(
        {
            "corporation": ["abcd", "efgh", "ijkl"],
            "lastmonth_activity": [1, None, 3],
            "lastyear_activity": [4, 5, 6],
            "number_of_employees": [7, 8, 9],
            "exited": [0, 1, 1],
        }
    )
    summary = training_summary(df)
    assert (summary["rows"], summary["rows_left_out"]) == (2, 1)


def test_training_without_finaldata_names_the_file(config):
    with pytest.raises(PipelineError, match=f"data file {config.output_folder_path / 'finaldata.csv'} does not exist"):
        training.train(config)


def test_contributions_are_each_coefficient_times_the_distance_from_the_training_mean():
    model = LogisticRegression()
    model.coef_, model.intercept_ = np.array([[-0.5, 0.25, 2.0]]), np.array([1.0])
    X = np.array([[4.0, 10.0, 3.0], [0.0, 0.0, 0.0]])
    pushes = contributions(model, X, np.array([2.0, 6.0, 1.0]))
    # by hand: row 1 (4-2)(-0.5), (10-6)(0.25), (3-1)(2); row 2 (0-2)(-0.5), (0-6)(0.25), (0-1)(2)
    np.testing.assert_array_equal(pushes, [[-1.0, 1.0, 4.0], [1.0, -1.5, -2.0]])


def test_predictions_are_integers_and_a_log_odds_of_exactly_zero_is_no_exit_as_in_scikit_learn():
    rows = pd.DataFrame({"corporation": ["abcd"], **{f: [2] for f in FEATURES}, "exited": [1]})
    model = fitted([0, 0, 0])  # log-odds 0: probability one half
    y_pred, probability = predict(model, rows)
    assert y_pred.dtype == np.int64 and y_pred.tolist() == model.predict(np.full((1, 3), 2.0)).tolist() == [0]
    assert probability.tolist() == [0.5]


def test_complete_rows_need_every_feature_but_not_a_code():
    from risk.model import complete_rows

    rows = pd.DataFrame(
        {
            "corporation": [None, "efgh"],
            "lastmonth_activity": [1, None],
            "lastyear_activity": [4, 5],
            "number_of_employees": [7, 8],
            "exited": [0, 1],
        }
    )
    assert complete_rows(rows).index.tolist() == [0]
