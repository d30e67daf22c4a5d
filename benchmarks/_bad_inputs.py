"""Known-bad inputs to ppdgm's public API, one generator per kind of mistake.

Every case is a call that must fail with one clean error naming the argument at fault (a
``ValueError``/``TypeError``/``FileNotFoundError``/``FloatingPointError`` whose message starts
with ``"<argument>:"``); a call that returns is a bad input accepted silently, any other
exception a raw error. ``benchmarks/robustness.py`` counts them over thousands of draws and
``tests/test_robustness.py`` runs every case of every kind.

The kinds:

* ``sizes``: counts that cannot fit in memory (10^10 samples, 10^9 particles or runs).
* ``empty``: a batch of zero data points to every public method that takes data.
* ``support``: data outside a model's support (NaN, Inf, non-binary values for a Bernoulli
  model, values outside [0, 1] for quantized data) to every public method that scores data.
* ``arguments``: settings out of range or of the wrong type (EM's tolerances, Gibbs's switches,
  plate nestings, empty paths, too few points to seed a mixture, foreign sampling flags).
* ``checkpoints``: a checkpoint whose weights are non-finite or of another dtype.
* ``paths``: folders that are files or cannot be made, image names without a known format,
  strings where a model is expected.
"""

from __future__ import annotations

import inspect
import math
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

KINDS = ("sizes", "empty", "support", "arguments", "checkpoints", "paths")
CLEAN = (ValueError, TypeError, FileNotFoundError, FloatingPointError)


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    call: Callable[[], Any]


def outcome(case: Case) -> tuple[str, str]:
    """``("clean" | "accepted" | "raw", message)`` for one call."""
    try:
        case.call()
    except CLEAN as err:
        head = str(err).split(":", 1)[0].strip()
        if head and " " not in head.strip("-'\"") and ":" in str(err):
            return "clean", str(err)
        return "raw", f"{type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - what is being counted
        return "raw", f"{type(err).__name__}: {err}"
    return "accepted", ""


# ----------------------------------------------------------------------------- the models


@cache
def models() -> dict[str, Any]:
    """One small instance of every family, by name, with the event shape of its data and
    the support its scoring methods must insist on."""
    from ppdgm import (
        GAN,
        MADE,
        NADE,
        RBM,
        VAE,
        VAEGAN,
        AutoregressiveConfig,
        BernoulliMixture,
        DeepVAE,
        DeepVAEConfig,
        Diffusion,
        DiffusionConfig,
        GANConfig,
        GaussianMixture,
        LinearGaussian,
        LogisticRegression,
        LogisticRegressionConfig,
        MixtureConfig,
        NaiveBayes,
        NaiveBayesConfig,
        SBNConfig,
        SigmoidBeliefNet,
        VAEConfig,
        VAEGANConfig,
    )

    torch.manual_seed(0)
    return {
        "VAE": (VAE(VAEConfig(x_shape=(4,), z_dim=2, hidden=(8,))), (4,), "binary"),
        "VAE-gaussian": (VAE(VAEConfig(x_shape=(4,), z_dim=2, hidden=(8,), likelihood="gaussian")),
                         (4,), "real"),
        "DeepVAE": (DeepVAE(DeepVAEConfig(x_shape=(4,), z_dims=(2, 1), hidden=((4,), (4,)))),
                    (4,), "binary"),
        "SBN": (SigmoidBeliefNet(SBNConfig(x_shape=(4,), layers=(2,))), (4,), "binary"),
        "RBM": (RBM(visible=4, hidden=2), (4,), "binary"),
        "NADE": (NADE(AutoregressiveConfig(x_shape=(4,), hidden=(8,))), (4,), "binary"),
        "MADE": (MADE(AutoregressiveConfig(x_shape=(4,), hidden=(8,))), (4,), "binary"),
        "Diffusion": (Diffusion(DiffusionConfig(x_shape=(2,), timesteps=10, hidden=(8,))),
                      (2,), "real"),
        "Diffusion-quantized": (Diffusion(DiffusionConfig(x_shape=(2,), timesteps=10, hidden=(8,),
                                                          levels=2)), (2,), "unit"),
        "GAN": (GAN(GANConfig(x_shape=(2,), z_dim=2, hidden=(8,))), (2,), "real"),
        # Its likelihood lives in the discriminator's feature space: any real x is a datum.
        "VAEGAN": (VAEGAN(VAEGANConfig(x_shape=(4,), z_dim=2, hidden=(8,))), (4,), "real"),
        "GaussianMixture": (GaussianMixture(MixtureConfig(x_dim=2, components=2)), (2,), "real"),
        "BernoulliMixture": (BernoulliMixture(MixtureConfig(x_dim=4, components=2)), (4,),
                             "binary"),
        "LinearGaussian": (LinearGaussian(), None, "real"),
        "LogisticRegression": (LogisticRegression(LogisticRegressionConfig(x_dim=3)), (3,), "real"),
        "NaiveBayes": (NaiveBayes(NaiveBayesConfig(x_dim=4, classes=2)), (4,), "binary"),
    }


