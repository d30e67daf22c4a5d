"""Generative against discriminative classifiers: Ng and Jordan's (2002) experiment on the digits.

Naive Bayes (:class:`~ppdgm.models.naive_bayes.NaiveBayes`) learns p(x, y) and classifies by
Bayes' rule; logistic regression (:class:`~ppdgm.models.logistic_regression.LogisticRegression`)
learns p(y | x) alone. Ng and Jordan's observation: with few labelled examples the generative
model is closer to its (higher) asymptotic error, which it approaches after O(log d) examples, and
the discriminative model, needing O(d), overtakes it as the training set grows.

:func:`learning_curves` measures test error against the number of labelled examples, naive
Bayes by its closed-form fit and logistic regression by the engine (MAP, SVI with a point-mass
guide), on the same random subsets. :func:`semi_supervised` adds what only the generative model
can use: the remaining training images without their labels, by EM (Nigam et al., 2000), with
Pyro enumerating the label as the E-step.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from pyro.infer import Trace_ELBO

from .._validation import check_choice, check_number, check_positive_int
from ..data import Dataset
from ..inference import Engine, Player, TrainConfig
from ..inference.objectives.em import posterior_by_enumeration
from ..models.logistic_regression import LogisticRegression, LogisticRegressionConfig
from ..models.naive_bayes import LABEL, NaiveBayes, NaiveBayesConfig

__all__ = ["fit_logistic_regression", "fit_naive_bayes", "learning_curves", "semi_supervised",
           "semi_supervised_em", "summarize"]


def fit_naive_bayes(x: torch.Tensor, y: torch.Tensor, *, classes: int, likelihood: str,
                    **options: Any) -> NaiveBayes:
    """Naive Bayes fitted in closed form to labelled ``x`` (N, D) and ``y`` (N,).

    Examples:
        >>> x, y = torch.tensor([[1., 0.], [0., 1.]]), torch.tensor([0, 1])
        >>> fit_naive_bayes(x, y, classes=2, likelihood="bernoulli").predict(x).tolist()
        [0, 1]
    """
    nb = NaiveBayes(NaiveBayesConfig(x_dim=x.shape[1], classes=classes, likelihood=likelihood,
                                     **options))
    nb.fit(x, y)
    return nb


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, *, classes: int, steps: int = 300,
                            lr: float = 0.05, seed: int = 0, **options: Any) -> LogisticRegression:
    """MAP logistic regression by the engine: ``steps`` full-batch Adam steps on Trace_ELBO with
    the point-mass guide (``options`` go to :class:`LogisticRegressionConfig`).

    Examples:
        >>> x, y = torch.tensor([[1., 0.], [0., 1.]]), torch.tensor([0, 1])
        >>> fit_logistic_regression(x, y, classes=2, steps=50).predict(x).tolist()
        [0, 1]
    """
    check_positive_int("steps", steps)
    model = LogisticRegression(LogisticRegressionConfig(x_dim=x.shape[1], classes=classes,
                                                        **options))
    config = TrainConfig(epochs=steps, batch_size=x.shape[0], lr=lr, seed=seed, device="cpu",
                         progress=False, shuffle=False)
    Engine(model.model, model.guide, Trace_ELBO(), [Player("map")], config).fit((x, y))
    return model


def _error(model: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    return (model.predict(x) != y).double().mean().item()


def _subset(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size]


def _features(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    if dataset.train_labels is None or dataset.test_labels is None:
        raise ValueError(f"dataset: {dataset.name!r} has no train and test labels to classify")
    x, xt = dataset.train.flatten(1), dataset.test.flatten(1)
    classes = int(max(dataset.train_labels.max(), dataset.test_labels.max())) + 1
    return x, dataset.train_labels, xt, dataset.test_labels, classes


def _check_sizes(sizes: Sequence[int], n: int) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not sizes:
        raise ValueError(f"sizes: expected a non-empty list of labelled-set sizes, got {sizes!r}")
    for m in sizes:
        check_positive_int("sizes", m, minimum=2)
        if m > n:
            raise ValueError(f"sizes: {m} labelled examples asked for, the training set has {n}")
    return sorted(set(sizes))


def learning_curves(dataset: Dataset, *, sizes: Sequence[int], seeds: int = 5,
                    likelihood: str | None = None, steps: int = 300, lr: float = 0.05,
                    prior_scale: float = 1.0) -> dict[str, Any]:
    """Test error of naive Bayes and logistic regression against the labelled-set size.

    For each size m and seed, both models see the same m training examples drawn at random
    (without stratification: the smallest sets may lack a class). ``likelihood`` picks naive
    Bayes' class-conditionals; ``None`` takes Bernoulli for binary data and Gaussian otherwise.
    Returns plain data: one row per (model, m, seed), and the settings.

    Examples:
        >>> from ppdgm.data import load_dataset
        >>> r = learning_curves(load_dataset("digits-binarized"), sizes=[20], seeds=1, steps=20)
        >>> sorted({row["model"] for row in r["rows"]})
        ['logistic regression', 'naive Bayes']
    """
    x, y, xt, yt, classes = _features(dataset)
    sizes = _check_sizes(sizes, x.shape[0])
    check_positive_int("seeds", seeds)
    likelihood = likelihood or ("bernoulli" if dataset.support == "binary" else "gaussian")
    check_choice("likelihood", likelihood, ("bernoulli", "gaussian"))
    rows, started = [], time.perf_counter()
    for seed in range(seeds):
        for m in sizes:
            idx = _subset(x.shape[0], m, seed)
            nb = fit_naive_bayes(x[idx], y[idx], classes=classes, likelihood=likelihood)
            lr_model = fit_logistic_regression(x[idx], y[idx], classes=classes, steps=steps, lr=lr,
                                               seed=seed, prior_scale=prior_scale)
            rows.append({"model": "naive Bayes", "m": m, "seed": seed, "error": _error(nb, xt, yt)})
            rows.append({"model": "logistic regression", "m": m, "seed": seed,
                         "error": _error(lr_model, xt, yt)})
    return {"experiment": "learning-curves", "data": dataset.name, "likelihood": likelihood,
            "features": x.shape[1], "classes": classes, "test_points": xt.shape[0],
            "sizes": sizes, "seeds": seeds, "lr_steps": steps, "prior_scale": prior_scale,
            "seconds": round(time.perf_counter() - started, 2), "rows": rows}


def semi_supervised_em(nb: NaiveBayes, x: torch.Tensor, y: torch.Tensor, unlabelled: torch.Tensor,
                       *, iterations: int = 30, unlabelled_weight: float = 1.0,
                       tol: float = 1e-6) -> list[float]:
    """EM for naive Bayes on labelled (``x``, ``y``) and ``unlabelled`` data, in place.

    The E-step is Pyro's enumeration of the label site on the unlabelled points; the M-step is
    :meth:`NaiveBayes.m_step` on all points, labelled ones with one-hot weights, unlabelled ones
    with ``unlabelled_weight`` times their posterior. Returns the objective that EM never lowers,
    log p(x, y) + w log p(unlabelled) + log prior, before the first iteration and after each.

    Examples:
        >>> nb = NaiveBayes(NaiveBayesConfig(x_dim=2, classes=2))
        >>> x, y = torch.tensor([[1., 0.], [0., 1.]]), torch.tensor([0, 1])
        >>> nb.fit(x, y)
        >>> trace = semi_supervised_em(nb, x, y, torch.tensor([[1., 1.], [1., 0.]]))
        >>> all(b >= a - 1e-9 for a, b in zip(trace, trace[1:]))
        True
    """
    check_positive_int("iterations", iterations)
    check_number("tol", tol, minimum=0)
    w = unlabelled_weight
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w > 0):
        raise ValueError(f"unlabelled_weight: expected a number > 0, got {w!r}")
    one_hot = torch.nn.functional.one_hot(y, nb.config.classes).to(x.dtype)
    everything = torch.cat([x, unlabelled])

    @torch.no_grad()
    def objective() -> float:
        labelled = nb.joint_log_prob(x).gather(1, y.unsqueeze(1)).sum()
        return (labelled + w * nb.log_marginal(unlabelled).sum() + nb.log_prior()).item()

    trace = [objective()]
    for _ in range(iterations):
        posterior = posterior_by_enumeration(nb.model, unlabelled, LABEL)
        nb.m_step(everything, torch.cat([one_hot, w * posterior]))
        trace.append(objective())
        if trace[-1] - trace[-2] < tol * abs(trace[-2]):
            break
    return trace


def semi_supervised(dataset: Dataset, *, sizes: Sequence[int], seeds: int = 5,
                    unlabelled_weight: float = 1.0, iterations: int = 30) -> dict[str, Any]:
    """Test error of Bernoulli naive Bayes from m labels alone and with EM on the other images.

    For each m and seed the labelled set is the same random subset :func:`learning_curves` draws;
    every other training image joins without its label.

    Examples:
        >>> from ppdgm.data import load_dataset
        >>> r = semi_supervised(load_dataset("digits-binarized"), sizes=[20], seeds=1, iterations=2)
        >>> sorted({row["model"] for row in r["rows"]})
        ['naive Bayes', 'naive Bayes + EM']
    """
    x, y, xt, yt, classes = _features(dataset)
    if dataset.support != "binary":
        raise ValueError(f"dataset: semi-supervised naive Bayes here is Bernoulli and needs binary "
                         f"data; {dataset.name!r} is {dataset.support!r}")
    sizes = _check_sizes(sizes, x.shape[0] - 1)
    check_positive_int("seeds", seeds)
    rows, started = [], time.perf_counter()
    for seed in range(seeds):
        for m in sizes:
            order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
            idx, rest = order[:m], order[m:]
            nb = fit_naive_bayes(x[idx], y[idx], classes=classes, likelihood="bernoulli")
            rows.append({"model": "naive Bayes", "m": m, "seed": seed, "error": _error(nb, xt, yt)})
            trace = semi_supervised_em(nb, x[idx], y[idx], x[rest], iterations=iterations,
                                       unlabelled_weight=unlabelled_weight)
            rows.append({"model": "naive Bayes + EM", "m": m, "seed": seed,
                         "error": _error(nb, xt, yt), "em_iterations": len(trace) - 1})
    return {"experiment": "semi-supervised", "data": dataset.name, "sizes": sizes, "seeds": seeds,
            "unlabelled_weight": unlabelled_weight, "em_iterations": iterations,
            "test_points": xt.shape[0], "seconds": round(time.perf_counter() - started, 2),
            "rows": rows}


def summarize(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean test error and its standard error over seeds, per model and size.

    Examples:
        >>> summarize({"rows": [{"model": "a", "m": 5, "seed": s, "error": e}
        ...                     for s, e in enumerate([0.1, 0.3])]})
        [{'model': 'a', 'm': 5, 'error': 0.2, 'stderr': 0.1, 'seeds': 2}]
    """
    groups: dict[tuple[str, int], list[float]] = {}
    for row in result["rows"]:
        groups.setdefault((row["model"], row["m"]), []).append(row["error"])
    out = []
    for (model, m), errors in groups.items():
        se = statistics.stdev(errors) / math.sqrt(len(errors)) if len(errors) > 1 else float("nan")
        out.append({"model": model, "m": m, "error": round(statistics.fmean(errors), 6),
                    "stderr": round(se, 6), "seeds": len(errors)})
    return out
