import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import client_rows
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

import scoring
import training
from common import FEATURES, PipelineError
from scoring import load_model, read_score, score_model
from training import MODEL_PARAMS, train_model


def test_model_is_the_specified_logistic_regression():
    model = train_model(client_rows(1, 200))
    assert isinstance(model, LogisticRegression)
    params = model.get_params()
    assert {key: params[key] for key in MODEL_PARAMS} == MODEL_PARAMS
    assert params["l1_ratio"] == 0.0  # L2
    assert list(model.feature_names_in_) == FEATURES


def test_model_beats_a_constant_guess_and_gives_probabilities():
    model = train_model(client_rows(1, 400))
    test = client_rows(3, 400)
    always_exit = f1_score(test["exited"], np.ones(len(test)))
    assert score_model(model, test) > always_exit + 0.1
    probabilities = model.predict_proba(test[FEATURES].astype(float))[:, 1]
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_rows_with_missing_features_are_left_out_of_training():
    df = client_rows(1, 200).astype({"lastmonth_activity": "Int64"})
    with_na = pd.concat([df, df.head(5).assign(lastmonth_activity=pd.NA, exited=1 - df.head(5)["exited"])])
    coef = train_model(df).coef_
    np.testing.assert_allclose(train_model(with_na).coef_, coef)


def test_training_on_a_single_class_names_the_problem():
    with pytest.raises(
        PipelineError, match=r"needs rows with both exited=0 and exited=1; the data has only \[0\]"
    ):
        train_model(client_rows(1, 50).assign(exited=0))


def test_score_is_sklearn_f1_of_the_predictions(trained_project, config):
    model = load_model(config.output_model_path / "trainedmodel.pkl")
    test = pd.read_csv(config.test_data_path / "testdata.csv")
    expected = f1_score(test["exited"], model.predict(test[FEATURES].astype(float)))
    assert score_model(model, test) == pytest.approx(expected)
    assert read_score(config.output_model_path / "latestscore.txt") == pytest.approx(expected)


def test_score_model_accepts_a_path_and_writes_nothing(trained_project, config):
    model_path = config.output_model_path / "trainedmodel.pkl"
    before = sorted(config.output_model_path.iterdir())
    assert score_model(model_path, client_rows(3, 100)) == score_model(
        load_model(model_path), client_rows(3, 100)
    )
    assert sorted(config.output_model_path.iterdir()) == before


def test_main_functions_return_their_results(config):
    import ingestion

    ingestion.main(config.config_path)
    model = training.main(config.config_path)
    assert isinstance(model, LogisticRegression)
    score = scoring.main(config.config_path)
    assert 0 < score <= 1
    assert (config.output_model_path / "latestscore.txt").read_text() == f"{score!r}\n"


@pytest.mark.parametrize(
    "content, message",
    [(None, r"does not exist \(training.py trains a model"), (b"not a pickle", "cannot be loaded")],
)
def test_unloadable_model_is_named(tmp_path, content, message):
    path = tmp_path / "trainedmodel.pkl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PipelineError, match=f"model file {path} {message}"):
        load_model(path)


def test_a_pickle_that_is_not_a_classifier_is_refused(tmp_path):
    path = tmp_path / "trainedmodel.pkl"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(PipelineError, match="does not hold a classifier"):
        load_model(path)


def test_training_without_finaldata_names_the_file(config):
    with pytest.raises(
        PipelineError, match=f"data file {config.output_folder_path / 'finaldata.csv'} does not exist"
    ):
        training.main(config.config_path)