_DATA_ARGS = ("x", "v")
# Methods that take data but only move it between units (no score, no draw from it).
_TRANSFORMS = {"normalize", "denormalize", "to_data", "forward"}


def data_methods(model: Any) -> Iterator[tuple[str, Callable[..., Any], str]]:
    """The model's public methods whose first argument is data and whose others have defaults."""
    for name in sorted(dir(model)):
        if name.startswith("_") or name in _TRANSFORMS:
            continue
        method = getattr(type(model), name, None)
        if not callable(method) or isinstance(method, type):
            continue
        try:
            params = list(inspect.signature(method).parameters.values())[1:]
        except (TypeError, ValueError):
            continue
        if not params or params[0].name not in _DATA_ARGS:
            continue
        if any(p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params[1:]):
            continue
        yield name, getattr(model, name), params[0].name


def _event(model_name: str) -> tuple[int, ...]:
    model, event, _ = models()[model_name]
    return event if event is not None else (model.config.x_dim,)


# ----------------------------------------------------------------------------- the kinds


def empty_cases() -> Iterator[Case]:
    for model_name, (model, _, _) in models().items():
        event = _event(model_name)
        for name, method, _arg in data_methods(model):
            yield Case("empty", f"{model_name}.{name}(empty batch)",
                       lambda m=method, e=event: m(torch.zeros(0, *e)))
    from ppdgm import estimate_elbo, estimate_log_likelihood, variational_bound

    vae = models()["VAE"][0]
    yield Case("empty", "estimate_log_likelihood(empty)",
               lambda: estimate_log_likelihood(vae.model, vae.guide, torch.zeros(0, 4), num_samples=2))
    yield Case("empty", "estimate_elbo(empty)",
               lambda: estimate_elbo(vae.model, vae.guide, torch.zeros(0, 4)))
    diffusion = models()["Diffusion"][0]
    yield Case("empty", "variational_bound(empty)",
               lambda: variational_bound(diffusion, torch.zeros(0, 2)))
    from ppdgm import Gibbs, RBMGibbs, psis_khat, rbm_log_likelihood, to_inference_data

    rbm, sbn = models()["RBM"][0], models()["SBN"][0]
    yield Case("empty", "rbm_log_likelihood(empty)",
               lambda: rbm_log_likelihood(rbm, torch.zeros(0, 4), 0.0))
    yield Case("empty", "psis_khat(empty)", lambda: psis_khat(torch.zeros(0)))
    yield Case("empty", "to_inference_data(data=empty)",
               lambda: to_inference_data(model=vae.model, guide=vae.guide, data=torch.zeros(0, 4),
                                         num_samples=2))
    yield Case("empty", "Gibbs on an empty batch", lambda: _gibbs_run(Gibbs(sbn.model),
                                                                        torch.zeros(0, 4)))
    yield Case("empty", "RBMGibbs on an empty batch",
               lambda: _gibbs_run(RBMGibbs(rbm, observed_visible=True), torch.zeros(0, 4)))


def _outside(support: str, event: tuple[int, ...]) -> list[tuple[str, torch.Tensor]]:
    bad = [("nan", torch.full((3, *event), math.nan)), ("inf", torch.full((3, *event), math.inf))]
    if support == "binary":
        bad.append(("0.5", torch.full((3, *event), 0.5)))
    if support in ("binary", "unit"):
        bad.append(("2.0", torch.full((3, *event), 2.0)))
        bad.append(("-1.0", torch.full((3, *event), -1.0)))
    return bad


