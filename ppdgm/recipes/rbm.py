"""``ppdgm fit rbm``: train a restricted Boltzmann machine by CD-k or PCD-k, then measure log p(x).

The log-likelihood needs log Z: exact (enumerating the smaller layer) when the RBM has at most
2^20 states there, otherwise estimated by AIS from the base-rate RBM (Salakhutdinov and Murray
2008), which ``metrics.json`` says along with the AIS interval.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from typing import Any

import torch

from .._validation import check_choice, check_positive_int
from ..data import Dataset
from ..diagnostics import plot_history, save_image_grid
from ..inference import Engine, Player, TrainConfig
from ..inference.ais import ais_log_partition, base_rate_visible_bias, rbm_log_likelihood
from ..inference.compiled import check_compile
from ..inference.objectives.contrastive_divergence import ContrastiveDivergence
from ..models.rbm import MAX_EXACT_STATES, RBM, VISIBLE, RBMConfig, sample_hidden, visible_logits
from .base import Recipe, train_config
from .run import RunResult, check_run_inputs, finish_run, train_with_engine

__all__ = ["RBM_SAMPLERS", "RBMRecipe", "draw_by_gradient_moves", "fit_rbm", "sgd_momentum"]


def sgd_momentum(lr: float, batch_size: int, momentum: float = 0.9, weight_decay: float = 2e-4):
    """The RBM literature's optimizer: SGD with momentum, ``lr`` a step on the batch-mean gradient.

    The CD loss is a sum over the batch (like Pyro's ELBOs), so the step is divided by the batch
    size; weight decay is on the weights of that mean gradient too.

    Examples:
        >>> opt = sgd_momentum(0.05, 100)([torch.nn.Parameter(torch.zeros(2))])
        >>> round(opt.param_groups[0]["lr"], 6), opt.param_groups[0]["momentum"]
        (0.0005, 0.9)
    """
    if not lr > 0:
        raise ValueError(f"lr: expected a positive number, got {lr!r}")

    def make(params):
        return torch.optim.SGD(params, lr=lr / batch_size, momentum=momentum,
                               weight_decay=weight_decay * batch_size)

    return make


def fit_rbm(dataset: Dataset, train: TrainConfig, *, hidden: int = 100, cd_k: int = 1,
            persistent: bool = False, optimizer: str = "sgd", ais_runs: int = 100,
            ais_betas: int | None = None, figures: bool = False, num_samples: int = 64,
            sample_steps: int = 1000, cd_k_final: int | None = None,
            lr_final: float | None = None) -> RunResult:
    """Train an :class:`~ppdgm.models.rbm.RBM` on binary ``dataset`` with (P)CD-``cd_k``.

    ``optimizer="sgd"`` is :func:`sgd_momentum` at ``train.lr`` (e.g. 0.05); ``"adam"`` is Adam at
    ``train.lr`` (e.g. 1e-3). Salakhutdinov and Murray's recipe: ``cd_k_final`` grows the Gibbs
    sweeps linearly from ``cd_k`` to ``cd_k_final`` over the epochs (set after each epoch), and
    ``lr_final`` decays the learning rate geometrically to ``lr_final`` by the last epoch; both
    are checkpointed, so a resumed run continues them exactly. The visible biases start at the
    training data's log-odds (Hinton's practical guide), and AIS starts from the same base-rate
    model. ``ais_betas`` ``None`` is the
    14,500-temperature schedule of Salakhutdinov and Murray, an int a uniform schedule. With
    ``train.compile="inductor"`` AIS runs compiled too (``ais_log_partition(compile=True)``:
    the same estimator from other draws).

    Examples:
        >>> import tempfile
        >>> from ppdgm.data import load_dataset
        >>> ds = load_dataset("bars-and-stripes")
        >>> cfg = TrainConfig(epochs=2, batch_size=10, lr=0.05, device="cpu", progress=False,
        ...                   out_dir=tempfile.mkdtemp())
        >>> m = fit_rbm(ds, cfg, hidden=4).metrics
        >>> m["log_z_method"], m["test_log_px"]["mean"] < 0
        ('exact', True)
    """
    check_run_inputs(dataset, train)
    if dataset.support != "binary":
        raise ValueError(f"dataset: an RBM models binary data; {dataset.name!r} is {dataset.support!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {optimizer!r}")
    x_train = dataset.train.flatten(1)
    config = RBMConfig(visible=x_train.shape[1], hidden=hidden)

    def build() -> RBM:
        rbm = RBM(config)
        with torch.no_grad():
            rbm.visible_bias.copy_(base_rate_visible_bias(x_train))
        return rbm

    factory = sgd_momentum(train.lr, train.batch_size) if optimizer == "sgd" else None
    sweeps = f"{cd_k}" if cd_k_final is None else f"{cd_k}..{cd_k_final}"
    spec = {"name": "rbm", "config": dataclasses.asdict(config), "data": dataset.name,
            "x_shape": list(dataset.event_shape),
            "objective": f"{'p' if persistent else ''}cd-{sweeps}"}
    objective = ContrastiveDivergence(k=cd_k, persistent=persistent, k_final=cd_k_final)
    player = Player("cd", optimizer=factory, scheduler=_decay(train, lr_final))

    def anneal(engine: Engine, epoch: int) -> None:
        objective.anneal((epoch + 1) / train.epochs)

    run = train_with_engine(dataset, train, build, lambda rbm: Engine(
        rbm.model, rbm.guide, objective, [player], train, model_spec=spec,
        callbacks=[anneal] if cd_k_final is not None else []), data=x_train)
    rbm = run.model
    metrics: dict[str, Any] = {
        "model": "rbm", "data": dataset.name, "visible": config.visible, "hidden": hidden,
        "objective": spec["objective"], "optimizer": optimizer, "lr_final": lr_final,
        "cd_k_reached": objective.k, **run.run_metrics(train),
    }
    metrics.update(_log_likelihoods(rbm, dataset, x_train, ais_runs, ais_betas,
                                    compile=check_compile(train.compile) == "inductor"))

    def draw_figures() -> dict[str, Any]:
        title = f"RBM {hidden} hidden on {dataset.name}: {spec['objective']}"
        files = {"loss_curve": plot_history(run.history, run.out / "loss_curve.png", title=title)}
        if len(dataset.event_shape) == 3:
            draws = rbm.sample(num_samples, steps=sample_steps)
            files["samples"] = save_image_grid(draws.reshape(num_samples, *dataset.event_shape),
                                               run.out / "samples.png")
        return files

    return finish_run(run.out, metrics, figures=figures, draw_figures=draw_figures)


def _decay(train: TrainConfig, lr_final: float | None):
    if lr_final is None:
        return None
    if (isinstance(lr_final, bool) or not isinstance(lr_final, (int, float))
            or not (math.isfinite(lr_final) and 0 < lr_final <= train.lr)):
        raise ValueError(f"lr_final: expected a number in (0, lr = {train.lr}], got {lr_final!r}")
    gamma = (lr_final / train.lr) ** (1.0 / train.epochs)
    return lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma)


def _log_likelihoods(rbm: RBM, dataset: Dataset, x_train: torch.Tensor, ais_runs: int,
                     ais_betas: int | None, *, compile: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {}
    started = time.perf_counter()
    if 2 ** min(rbm.visible, rbm.hidden) <= MAX_EXACT_STATES:
        log_z = rbm.log_partition_exact().item()
        found["log_z_method"] = "exact"
    else:
        ais = ais_log_partition(rbm, num_runs=ais_runs, betas=ais_betas,
                                base_visible_bias=base_rate_visible_bias(x_train), compile=compile)
        log_z = ais.log_z
        found["log_z_method"] = "ais"
        found["ais"] = {"runs": ais_runs, "temperatures": "S&M 14500" if ais_betas is None else ais_betas,
                        "log_z_stderr": ais.log_z_stderr,
                        # -inf (3 standard errors exceed the estimate) has no JSON spelling.
                        "log_z_interval": [v if math.isfinite(v) else None
                                           for v in (ais.log_z_lower, ais.log_z_upper)]}
    found["log_z"] = float(log_z)
    found["log_z_seconds"] = round(time.perf_counter() - started, 3)
    for split in ("train", "test"):
        est = rbm_log_likelihood(rbm, dataset.split(split).flatten(1).to(rbm.weight.device), log_z)
        found[f"{split}_log_px"] = {"mean": est.mean, "stderr": est.stderr}
    if not math.isfinite(found["log_z"]):
        raise FloatingPointError("log Z is not finite: the RBM diverged")
    return found


#: ``ppdgm sample --sampler`` of an RBM.
RBM_SAMPLERS = ("gibbs", "gwg", "dmala")


def draw_by_gradient_moves(rbm: RBM, n: int, sampler: str, steps: int, *,
                           mean: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
    """``n`` visible draws of ``rbm`` after ``steps`` moves of Gibbs-with-Gradients
    (``"gwg"``) or DMALA (``"dmala"``) on p(v), one vectorized chain per draw from uniformly
    random states; the first half of the steps is DMALA's warm-up. ``mean=True`` returns
    p(v = 1 | h) for an h drawn given the last state, as block Gibbs's mean does. Returns the
    draws and what to record about them (the acceptance rate among it)."""
    from pyro.infer import MCMC

    from ..inference.mcmc import DMALA, GibbsWithGradients

    kernel = {"gwg": GibbsWithGradients, "dmala": DMALA}[sampler](rbm.visible_program(), chains=n)
    warmup = steps // 2
    mcmc = MCMC(kernel, num_samples=steps - warmup, warmup_steps=warmup, disable_progbar=True)
    mcmc.run()
    v = mcmc.get_samples()[VISIBLE][-1]
    if mean:
        W, b, c = rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach()
        v = torch.sigmoid(visible_logits(sample_hidden(v, W, c), W, b))
    drawn = {"sampler": sampler, "sweeps": steps,
             "acceptance_rate": kernel.acceptance_rate}
    return v, drawn


class RBMRecipe(Recipe):
    name = "rbm"
    help = "restricted Boltzmann machine (CD-k, PCD-k; log p(x) by AIS)"
    epochs = 50
    models = {"rbm": (RBM, RBMConfig)}
    defaults = {"batch_size": 100, "lr": 0.05}

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--hidden", type=int, default=100, help="hidden units")
        p.add_argument("--cd-k", type=int, default=1, help="Gibbs sweeps per update")
        p.add_argument("--cd-k-final", type=int, default=None,
                       help="grow the sweeps linearly from --cd-k to this by the last epoch")
        p.add_argument("--lr-final", type=float, default=None,
                       help="decay the learning rate geometrically to this by the last epoch")
        p.add_argument("--persistent", action="store_true", help="persistent CD (PCD-k)")
        p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                       help="sgd: momentum 0.9, --lr a step on the batch-mean gradient (e.g. 0.05); "
                            "adam: --lr e.g. 1e-3")
        p.add_argument("--ais-runs", type=int, default=100, help="AIS runs for log Z (large RBMs)")
        p.add_argument("--ais-steps", type=int, default=None,
                       help="uniform AIS temperatures (default: the 14,500 of Salakhutdinov & Murray)")

    def fit(self, args: argparse.Namespace, dataset: Any) -> Any:
        return fit_rbm(dataset, train_config(args), hidden=args.hidden, cd_k=args.cd_k,
                       persistent=args.persistent, optimizer=args.optimizer,
                       ais_runs=args.ais_runs, ais_betas=args.ais_steps, figures=args.plots,
                       cd_k_final=args.cd_k_final, lr_final=args.lr_final)

    def title(self, result: Any, dataset: Any) -> str:
        return f"Trained an RBM on {dataset.name}"

    def add_sample_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--sweeps", type=int, default=1000,
                       help="rbm: Markov chain steps before the draw (block Gibbs sweeps, or "
                            "gradient moves with --sampler gwg or dmala)")

    def sample_options(self, args: argparse.Namespace) -> dict[str, Any]:
        return {"sampler": args.sampler or "gibbs", "sweeps": args.sweeps}

    def draw(self, model: Any, n: int, *, mean: bool, seed: int, sampler: str = "gibbs",
             sweeps: int = 1000) -> tuple[torch.Tensor, dict[str, Any]]:
        check_choice("sampler", sampler, RBM_SAMPLERS)
        check_positive_int("sweeps", sweeps)
        if sampler == "gibbs":
            return model.sample(n, steps=sweeps, mean=mean), {"sampler": sampler, "sweeps": sweeps}
        return draw_by_gradient_moves(model, n, sampler, sweeps, mean=mean)
