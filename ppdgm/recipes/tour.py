"""``ppdgm tour``: the lecture in one run, written as one HTML page with a figure per topic.

Every topic is trained and measured in this run, on the bundled data (the digits, bars and
stripes, ring8), at budgets small enough that the whole tour takes a few minutes on two CPU
cores; the sentences under each figure quote this run's numbers. Budgets this small show each
idea, not each method at its best: the benchmarks do that.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._files import atomic_write_text, make_folder
from .._validation import check_positive_int
from ..data import load_dataset
from ..diagnostics import plot_samples_over_density
from ..diagnostics.classifier_figures import plot_error_curves
from ..diagnostics.figures import plot_series
from ..inference import TrainConfig
from ..inference.coverage import coverage_for_dataset
from ..inference.sampling import sample_diffusion
from .autoregressive import fit_autoregressive
from .checkpoints import load_trained_model
from .compare import compare_models
from .generative_discriminative import learning_curves, semi_supervised, summarize
from .mixture import fit_mixture
from .rbm import fit_rbm
from .run import RunResult
from .sbn import fit_sbn
from .vae import fit_vae

__all__ = ["Section", "TOPICS", "run_tour"]


@dataclass
class Section:
    """One topic of the page: its title, the figures (paths under the tour's folder) and text."""

    title: str
    figures: list[Path]
    text: list[str]
    numbers: dict[str, Any] = field(default_factory=dict)


def _train(out: Path, name: str, seed: int, **kwargs: Any) -> TrainConfig:
    return TrainConfig(out_dir=str(out / name), seed=seed, device="cpu", progress=False, **kwargs)


def _generative_discriminative(out: Path, seed: int) -> Section:
    digits = load_dataset("digits-binarized", seed=seed)
    curves = learning_curves(digits, sizes=[10, 30, 100, 300, 1500], seeds=3, steps=150)
    em = semi_supervised(digits, sizes=[10, 30, 100, 300], seeds=3, iterations=15)
    figure = plot_error_curves({"naive Bayes against logistic regression": summarize(curves),
                                "naive Bayes with unlabelled digits (EM)": summarize(em)},
                               out / "generative_discriminative.png")
    cell = {(r["model"], r["m"]): r["error"] for r in summarize(curves) + summarize(em)}
    return Section("Generative versus discriminative", [figure], [
        f"Naive Bayes learns p(x, y) and classifies by Bayes' rule (Pyro enumerates the label); "
        f"logistic regression learns p(y | x) alone. With all 1500 labels their test errors are "
        f"{cell['naive Bayes', 1500]:.1%} and {cell['logistic regression', 1500]:.1%}: naive "
        f"Bayes levels off early at a higher error, the discriminative model keeps improving.",
        f"Only the generative model can use images without labels: with 10 labels and EM on the "
        f"other digits its error goes from {cell['naive Bayes', 10]:.1%} to "
        f"{cell['naive Bayes + EM', 10]:.1%} (with 300 labels: {cell['naive Bayes', 300]:.1%} "
        f"and {cell['naive Bayes + EM', 300]:.1%})."], {"errors": {f"{k[0]}, m={k[1]}": v
                                                        for k, v in cell.items()}})


def _helmholtz(out: Path, seed: int) -> Section:
    data = load_dataset("bars-and-stripes", seed=seed)
    run = fit_sbn(data, _train(out, "sbn-wake-sleep", seed, epochs=200, batch_size=10, lr=0.03),
                  layers=(8,), objective="wake-sleep", figures=True, num_samples=32)
    m = run.metrics
    return Section("The sigmoid belief net and the Helmholtz machine (wake-sleep)",
                   [run.files["loss_curve"], run.files["samples"]], [
        "A sigmoid belief net (8 binary causes above 16 pixels) is the model; a recognition net "
        "is the guide. Wake-sleep trains the model on the guide's draws (wake) and the guide on "
        "the model's dreams (sleep): two players, two losses.",
        f"Its exact log p(x), summed over all 2^8 causes, is {m['test_log_px_exact']:.2f} nats "
        f"per test image (importance-sampled: {m['test_log_px']['mean']:.2f}); the 30 bars and "
        f"stripes images have log p(x) = {-torch.log(torch.tensor(30.0)).item():.2f} under the "
        "uniform distribution over them."], {"test_log_px_exact": m["test_log_px_exact"]})


def _em(out: Path, seed: int) -> Section:
    data = load_dataset("digits-binarized", seed=seed)
    run = fit_mixture(data, out / "mixture", components=10, iterations=40, seed=seed, figures=True)
    trace = run.metrics["log_likelihood_trace"]
    curve = plot_series(trace, out / "mixture" / "log_likelihood.png", xlabel="EM iteration",
                        ylabel="mean log p(x), nats", title="EM never lowers the likelihood")
    return Section("EM for a mixture of Bernoullis", [curve, run.files["components"]], [
        "The E-step is Pyro's enumeration of each image's component; the M-step is the closed "
        "form. Each iteration cannot lower the exact log-likelihood.",
        f"Mean log p(x) went from {trace[0]:.2f} to {trace[-1]:.2f} nats in "
        f"{len(trace) - 1} iterations (test: {run.metrics['test_log_px_exact']:.2f}); the "
        "components are digit prototypes found without labels."], {"trace": trace})


def _sampling(out: Path, seed: int) -> Section:
    data = load_dataset("digits-binarized", seed=seed)
    made = fit_autoregressive(data, _train(out, "made", seed, epochs=40, batch_size=50, lr=3e-3),
                              architecture="made", hidden=(256,), figures=True)
    rbm = fit_rbm(data, _train(out, "rbm", seed, epochs=30, batch_size=20, lr=0.05), hidden=64,
                  cd_k=1, ais_runs=20, ais_betas=2000, figures=True, sample_steps=500)
    return Section("Ancestral sampling and Gibbs sampling",
                   [made.files["samples"], rbm.files["samples"]], [
        "Left: a MADE, an autoregressive model p(x) = prod_d p(x_d | x_<d), sampled ancestrally, "
        f"one pixel after another; its exact test log p(x) is "
        f"{made.metrics['test_log_px_exact']['mean']:.2f} nats.",
        "Right: an RBM, whose p(x) has no order to follow, sampled by block Gibbs (500 sweeps "
        f"alternating p(h | v) and p(v | h)); its AIS test log p(x) is "
        f"{rbm.metrics['test_log_px']['mean']:.2f} nats."],
        {"made_test_log_px": made.metrics["test_log_px_exact"]["mean"],
         "rbm_test_log_px": rbm.metrics["test_log_px"]["mean"]})


def _vae(out: Path, seed: int) -> Section:
    data = load_dataset("digits-binarized", seed=seed)
    run = fit_vae(data, _train(out, "vae", seed, epochs=30, batch_size=64, lr=2e-3),
                  model_overrides={"z_dim": 8, "hidden": (128,)}, figures=True)
    m = run.metrics
    return Section("The variational autoencoder", [run.files["loss_curve"], run.files["samples"]], [
        "The decoder p(x | z) is the model, the encoder q(z | x) the guide; the ELBO is "
        "estimated with one reparameterized draw of z per image, so its gradient flows through "
        "the sample.",
        f"Test ELBO {m['test_elbo_nats']['mean']:.2f} ± {m['test_elbo_nats']['stderr']:.2f} "
        f"nats per image after {m['steps']} steps; the samples are z ~ p(z) decoded "
        "(pixel probabilities)."], {"test_elbo": m["test_elbo_nats"]["mean"]})


def _modes(out: Path, seed: int) -> Section:
    models = {"vae": 40, "gan": 20, "diffusion": 10}  # epochs of 10000 points each
    run = compare_models("ring8", out / "compare", models=list(models), seed=seed,
                         num_samples=1000, num_train=10_000, epochs=models, device="cpu")
    rows = run.metrics["models"]
    found = "; ".join(f"{rows[m]['label']} {rows[m]['modes_captured']}/{rows[m]['num_modes']} "
                      f"modes, {rows[m]['high_quality_percent']:.0f}% of samples near one"
                      for m in models)
    return Section("The GAN as a two-player program, and mode covering versus dropping",
                   [run.files["figure"]], [
        "The GAN's discriminator is a guide q(y | x) over 'real or generated', the generator the "
        "model; their adversarial losses are custom Pyro losses, taking turns on each batch.",
        f"On ring8 (8 Gaussians on a circle), 1000 honest draws of each model: {found} (within "
        "3 standard deviations). A model trained by likelihood pays for every training point it "
        "misses, so it covers every mode and spreads mass between them; the GAN only has to fool "
        "its discriminator, so its samples are sharp, and nothing stops it from dropping a mode "
        "(ppdgm compare measures that, PacGAN included, at larger budgets)."],
        {m: {"modes": rows[m]["modes_captured"], "near_a_mode_percent":
             rows[m]["high_quality_percent"]} for m in models})


def _diffusion(out: Path, seed: int) -> Section:
    data = load_dataset("ring8", seed=seed, num_train=10_000)
    model = load_trained_model(out / "compare" / "diffusion" / "checkpoint.pt", device="cpu")
    samples, coverage, seconds = {}, {}, {}
    for name, options in (("DDPM", {"sampler": "ddpm"}), ("DDIM, 20 steps",
                                                          {"sampler": "ddim", "steps": 20})):
        started = time.perf_counter()
        samples[name] = sample_diffusion(model, 1000, seed=seed, **options)
        seconds[name] = time.perf_counter() - started
        coverage[name] = coverage_for_dataset(samples[name], "ring8")
    figure = plot_samples_over_density(samples, data.centres, data.scale, out / "ddpm_ddim.png",
                                       title="One diffusion model, two reverse samplers",
                                       coverage=coverage)
    steps = model.config.timesteps
    return Section("Diffusion: DDPM against DDIM", [figure], [
        f"The forward chain (noising, T = {steps}) is a fixed guide; the reverse chain is the "
        "model, trained by predicting the noise. The same network samples by DDPM's T random "
        "steps or by DDIM's few deterministic ones.",
        f"DDPM: {coverage['DDPM'].modes_captured}/8 modes in {seconds['DDPM']:.1f} s; "
        f"DDIM with 20 steps: {coverage['DDIM, 20 steps'].modes_captured}/8 in "
        f"{seconds['DDIM, 20 steps']:.1f} s."],
        {name: c.modes_captured for name, c in coverage.items()})


#: The topics in the lecture's order; each trains what it shows, in ``out/<its folder>``.
TOPICS: dict[str, Callable[[Path, int], Section]] = {
    "generative-discriminative": _generative_discriminative,
    "helmholtz": _helmholtz,
    "em": _em,
    "sampling": _sampling,
    "vae": _vae,
    "modes": _modes,
    "diffusion": _diffusion,  # samples the diffusion model "modes" trained
}


def run_tour(out: str | Path = "runs/tour", *, seed: int = 0, topics: list[str] | None = None,
             threads: int = 1) -> RunResult:
    """Run every topic (or ``topics``) and write ``out/index.html`` and ``out/tour.json``.

    Everything runs on the CPU with ``threads`` torch threads (restored afterwards): the tour's
    networks are small enough that one thread is as fast as two, and much faster than two on a
    machine whose other core is busy.

    Examples:
        >>> import tempfile
        >>> r = run_tour(tempfile.mkdtemp(), topics=["em"])
        >>> sorted(r.files)
        ['index', 'numbers']
    """
    chosen = list(TOPICS) if topics is None else topics
    unknown = [t for t in chosen if t not in TOPICS]
    if unknown or not chosen:
        raise ValueError(f"topics: expected some of {', '.join(TOPICS)}, got {topics!r}")
    if "diffusion" in chosen and "modes" not in chosen:
        raise ValueError("topics: 'diffusion' samples the model that 'modes' trains; add 'modes'")
    check_positive_int("threads", threads)
    out = make_folder("out", out)
    torch.manual_seed(seed)
    sections, seconds = [], {}
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for name in chosen:
            started = time.perf_counter()
            sections.append(TOPICS[name](out, seed))
            seconds[name] = round(time.perf_counter() - started, 1)
    finally:
        torch.set_num_threads(before)
    files = {"index": atomic_write_text(out / "index.html", _page(sections, out, seconds)),
             "numbers": atomic_write_text(out / "tour.json", json.dumps(
                 {"seconds": seconds, "numbers": {s.title: s.numbers for s in sections}},
                 indent=2, default=float) + "\n")}
    return RunResult(out, files, {"seconds": seconds, "topics": chosen})


def _page(sections: list[Section], out: Path, seconds: dict[str, float]) -> str:
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>ppdgm tour</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
             "line-height:1.5}img{max-width:100%;margin:.5em 0;border:1px solid #ddd}"
             "section{margin-bottom:3em}.figs{display:flex;gap:1em;flex-wrap:wrap;"
             "align-items:flex-start}.figs img{width:48%;image-rendering:pixelated}"
             ".one img{width:auto;image-rendering:auto}</style></head><body>",
             "<h1>Deep generative models as probabilistic programs</h1>",
             f"<p>Every figure and number on this page comes from one run of <code>ppdgm tour"
             f"</code> ({sum(seconds.values()):.0f} s on this machine), on small budgets.</p>"]
    for i, s in enumerate(sections, 1):
        kind = "figs" if len(s.figures) > 1 else "figs one"
        images = "".join(f'<img src="{html.escape(p.relative_to(out).as_posix())}" '
                         f'alt="{html.escape(s.title)}, figure {j}">'
                         for j, p in enumerate(s.figures, 1))
        text = "".join(f"<p>{html.escape(t)}</p>" for t in s.text)
        parts.append(f'<section id="topic-{i}"><h2>{i}. {html.escape(s.title)}</h2>'
                     f'<div class="{kind}">{images}</div>{text}</section>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