def support_cases() -> Iterator[Case]:
    for model_name, (model, _, support) in models().items():
        event = _event(model_name)
        for name, method, _arg in data_methods(model):
            for label, x in _outside(support, event):
                yield Case("support", f"{model_name}.{name}({label})",
                           lambda m=method, v=x: m(v))
    from ppdgm import Gibbs, RBMGibbs, rbm_log_likelihood, to_inference_data, variational_bound

    rbm = models()["RBM"][0]
    yield Case("support", "rbm_log_likelihood(0.5)",
               lambda: rbm_log_likelihood(rbm, torch.full((3, 4), 0.5), 0.0))
    quantized = models()["Diffusion-quantized"][0]
    yield Case("support", "variational_bound(quantized, 2.0)",
               lambda: variational_bound(quantized, torch.full((3, 2), 2.0)))
    sbn, vae = models()["SBN"][0], models()["VAE"][0]
    for label, x in _outside("binary", (4,)):
        yield Case("support", f"Gibbs on SBN data {label}",
                   lambda v=x: _gibbs_run(Gibbs(sbn.model), v))
        yield Case("support", f"RBMGibbs on data {label}",
                   lambda v=x: _gibbs_run(RBMGibbs(rbm, observed_visible=True), v))
        yield Case("support", f"to_inference_data(data={label})",
                   lambda v=x: to_inference_data(model=vae.model, guide=vae.guide, data=v,
                                                 num_samples=2))


def _gibbs_run(kernel: Any, x: torch.Tensor) -> Any:
    from pyro.infer import MCMC

    mcmc = MCMC(kernel, num_samples=2, warmup_steps=0, disable_progbar=True)
    mcmc.run(x)
    return mcmc


def size_cases() -> Iterator[Case]:
    from ppdgm import (
        ais_log_partition,
        ancestral_samples,
        ddim_sample,
        ddpm_sample,
        estimate_elbo,
        estimate_log_likelihood,
        load_dataset,
    )

    huge = (10**10, 10**12, 2**40)
    from ppdgm import Gibbs, to_inference_data

    vae, diffusion, rbm = models()["VAE"][0], models()["Diffusion"][0], models()["RBM"][0]
    sbn = models()["SBN"][0]
    for n in huge:
        for model_name in ("VAE", "SBN", "RBM", "NADE", "GAN", "GaussianMixture", "Diffusion",
                           "DeepVAE", "VAEGAN", "BernoulliMixture", "NaiveBayes", "LinearGaussian"):
            model = models()[model_name][0]
            yield Case("sizes", f"{model_name}.sample({n})", lambda m=model, k=n: m.sample(k))
        yield Case("sizes", f"estimate_log_likelihood(num_samples={n})",
                   lambda k=n: estimate_log_likelihood(vae.model, vae.guide, torch.ones(2, 4),
                                                       num_samples=k))
        yield Case("sizes", f"estimate_elbo(num_particles={n})",
                   lambda k=n: estimate_elbo(vae.model, vae.guide, torch.ones(2, 4),
                                             num_particles=k))
        yield Case("sizes", f"ddpm_sample({n})", lambda k=n: ddpm_sample(diffusion, k))
        yield Case("sizes", f"ddim_sample({n})", lambda k=n: ddim_sample(diffusion, k, steps=2))
        yield Case("sizes", f"ais_log_partition(num_runs={n})",
                   lambda k=n: ais_log_partition(rbm, num_runs=k, betas=2))
        yield Case("sizes", f"ancestral_samples(num_samples={n})",
                   lambda k=n: ancestral_samples(vae.model, k, None, num_samples=2))
        yield Case("sizes", f"load_dataset(ring8, num_train={n})",
                   lambda k=n: load_dataset("ring8", num_train=k))
        yield Case("sizes", f"Gibbs(chains={n})",
                   lambda k=n: _gibbs_run(Gibbs(sbn.model, chains=k), torch.ones(3, 4)))
        yield Case("sizes", f"to_inference_data(num_samples={n})",
                   lambda k=n: to_inference_data(model=vae.model, guide=vae.guide,
                                                 data=torch.ones(2, 4), num_samples=k))
        yield Case("sizes", f"to_inference_data(chains={n})",
                   lambda k=n: to_inference_data(model=vae.model, guide=vae.guide,
                                                 data=torch.ones(2, 4), num_samples=2, chains=k))


