"""The commands that work on what ``ppdgm fit`` left: ``evaluate``, ``diagnose``, ``sample``,
and ``compare``, which trains several families side by side.

Each :class:`Command` adds its flags to a parser and runs on the parsed arguments, returning a
:class:`Report` for the command line to print. A checkpoint is opened once; its recipe (found
from the checkpoint's record) says how the family is evaluated and sampled.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .base import BOUNDS_POINTS, BOUNDS_STEPS, Recipe, bounds_lines
from .checkpoints import OpenedCheckpoint, evaluate_checkpoint, open_checkpoint, sample_checkpoint
from .registry import RECIPES
from .run import RunResult

__all__ = ["COMMANDS", "Command", "Report"]


@dataclass
class Report:
    """What a command prints: ``text`` first (a table), then ``title``, ``lines`` and the files."""

    result: RunResult
    title: str
    lines: list[str] = field(default_factory=list)
    text: str | None = None


@dataclass
class Command:
    """One ``ppdgm`` subcommand: its help line, its flags and what it runs."""

    help: str
    add_flags: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Report]
    #: ``"folder"`` or ``"file"``: what ``--out`` names (checked before any work).
    out_kind: str = "file"


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names like vae,gan, got {text!r}")
    return names


def _checkpoint_flags(p: argparse.ArgumentParser, *, data: bool = True) -> None:
    p.add_argument("checkpoint", help="a checkpoint.pt written by `ppdgm fit`")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    if data:
        p.add_argument("--data", default=None, metavar="DATA",
                       help="default: the dataset the checkpoint was trained on; names as for fit")
        p.add_argument("--data-path", default=None, help="file or folder (binarized-mnist)")
        p.add_argument("--data-root", default=None, help="torchvision root (mnist, fashion-mnist)")
        p.add_argument("--split", default="test", choices=["train", "valid", "test"])


def _evaluate_flags(p: argparse.ArgumentParser) -> None:
    _checkpoint_flags(p)
    p.add_argument("--k", type=int, default=5000, help="importance samples per data point")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--out", default=None, help="also write the metrics to this JSON file")
    p.add_argument("--bounds", type=int, nargs="?", const=BOUNDS_STEPS, default=0,
                   metavar="STEPS",
                   help=f"also sandwich log p(x) of {BOUNDS_POINTS} points simulated from the "
                        "model between BDMC's lower and upper bounds (STEPS intermediate "
                        f"distributions, default {BOUNDS_STEPS})")


def _evaluate(args: argparse.Namespace) -> Report:
    from ..data import load_dataset

    opened = open_checkpoint(args.checkpoint, args.device)
    name = args.data or opened.data
    if name is None:
        raise ValueError("data: the checkpoint does not record its dataset; pass --data")
    dataset = load_dataset(name, path=args.data_path, root=args.data_root)
    result = evaluate_checkpoint(opened, dataset, split=args.split, k=args.k,
                                 batch_size=args.batch_size, seed=args.seed, device=args.device,
                                 out=args.out, bounds=args.bounds)
    lines = opened.recipe.evaluation_lines(result.metrics)
    if "bounds" in result.metrics:
        lines += bounds_lines(result.metrics["bounds"])
    return Report(result, f"Evaluated {args.checkpoint}:", lines)


def _diagnose_flags(p: argparse.ArgumentParser) -> None:
    _checkpoint_flags(p)
    p.add_argument("--num-data", type=int, default=8, help="data points (the split's first)")
    p.add_argument("--num-samples", type=int, default=200, help="guide draws per chain")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--elements", type=int, default=4,
                   help="latent coordinates in the summary and the plots")
    p.add_argument("--out", default=None, help="default: CHECKPOINT's folder/diagnose")
    p.add_argument("--amortization", type=int, default=0, metavar="N",
                   help="VAE: run NUTS on p(z|x) of the first N points and measure the "
                        "encoder's amortization and approximation gaps")
    p.add_argument("--calibration", type=int, default=0, metavar="N",
                   help="simulation-based calibration of the guide on N points simulated from "
                        "the model: a verdict and a p-value per latent site")
    p.add_argument("--sampler", default="guide", choices=["guide", "gibbs", "gwg", "dmala"],
                   help="where the posterior draws come from: the trained guide (default), or "
                        "for discrete latents (an SBN) an MCMC kernel on the exact posterior: "
                        "gibbs, gwg (Gibbs-with-Gradients) or dmala (discrete Langevin)")


def _diagnose(args: argparse.Namespace) -> Report:
    from .diagnose import diagnose_checkpoint, format_diagnosis

    result = diagnose_checkpoint(
        args.checkpoint, data=args.data, data_path=args.data_path, data_root=args.data_root,
        split=args.split, num_data=args.num_data, num_samples=args.num_samples,
        chains=args.chains, elements=args.elements, seed=args.seed, device=args.device,
        out=args.out, amortization=args.amortization, calibration=args.calibration,
        sampler=args.sampler)
    return Report(result, "Wrote:", text=format_diagnosis(result))


def _sample_flags(p: argparse.ArgumentParser) -> None:
    _checkpoint_flags(p, data=False)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", default="samples.png")
    p.add_argument("--draw", action="store_true",
                   help="show random draws instead of the likelihood's mean")
    p.add_argument("--sampler", default=None,
                   help="for the families that offer a choice. diffusion: ddpm (default), ddim or "
                        "a diffusers scheduler; rbm: gibbs (default, block Gibbs), gwg "
                        "(Gibbs-with-Gradients) or dmala (discrete Langevin)")
    for recipe in RECIPES.values():
        recipe.add_sample_flags(p)


def _sample_flag_defaults(recipe: Recipe) -> dict[str, Any]:
    """The sampling flags ``recipe`` adds to ``ppdgm sample``, by destination, with defaults."""
    probe = argparse.ArgumentParser(add_help=False)
    recipe.add_sample_flags(probe)
    return vars(probe.parse_args([]))


def _refuse_foreign_sample_flags(args: argparse.Namespace, opened: OpenedCheckpoint) -> None:
    # Every family's sampling flags are on the command line; one the checkpoint's family does
    # not read must not be dropped silently.
    ours = _sample_flag_defaults(opened.recipe)
    for recipe in {id(r): r for r in RECIPES.values()}.values():
        for dest, default in _sample_flag_defaults(recipe).items():
            if dest not in ours and getattr(args, dest, default) != default:
                raise ValueError(f"--{dest.replace('_', '-')}: a {opened.spec['name']} checkpoint "
                                 "has no such sampling option")


def _sample(args: argparse.Namespace) -> Report:
    opened = open_checkpoint(args.checkpoint, args.device)
    _refuse_foreign_sample_flags(args, opened)
    options = opened.recipe.sample_options(args)
    if args.sampler is not None and "sampler" not in options:
        raise ValueError(f"--sampler: a {opened.spec['name']} checkpoint has no such sampling option")
    result = sample_checkpoint(opened, args.out, n=args.n, seed=args.seed, device=args.device,
                               mean=not args.draw, **options)
    return Report(result, f"Wrote {args.n} samples:")


def _compare_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="ring8", choices=["ring8", "grid25"])
    p.add_argument("--models", type=_names, default=None,
                   help="comma-separated contenders (default: vae,gan,gan-pack2)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs for every model (default: each model's own, 20)")
    p.add_argument("--max-steps", type=int, default=None, help="stop each model after this")
    p.add_argument("--num-train", type=int, default=None, help="training points (default 50000)")
    p.add_argument("--num-samples", type=int, default=2500, help="samples scored per model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--out", default="runs/compare",
                   help="directory for compare.json, compare.png and one run per model")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _compare(args: argparse.Namespace) -> Report:
    from .compare import DEFAULT_MODELS, compare_models, format_compare_table

    result = compare_models(args.data, args.out, models=args.models or DEFAULT_MODELS,
                            epochs=args.epochs, max_steps=args.max_steps, seed=args.seed,
                            num_samples=args.num_samples, num_train=args.num_train,
                            device=args.device, progress=False if args.no_progress else None)
    return Report(result, "Wrote:", text=format_compare_table(result.metrics))


def _tour_flags(p: argparse.ArgumentParser) -> None:
    from .tour import TOPICS

    p.add_argument("--topics", type=_names, default=None,
                   help=f"comma-separated, some of {','.join(TOPICS)} (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (small networks: 1)")
    p.add_argument("--out", default="runs/tour", help="directory for index.html and every run")


def _tour(args: argparse.Namespace) -> Report:
    from .tour import run_tour

    result = run_tour(args.out, seed=args.seed, topics=list(args.topics) if args.topics else None,
                      threads=args.threads)
    seconds = result.metrics["seconds"]
    return Report(result, f"Toured {len(seconds)} topics in {sum(seconds.values()):.0f} s; open "
                          f"{result.files['index']} in a browser. Wrote:")


#: The commands besides ``fit`` and ``demo``, by name, in the order ``ppdgm --help`` lists them.
COMMANDS: dict[str, Command] = {
    "evaluate": Command("importance-sampled log p(x) and the ELBO of a checkpoint on a split "
                        "(diffusion models: the exact variational bound)", _evaluate_flags, _evaluate),
    "diagnose": Command("ArviZ diagnostics of a checkpoint's guide: summary, PSIS k-hat, plots",
                        _diagnose_flags, _diagnose, out_kind="folder"),
    "sample": Command("draw samples from a checkpoint into a PNG grid", _sample_flags, _sample),
    "compare": Command("train several models on ring8 or grid25 and compare their mode coverage",
                       _compare_flags, _compare, out_kind="folder"),
    "tour": Command("the lecture in one run: every family trained on the bundled data, one HTML "
                    "page with a figure and its numbers per topic (a few minutes on a CPU)",
                    _tour_flags, _tour, out_kind="folder"),
}

