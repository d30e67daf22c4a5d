"""Ng and Jordan's experiment and semi-supervised naive Bayes: plumbing, shared subsets, errors."""

import pytest
import torch

from ppdgm.data import Dataset, load_dataset
from ppdgm.recipes.generative_discriminative import (
    fit_naive_bayes,
    learning_curves,
    semi_supervised,
    summarize,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits-binarized")


def test_learning_curves_fit_both_models_on_the_same_subsets(digits):
    r = learning_curves(digits, sizes=[40, 20], seeds=2, steps=30)
    assert r["sizes"] == [20, 40] and r["likelihood"] == "bernoulli" and r["classes"] == 10
    assert len(r["rows"]) == 2 * 2 * 2
    nb_rows = [row for row in r["rows"] if row["model"] == "naive Bayes"]
    # naive Bayes' fit is closed-form: its error on a subset is that of a fit by hand.
    first = nb_rows[0]
    idx = torch.randperm(1500, generator=torch.Generator().manual_seed(first["seed"]))[:first["m"]]
    x, y = digits.train.flatten(1), digits.train_labels
    by_hand = fit_naive_bayes(x[idx], y[idx], classes=10, likelihood="bernoulli")
    expected = (by_hand.predict(digits.test.flatten(1)) != digits.test_labels).double().mean().item()
    assert first["error"] == pytest.approx(expected)
    assert all(0 <= row["error"] <= 1 for row in r["rows"])


def test_gaussian_naive_bayes_for_real_valued_digits():
    r = learning_curves(load_dataset("digits"), sizes=[30], seeds=1, steps=10)
    assert r["likelihood"] == "gaussian"


def test_unlabelled_digits_change_the_naive_bayes_fit(digits):
    r = semi_supervised(digits, sizes=[10], seeds=1, iterations=3)
    alone, em = r["rows"]
    assert alone["model"] == "naive Bayes" and em["model"] == "naive Bayes + EM"
    assert 1 <= em["em_iterations"] <= 3
    assert alone["error"] != em["error"]


def test_summarize_means_and_standard_errors():
    rows = [{"model": "a", "m": 5, "seed": s, "error": e} for s, e in enumerate([0.2, 0.4, 0.6])]
    (summary,) = summarize({"rows": rows})
    assert summary["error"] == pytest.approx(0.4) and summary["stderr"] == pytest.approx(0.2 / 3**0.5)


def test_bad_arguments_are_named(digits):
    with pytest.raises(ValueError, match="sizes: 5000 labelled"):
        learning_curves(digits, sizes=[5000], seeds=1)
    with pytest.raises(ValueError, match="sizes: expected a non-empty"):
        learning_curves(digits, sizes=[], seeds=1)
    with pytest.raises(ValueError, match="seeds"):
        learning_curves(digits, sizes=[10], seeds=0)
    with pytest.raises(ValueError, match="needs binary"):
        semi_supervised(load_dataset("digits"), sizes=[10], seeds=1)
    unlabelled = Dataset("toy", train=torch.zeros(4, 2), test=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="has no train and test labels"):
        learning_curves(unlabelled, sizes=[2], seeds=1)