def argument_cases() -> Iterator[Case]:
    from ppdgm import IWAE, Gibbs, TrainConfig, estimate_elbo, expectation_maximization
    from ppdgm.inference.importance import log_weights

    mixture = models()["GaussianMixture"][0]
    x = torch.randn(20, 2)
    for field, values in {"tol": (-1.0, math.nan, math.inf, "x"),
                          "lr": (0.0, -0.1, math.nan, math.inf, "x", True),
                          "gradient_steps": (0, -3, 2.5, None),
                          "iterations": (0, -1, 1.5)}.items():
        for value in values:
            settings = {"m_step": "gradient"} if field in ("lr", "gradient_steps") else {}
            settings = {"iterations": 2, **settings, field: value}
            yield Case("arguments", f"expectation_maximization({field}={value!r})",
                       lambda s=settings: expectation_maximization(mixture, x, **s))
    sbn = models()["SBN"][0]
    for value in ("yes", "False", 1, None, 0.5):
        yield Case("arguments", f"Gibbs(metropolized={value!r})",
                   lambda v=value: Gibbs(sbn.model, metropolized=v))
    vae = models()["VAE"][0]
    for value in (-1, -5, 1.5, "2"):
        yield Case("arguments", f"IWAE(max_plate_nesting={value!r})",
                   lambda v=value: IWAE(num_particles=2, max_plate_nesting=v))
        yield Case("arguments", f"log_weights(max_plate_nesting={value!r})",
                   lambda v=value: log_weights(vae.model, vae.guide, torch.ones(2, 4),
                                               max_plate_nesting=v))
    for field in ("out_dir", "resume", "tensorboard"):
        for value in ("", "   "):
            yield Case("arguments", f"TrainConfig({field}={value!r})",
                       lambda f=field, v=value: TrainConfig(device="cpu", **{f: v}))
    few = models()["GaussianMixture"][0]
    yield Case("arguments", "GaussianMixture.initialize(1 point, 2 components)",
               lambda: few.initialize(torch.randn(1, 2)))
    for value in (0, -2, 1.5):
        yield Case("arguments", f"estimate_elbo(num_particles={value!r})",
                   lambda v=value: estimate_elbo(vae.model, vae.guide, torch.ones(2, 4),
                                                 num_particles=v))


