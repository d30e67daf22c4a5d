"""``ppdgm diagnose``: ArviZ diagnostics of a trained checkpoint's guide on a few data points.

The guide q(z | x) of a trained model is drawn for the first ``num_data`` points of a split
(``chains`` x ``num_samples`` independent draws each, see
:func:`ppdgm.diagnostics.from_guide`); the run reports ``arviz.summary`` of a few latent
coordinates and the PSIS k-hat of the guide's importance weights per data point, and writes
``inference_data.nc``, ``summary.csv``, ``diagnose.json`` and trace/rank/pair plots.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._files import atomic_write_text, make_folder
from .._validation import check_choice, check_positive_int
from ..device import resolve_device
from ..diagnostics import KHAT_THRESHOLD, from_guide, save_mcmc_plots
from ..diagnostics.arviz_api import summary
from ..diagnostics.mcmc_plots import select_elements
from .checkpoints import OpenedCheckpoint, open_checkpoint, require_likelihood
from .run import RunResult

__all__ = ["DIAGNOSE_SAMPLERS", "diagnose_checkpoint", "format_diagnosis"]

#: Where ``ppdgm diagnose`` takes its posterior draws: the trained guide, or an MCMC kernel on
#: the exact posterior of a model whose latents are discrete.
DIAGNOSE_SAMPLERS = ("guide", "gibbs", "gwg", "dmala")

#: Guide draws each latent is ranked among in ``--calibration`` (ranks on 0..99).
CALIBRATION_DRAWS = 99
#: The most simulations ``--calibration`` runs (each costs a few passes through the programs).
MAX_SIMULATIONS = 100_000
#: The columns of ``arviz.summary`` that the report shows.
SUMMARY_COLUMNS = ["mean", "sd", "ess_bulk", "ess_tail", "r_hat"]


def diagnose_checkpoint(checkpoint: str | Path | OpenedCheckpoint, *, data: str | None = None,
                        data_path: str | None = None, data_root: str | None = None,
                        split: str = "test", num_data: int = 8, num_samples: int = 200,
                        chains: int = 4, elements: int = 4, seed: int = 0, device: str = "auto",
                        out: str | Path | None = None, amortization: int = 0,
                        calibration: int = 0, sampler: str = "guide") -> RunResult:
    """Draw a checkpoint's guide on ``num_data`` points of ``split`` and write its diagnostics.

    ``data`` defaults to the dataset the checkpoint was trained on; ``out`` to a ``diagnose``
    folder beside the checkpoint. ``elements`` latent coordinates are summarized and plotted.
    The metrics hold the summary (``summary``), each point's k-hat (``pareto_k``), how many
    exceed :data:`~ppdgm.diagnostics.KHAT_THRESHOLD` (``pareto_k_bad``) and the
    importance-sampled log p(x) of each point from the same draws (``importance_log_px``).
    ``amortization=N`` (VAEs only) also runs NUTS on the true posterior of the first N points
    and measures the encoder against it (:func:`ppdgm.diagnostics.amortization.amortization_gap`),
    writing ``amortization_gap.png`` and the gaps under ``amortization`` in the metrics.
    ``calibration=N`` runs simulation-based calibration of the guide
    (:func:`ppdgm.diagnostics.calibration.sbc`): N data points simulated from the model, each
    latent ranked among 99 draws of the guide given it, and a verdict and p-value per site
    under ``calibration`` in the metrics, with ArviZ's ECDF figure of the ranks in
    ``calibration.png``. ``sampler`` other than ``"guide"`` (one of :data:`DIAGNOSE_SAMPLERS`)
    draws the exact posterior p(z | x) by that MCMC kernel instead (vectorized ``chains``,
    ``num_samples`` draws after as many warm-up steps) for a model whose latents are all
    discrete (an SBN); the metrics then hold the kernel's acceptance and flip rates instead of
    the guide's k-hat. Prints nothing (see :func:`format_diagnosis`).

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> from ppdgm.inference import TrainConfig
        >>> from ppdgm.recipes.vae import fit_vae
        >>> run = tempfile.mkdtemp()
        >>> cfg = TrainConfig(epochs=1, batch_size=10, device="cpu", progress=False, out_dir=run)
        >>> _ = fit_vae(load_dataset("bars-and-stripes"), cfg, model_overrides={"z_dim": 2, "hidden": (8,)})
        >>> result = diagnose_checkpoint(Path(run) / "checkpoint.pt", num_data=2, num_samples=30,
        ...                              chains=2, device="cpu")
        >>> sorted(result.files)
        ['inference_data', 'json', 'pair', 'rank', 'summary', 'trace']
    """
    from ..data import load_dataset

    for name, value in (("num_data", num_data), ("num_samples", num_samples),
                        ("chains", chains), ("elements", elements)):
        check_positive_int(name, value)
    check_positive_int("calibration", calibration, minimum=0, maximum=MAX_SIMULATIONS)
    check_choice("split", split, ("train", "valid", "test"))
    started = time.perf_counter()
    opened = open_checkpoint(checkpoint, device)
    model = opened.model
    require_likelihood(model, "diagnose")
    name = data or opened.data
    if name is None:
        raise ValueError("data: the checkpoint does not record its dataset; pass --data")
    dataset = load_dataset(name, path=data_path, root=data_root)
    x = dataset.split(split)
    if num_data > x.shape[0]:
        raise ValueError(f"num_data: the {split} split of {dataset.name!r} has {x.shape[0]} points, "
                         f"got num_data={num_data}")
    x = opened.fit_data(x[:num_data], dataset.name).to(resolve_device(device))

    check_choice("sampler", sampler, DIAGNOSE_SAMPLERS)
    if sampler != "guide":
        return _diagnose_by_kernel(opened, dataset.name, split, x, sampler, num_samples, chains,
                                   elements, seed, out, started)
    idata = from_guide(model.model, model.guide, x, num_samples, chains=chains, seed=seed)
    out_dir = make_folder("out", out if out is not None else opened.path.parent / "diagnose")
    files, summary, netcdf_note = _write_common(idata, out_dir, elements)

    khat = idata.sample_stats.attrs["pareto_k"]
    # log p(x_i) by importance sampling with the same draws: log-mean-exp of the weights.
    log_weight = torch.from_numpy(idata.sample_stats["log_weight"].values).double().flatten(0, 1)
    log_px = torch.logsumexp(log_weight, 0) - math.log(log_weight.shape[0])
    metrics: dict[str, Any] = {
        "checkpoint": str(opened.path), "data": dataset.name, "split": split, "num_data": num_data,
        "chains": chains, "num_samples": num_samples, "seed": seed, "device": str(x.device),
        "latents": list(idata.posterior.data_vars),
        "summary": summary.to_dict(orient="index"),
        "summary_text": summary.to_string(),
        "pareto_k": [float(k) for k in khat],
        "pareto_k_max": float(np.max(khat)),
        "pareto_k_good": int(np.sum(khat < 0.5)),
        "pareto_k_ok": int(np.sum((khat >= 0.5) & (khat <= KHAT_THRESHOLD))),
        "pareto_k_bad": int(np.sum(khat > KHAT_THRESHOLD)),
        "importance_log_px": log_px.tolist(),
        "netcdf": netcdf_note,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if amortization:
        metrics["amortization"] = _amortization(model, x[:amortization], out_dir, files, seed)
    if calibration:
        metrics["calibration"] = _calibration(model, calibration, seed, out_dir, files)
    files["json"] = out_dir / "diagnose.json"
    atomic_write_text(files["json"], json.dumps(
        {k: v for k, v in metrics.items() if k != "summary_text"}, indent=2) + "\n")
    return RunResult(out_dir, files, metrics)


def _write_common(idata: Any, out_dir: Path, elements: int) -> tuple[dict[str, Path], Any, str]:
    """The summary, the netcdf file and the trace/rank/pair figures every posterior gets."""
    files: dict[str, Path] = {}
    table = _summary(idata, elements)
    files["summary"] = out_dir / "summary.csv"
    atomic_write_text(files["summary"], table.to_csv())
    netcdf_note = _write_netcdf(idata, out_dir / "inference_data.nc")
    if netcdf_note is None:
        files["inference_data"] = out_dir / "inference_data.nc"
    files.update(save_mcmc_plots(idata, out_dir, max_elements=elements))
    return files, table, netcdf_note or "written"


def _diagnose_by_kernel(opened: OpenedCheckpoint, data: str, split: str, x: torch.Tensor,
                        sampler: str, num_samples: int, chains: int, elements: int, seed: int,
                        out: str | Path | None, started: float) -> RunResult:
    import pyro
    from pyro.infer import MCMC

    from .._pyro import local_params
    from ..diagnostics import to_inference_data
    from ..inference.mcmc import DMALA, Gibbs, GibbsWithGradients

    kernel = {"gibbs": Gibbs, "gwg": GibbsWithGradients, "dmala": DMALA}[sampler](
        opened.model.model, chains=chains)
    pyro.set_rng_seed(seed)
    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=num_samples, disable_progbar=True)
    with local_params():
        mcmc.run(x)
    idata = to_inference_data(mcmc, log_likelihood=False)
    out_dir = make_folder("out", out if out is not None else opened.path.parent / "diagnose")
    files, table, netcdf = _write_common(idata, out_dir, elements)
    rates = kernel.diagnostics()
    metrics: dict[str, Any] = {
        "checkpoint": str(opened.path), "data": data, "split": split, "num_data": x.shape[0],
        "chains": chains, "num_samples": num_samples, "warmup_steps": num_samples, "seed": seed,
        "device": str(x.device), "sampler": sampler, "latents": list(idata.posterior.data_vars),
        "summary": table.to_dict(orient="index"), "summary_text": table.to_string(),
        "flip_rate": rates["flip rate"], "acceptance_rate": rates.get("acceptance rate"),
        "netcdf": netcdf, "seconds": round(time.perf_counter() - started, 3)}
    files["json"] = out_dir / "diagnose.json"
    atomic_write_text(files["json"], json.dumps(
        {k: v for k, v in metrics.items() if k != "summary_text"}, indent=2) + "\n")
    return RunResult(out_dir, files, metrics)


def _amortization(model: Any, x: torch.Tensor, out_dir: Path, files: dict[str, Path],
                  seed: int) -> dict[str, list[float]]:
    from ..diagnostics.amortization import amortization_gap, plot_amortization_gap

    if not hasattr(model, "encode"):
        raise ValueError(f"amortization: the gap is measured for VAEs (an encoder to amortize), "
                         f"the checkpoint holds a {type(model).__name__}")
    gap = amortization_gap(model, x, seed=seed)
    files["amortization"] = plot_amortization_gap(gap, out_dir / "amortization_gap.png")
    return gap.summary()


def _calibration(model: Any, simulations: int, seed: int, out_dir: Path,
                 files: dict[str, Path]) -> dict[str, Any]:
    from ..diagnostics.calibration import sbc
    from ..diagnostics.calibration_figures import plot_sbc

    result = sbc(model.model, model.guide, num_simulations=simulations, num_draws=CALIBRATION_DRAWS,
                 kwargs={"num_samples": 1}, seed=seed)
    files["calibration"] = plot_sbc(result, out_dir / "calibration.png")
    return {"num_simulations": simulations, "num_draws": CALIBRATION_DRAWS, "alpha": result.alpha,
            "sites": result.summary()}


def format_diagnosis(result: RunResult) -> str:
    """The text ``ppdgm diagnose`` prints: the summary table and the k-hat verdict.

    Examples:
        >>> m = {"checkpoint": "c.pt", "data": "d", "split": "test", "num_data": 2, "chains": 1,
        ...      "num_samples": 9, "summary_text": "(table)", "pareto_k": [0.1, 0.9],
        ...      "pareto_k_max": 0.9, "pareto_k_good": 1, "pareto_k_ok": 0, "pareto_k_bad": 1,
        ...      "netcdf": "written"}
        >>> print(format_diagnosis(RunResult(Path("."), {}, m)).splitlines()[-1])
          1 point(s) above 0.7: the guide's importance weights there are unreliable (point(s) [1])
    """
    m = result.metrics
    if m.get("sampler", "guide") != "guide":
        accept = m.get("acceptance_rate")
        lines = [f"Diagnosed the posterior of {m['checkpoint']} on {m['num_data']} points of "
                 f"{m['data']}/{m['split']} by {m['sampler']} ({m['chains']} chains x "
                 f"{m['num_samples']} draws after {m['warmup_steps']} warm-up steps each):",
                 m["summary_text"],
                 "flip rate per step: " + ", ".join(f"{site} {rate:.3f}" for site, rate in
                                                    m["flip_rate"].items())
                 + ("" if accept is None else f"; acceptance rate {accept:.3f}")]
        if m["netcdf"] != "written":
            lines.append(f"  inference_data.nc not written: {m['netcdf']}")
        return "\n".join(lines)
    lines = [
        f"Diagnosed the guide of {m['checkpoint']} on {m['num_data']} points of "
        f"{m['data']}/{m['split']} ({m['chains']} chains x {m['num_samples']} draws each):",
        m["summary_text"],
        f"PSIS k-hat of the importance weights per data point: max {m['pareto_k_max']:.2f}; "
        f"{m['pareto_k_good']} good (< 0.5), {m['pareto_k_ok']} ok (0.5-{KHAT_THRESHOLD}), "
        f"{m['pareto_k_bad']} bad (> {KHAT_THRESHOLD})",
    ]
    if m["netcdf"] != "written":
        lines.append(f"  inference_data.nc not written: {m['netcdf']}")
    if m["pareto_k_bad"]:
        bad = [i for i, k in enumerate(m["pareto_k"]) if k > KHAT_THRESHOLD]
        lines.append(f"  {len(bad)} point(s) above {KHAT_THRESHOLD}: the guide's importance weights "
                     f"there are unreliable (point(s) {bad})")
    gap = m.get("amortization")
    if gap:
        lines.append("Encoder against NUTS on the true posterior (nats per point: inference gap = "
                     "approximation + amortization; forward KL(p || q); worst R-hat):")
        for i in range(len(gap["log_px"])):
            lines.append(f"  point {i}: log p(x) {gap['log_px'][i]:.2f}, gap {gap['inference_gap'][i]:.3f} = "
                         f"{gap['approximation_gap'][i]:.3f} + {gap['amortization_gap'][i]:.3f}, "
                         f"KL(p||q) {gap['forward_kl'][i]:.3f}, R-hat {gap['rhat'][i]:.3f}")
    cal = m.get("calibration")
    if cal:
        lines.append(f"Simulation-based calibration of the guide ({cal['num_simulations']} simulated "
                     f"points, each latent ranked among {cal['num_draws']} guide draws; ECDF "
                     f"bands at level {cal['alpha']}):")
        for site, verdict in cal["sites"].items():
            word = "calibrated" if verdict["calibrated"] else "NOT calibrated"
            lines.append(f"  {site} ({verdict['coordinates']} coordinate(s)): {word}, "
                         f"p = {verdict['p_value']:.3g}")
    return "\n".join(lines)


def _summary(idata: Any, elements: int) -> Any:  # -> pandas.DataFrame
    selected = select_elements(idata, "posterior", None, elements)
    with np.errstate(divide="ignore", invalid="ignore"):
        table = summary(selected, kind="all", round_to=3)
    return table[SUMMARY_COLUMNS]


def _write_netcdf(idata: Any, path: Path) -> str | None:
    """Write ``idata`` as netCDF; returns why not when no netCDF backend is installed."""
    for engine, module in (("h5netcdf", "h5netcdf"), ("netcdf4", "netCDF4")):
        if importlib.util.find_spec(module) is not None:
            idata.to_netcdf(str(path), engine=engine)
            return None
    return "no netCDF backend installed (pip install h5netcdf)"