def _setting_calls() -> dict[str, tuple[Callable[..., Any], dict[str, tuple[Any, ...]]]]:
    """Public constructors and functions, each with the values of each argument that are wrong
    (the others left at working defaults)."""
    import ppdgm
    from ppdgm import load_dataset

    vae, rbm, diffusion = models()["VAE"][0], models()["RBM"][0], models()["Diffusion"][0]
    sbn, nb = models()["SBN"][0], models()["NaiveBayes"][0]
    counts = (0, -1, 1.5, "3", True)
    reals = (math.nan, math.inf, "x", None)
    flags = ("yes", 1, None)
    ring8 = load_dataset("ring8", num_train=50)
    x4 = (torch.rand(6, 4) < 0.5).float()
    return {
        "IWAE": (ppdgm.IWAE, {"num_particles": counts, "data_plate": ("", 3)}),
        "VIMCO": (ppdgm.VIMCO, {"num_particles": (*counts, 1), "data_plate": ("", None)}),
        "NVIL": (ppdgm.NVIL, {"decay": (-0.1, 1.5, *reals), "normalize": flags}),
        "ReweightedWakeSleep": (ppdgm.ReweightedWakeSleep, {
            "num_particles": counts, "guide_update": ("x", 3), "data_plate": ("",)}),
        "ContrastiveDivergence": (ppdgm.ContrastiveDivergence, {
            "k": counts, "persistent": flags, "num_chains": (0, -2, "4")}),
        "AdversarialLoss": (ppdgm.AdversarialLoss, {
            "kind": ("x", 3), "gp_weight": (-1.0, *reals), "pack": counts}),
        "VAEGANLoss": (ppdgm.VAEGANLoss, {
            "kind": ("x", 3), "gamma": (-1.0, *reals), "gp_weight": (-1.0, math.nan),
            "analytic_kl": flags}),
        "Gibbs": (lambda **k: ppdgm.Gibbs(sbn.model, **k), {
            "sites": ("z1", [3]), "chains": counts, "compile": ("x", 3)}),
        "HMCGibbs": (lambda **k: ppdgm.HMCGibbs(sbn.model, **k), {
            "kernel": ("x", 3), "discrete_sites": ("z1", [3])}),
        "RBMGibbs": (lambda **k: ppdgm.RBMGibbs(rbm, **k), {
            "chains": counts, "observed_visible": flags}),
        "Player": (lambda **k: ppdgm.Player(**{"name": "p", **k}), {
            "name": ("", 3, None), "owns": (3, None), "every": counts, "repeats": counts}),
        "ais_log_partition": (lambda **k: ppdgm.ais_log_partition(rbm, **{"betas": 2, **k}), {
            "num_runs": counts, "betas": (0, -3, "x", [0.0, 1.0], torch.tensor([0.5, 1.0])),
            "base_visible_bias": (torch.zeros(3), "x"), "seed": (1.5, "1"),
            "compile": ("x", 1)}),
        "ddpm_sample": (lambda **k: ppdgm.ddpm_sample(diffusion, **{"n": 2, **k}), {
            "n": counts, "clip": flags[:2], "seed": (1.5, "1"), "on_step": (3, "x")}),
        "ddim_sample": (lambda **k: ppdgm.ddim_sample(diffusion, **{"n": 2, "steps": 2, **k}), {
            "steps": (*counts, 10**6), "eta": (-1.0, *reals)}),
        "sample_diffusion": (lambda **k: ppdgm.sample_diffusion(diffusion, **{"n": 2, **k}), {
            "sampler": ("x", 3, ""), "steps": (0, -1, 1.5)}),
        "mode_coverage": (lambda **k: ppdgm.mode_coverage(**{
            "samples": torch.randn(20, 2), "centres": ring8.centres, "std": 0.05, **k}), {
            "std": (0.0, -1.0, *reals), "threshold": (0.0, -1.0, *reals),
            "weights": ([1.0], "x"), "samples": (torch.randn(20, 3), "x")}),
        "psis_khat": (lambda **k: ppdgm.psis_khat(**{"log_weights": torch.randn(50), **k}), {
            "reff": (0.0, -1.0, *reals), "log_weights": ("x", torch.full((50,), math.nan))}),
        "estimate_elbo": (lambda **k: ppdgm.estimate_elbo(vae.model, vae.guide, x4, **k), {
            "num_particles": counts, "batch_size": counts}),
        "estimate_log_likelihood": (lambda **k: ppdgm.estimate_log_likelihood(
            vae.model, vae.guide, x4, **{"num_samples": 4, **k}), {
            "num_samples": counts, "batch_size": counts, "max_draws": counts,
            "seed": (1.5, "1")}),
        "rbm_log_likelihood": (lambda **k: ppdgm.rbm_log_likelihood(rbm, x4, **{"log_z": 1.0, **k}),
                               {"log_z": reals, "batch_size": counts}),
        "base_rate_visible_bias": (lambda **k: ppdgm.base_rate_visible_bias(x4, **k), {
            "pseudocount": (0.0, -1.0, *reals)}),
        "build_objective": (lambda **k: ppdgm.build_objective(**{"name": "elbo", **k}), {
            "name": ("x", 3, ""), "k": counts}),
        "build_player_objective": (lambda **k: ppdgm.build_player_objective(**{"name": "rws", **k}), {
            "name": ("x", 3), "k": counts, "lr": (0.0, -1.0, *reals)}),
        "semi_supervised_em": (lambda **k: ppdgm.semi_supervised_em(
            nb, x4[:3], torch.tensor([0, 1, 0]), x4[3:], **k), {
            "iterations": counts, "unlabelled_weight": (-1.0, *reals), "tol": (-1.0, *reals)}),
        "fit_logistic_regression": (lambda **k: ppdgm.fit_logistic_regression(
            torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 1]), **{"classes": 2, "steps": 2, **k}),
            {"classes": (0, 1, -2, 1.5), "steps": counts, "lr": (0.0, -1.0, *reals),
             "seed": (1.5, "1")}),
        "coverage_for_dataset": (lambda **k: ppdgm.coverage_for_dataset(
            torch.randn(20, 2), **{"name": "ring8", **k}), {
            "name": ("x", 3), "threshold": (0.0, -1.0, *reals)}),
        "adam": (lambda **k: ppdgm.adam(**k), {"lr": (0.0, -1.0, *reals)}),
        "build_model": (lambda **k: ppdgm.build_model(**{"name": "vae", "config": {}, **k}), {
            "name": ("x", 3), "config": (3, "x", {"z_dim": -1}, {"nope": 1})}),
        "sbc": (lambda **k: ppdgm.sbc(vae.model, vae.guide, **{
            "num_simulations": 2, "num_draws": 3, "kwargs": {"num_samples": 1}, **k}), {
            "num_simulations": (*counts, 10**9), "num_draws": (*counts, 10**9),
            "alpha": (0.0, 1.0, -0.5, *reals), "seed": (1.5, "1", -1), "args": ([1], "x"),
            "kwargs": ("x", 3)}),
        "tarp": (lambda **k: ppdgm.tarp(vae.model, vae.guide, **{
            "num_simulations": 2, "num_draws": 3, "kwargs": {"num_samples": 1}, **k}), {
            "num_simulations": (*counts, 10**9), "num_draws": (*counts, 10**9),
            "alpha": (0.0, 1.0, *reals), "seed": (1.5, "1", -1), "sampler": ("x",)}),
        "vsbc": (lambda **k: ppdgm.vsbc(vae.model, vae.guide, **{
            "num_simulations": 2, "num_draws": 3, "kwargs": {"num_samples": 1}, **k}), {
            "num_simulations": (*counts, 10**9), "num_draws": (*counts, 10**9),
            "alpha": (0.0, 1.0, *reals), "seed": (1.5, "1", -1), "sampler": ("x",)}),
        "bdmc": (lambda **k: ppdgm.bdmc(vae.model, **{
            "num_steps": 2, "num_chains": 2, "kwargs": {"num_samples": 1}, **k}), {
            "num_steps": (*counts, 10**9), "num_chains": (*counts, 10**9),
            "leapfrog_steps": (*counts, 10**9), "step_size": (0.0, -1.0, *reals),
            "target_accept": (0.0, 1.0, *reals), "seed": (1.5, "1", -1), "args": ([1], "x"),
            "kwargs": ("x", 3), "guide": ("x", 3)}),
        "decoder_log_likelihood": (lambda **k: ppdgm.decoder_log_likelihood(**{
            "decoder": lambda z: z, "x": torch.zeros(3, 2), "z_dim": 2, "scale": 0.5,
            "num_steps": 2, "num_chains": 2, **k}), {
            "decoder": ("x", 3), "x": ("x", [1.0], torch.zeros(())), "z_dim": counts,
            "scale": (0.0, -1.0, *reals), "num_steps": (*counts, 10**9),
            "num_chains": (*counts, 10**9), "check_points": (-1, 1.5, "3")}),
        "ecdf_uniformity_test": (lambda **k: ppdgm.ecdf_uniformity_test(**{
            "ranks": np.arange(5), "num_draws": 4, **k}), {
            "ranks": (np.arange(6), np.array([]), np.ones((2, 2), dtype=int), np.array([0.5]),
                      np.array([-1]), "x"),
            "num_draws": (*counts, 10**9), "alpha": (0.0, 1.0, *reals),
            "simulations": (*counts, 10**9)}),
        "load_checkpoint": (lambda **k: ppdgm.load_checkpoint(**k), {
            "path": ("", 3, "/nonexistent/c.pt", "/proc", tempfile.gettempdir())}),
    }


def setting_cases() -> Iterator[Case]:
    for name, (call, wrong) in _setting_calls().items():
        for argument, values in wrong.items():
            for value in values:
                yield Case("arguments", f"{name}({argument}={value!r})",
                           lambda c=call, a=argument, v=value: c(**{a: v}))


def checkpoint_cases() -> Iterator[Case]:
    from ppdgm.recipes.checkpoints import load_trained_model

    for poison in ("nan", "inf", "-inf", "float64", "float16", "int64"):
        yield Case("checkpoints", f"load_trained_model(weights {poison})",
                   lambda p=poison: load_trained_model(_poisoned_checkpoint(p), device="cpu"))


@cache
def _trained_checkpoint() -> Path:
    from ppdgm.cli import main

    out = Path(tempfile.mkdtemp()) / "run"
    code = main(["fit", "vae", "--data", "bars-and-stripes", "--epochs", "1", "--hidden", "8",
                 "--z-dim", "2", "--no-progress", "--device", "cpu", "--out", str(out)])
    assert code == 0
    return out / "checkpoint.pt"


def _poisoned_checkpoint(poison: str) -> Path:
    from ppdgm import load_checkpoint, save_checkpoint

    state = load_checkpoint(_trained_checkpoint())
    weights = state["modules"][0]
    name = next(n for n, v in weights.items() if v.is_floating_point() and v.dim() == 2)
    value = weights[name].clone()
    weights[name] = {"nan": lambda: value.fill_(math.nan), "inf": lambda: value.fill_(math.inf),
                     "-inf": lambda: value.fill_(-math.inf), "float64": value.double,
                     "float16": value.half, "int64": value.long}[poison]()
    path = Path(tempfile.mkdtemp()) / "checkpoint.pt"
    save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version")}, path)
    return path


def path_cases() -> Iterator[Case]:
    from pyro.infer import Trace_ELBO

    from ppdgm import (
        Engine,
        History,
        TrainConfig,
        estimate_log_likelihood,
        save_checkpoint,
        to_inference_data,
    )
    from ppdgm.diagnostics import save_image_grid

    a_file = Path(tempfile.mkdtemp()) / "a-file"
    a_file.write_text("not a folder")
    for folder in (a_file, a_file / "below", Path("/proc/ppdgm-run")):
        yield Case("paths", f"TrainConfig(out_dir={str(folder)!r})",
                   lambda f=folder: _fit_into(TrainConfig(device="cpu", progress=False, epochs=1,
                                                          batch_size=4, out_dir=str(f))))
        yield Case("paths", f"save_image_grid(into {str(folder)!r})",
                   lambda f=folder: save_image_grid(torch.rand(4, 1, 2, 2), f / "grid.png"))
        yield Case("paths", f"save_checkpoint(into {str(folder)!r})",
                   lambda f=folder: save_checkpoint({"w": torch.ones(1)}, f / "c.pt"))
        yield Case("paths", f"History.save({str(folder)!r})",
                   lambda f=folder: History().save(f / "run"))
    yield Case("paths", "save_checkpoint(a folder)",
               lambda: save_checkpoint({"w": torch.ones(1)}, tempfile.mkdtemp()))
    for name in ("samples", "samples.gif", "samples.txt", "grid."):
        folder = Path(tempfile.mkdtemp())
        yield Case("paths", f"save_image_grid({name!r})",
                   lambda p=folder / name: save_image_grid(torch.rand(4, 1, 2, 2), p))
    for value in ("vae", 3, None):
        yield Case("paths", f"estimate_log_likelihood(model={value!r})",
                   lambda v=value: estimate_log_likelihood(v, v, torch.ones(2, 4), num_samples=2))
        yield Case("paths", f"Engine(model={value!r})",
                   lambda v=value: Engine(v, v, Trace_ELBO()))
        yield Case("paths", f"to_inference_data({value!r})",
                   lambda v=value: to_inference_data(v) if v is not None else
                   to_inference_data(model=v, data=torch.ones(2, 4)))


def _fit_into(config: Any) -> Any:
    from pyro.infer import Trace_ELBO

    from ppdgm import VAE, Engine, VAEConfig

    vae = VAE(VAEConfig(x_shape=(4,), z_dim=2, hidden=(4,)))
    return Engine(vae.model, vae.guide, Trace_ELBO(), config=config).fit(torch.ones(8, 4))


GENERATORS: dict[str, Callable[[], Iterator[Case]]] = {
    "sizes": size_cases, "empty": empty_cases, "support": support_cases,
    "arguments": lambda: _arguments(), "checkpoints": checkpoint_cases, "paths": path_cases}


def all_cases(kinds: tuple[str, ...] = KINDS) -> list[Case]:
    return [case for kind in kinds for case in GENERATORS[kind]()]


def _arguments() -> Iterator[Case]:
    yield from argument_cases()
    yield from setting_cases()


def draw(cases: list[Case], n: int, seed: int) -> list[Case]:
    """``n`` cases drawn with replacement, every case at least once when ``n`` allows."""
    rng = random.Random(seed)
    chosen = list(cases) if n >= len(cases) else rng.sample(cases, n)
    return chosen + [rng.choice(cases) for _ in range(n - len(chosen))]
