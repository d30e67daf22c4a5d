"""The ``ppdgm`` command: ``fit``, ``evaluate``, ``diagnose``, ``sample`` and ``demo``.

Flags map one-to-one onto :class:`ppdgm.inference.TrainConfig` and the model's config dataclass.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .recipes import DEMO_RECIPE, RECIPES
from .recipes.diffusion import bound_line
from .recipes.vae import add_vae_flags, fit_vae_from_flags

__all__ = ["main", "build_parser"]

DEMO_DATA = "digits-binarized"
_DATA_HELP = ("a registered dataset ({names}), a path to an .npz/.npy array file or to a folder of "
              "PNG/JPEG images, or torchvision:NAME (with --data-root, --download)")




def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names like vae,gan, got {text!r}")
    return names


def _add_run_flags(p: argparse.ArgumentParser, *, epochs: int, out: str) -> None:
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=out, help="directory for checkpoint, history, figures")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: the loss's forward pass under bfloat16 autocast (GPUs)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes torchrun starts (--batch-size is global)")


def _add_data_flags(p: argparse.ArgumentParser, datasets: Sequence[str]) -> None:
    p.add_argument("--data", default=DEMO_DATA, metavar="DATA", help=_DATA_HELP.format(
        names=", ".join(datasets)))
    p.add_argument("--data-path", default=None, help="file or folder (binarized-mnist)")
    p.add_argument("--data-root", default=None, help="torchvision root (mnist, fashion-mnist)")
    p.add_argument("--download", action="store_true", help="allow torchvision to download")
    p.add_argument("--plots", action="store_true",
                   help="also write figures: loss curve, samples, reconstructions, latent scatter")




def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ppdgm`` command."""
    from .data import DATASETS

    parser = argparse.ArgumentParser(
        prog="ppdgm", description="Deep generative models as Pyro programs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser("fit", help="train a model on a dataset")
    models = fit.add_subparsers(dest="model", required=True, metavar="MODEL")
    for recipe in RECIPES.values():
        family = models.add_parser(recipe.name, help=recipe.help)
        _add_data_flags(family, DATASETS)
        if recipe.epochs is not None:
            _add_run_flags(family, epochs=recipe.epochs, out=f"runs/{recipe.name}")
            family.set_defaults(**recipe.defaults)
        recipe.add_flags(family)

    evaluate = sub.add_parser(
        "evaluate", help="importance-sampled log p(x) and the ELBO of a checkpoint on a split "
                         "(diffusion models: the exact variational bound)")
    evaluate.add_argument("checkpoint", help="a checkpoint.pt written by `ppdgm fit`")
    evaluate.add_argument("--data", default=None, metavar="DATA",
                          help="default: the dataset the checkpoint was trained on; "
                               "names as for fit")
    evaluate.add_argument("--data-path", default=None, help="file or folder (binarized-mnist)")
    evaluate.add_argument("--data-root", default=None, help="torchvision root (mnist, fashion-mnist)")
    evaluate.add_argument("--split", default="test", choices=["train", "valid", "test"])
    evaluate.add_argument("--k", type=int, default=5000, help="importance samples per data point")
    evaluate.add_argument("--batch-size", type=int, default=100)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--out", default=None, help="also write the metrics to this JSON file")

    diagnose = sub.add_parser(
        "diagnose", help="ArviZ diagnostics of a checkpoint's guide: summary, PSIS k-hat, plots")
    diagnose.add_argument("checkpoint", help="a checkpoint.pt written by `ppdgm fit`")
    diagnose.add_argument("--data", default=None, metavar="DATA",
                          help="default: the dataset the checkpoint was trained on; "
                               "names as for fit")
    diagnose.add_argument("--data-path", default=None, help="file or folder (binarized-mnist)")
    diagnose.add_argument("--data-root", default=None, help="torchvision root (mnist, fashion-mnist)")
    diagnose.add_argument("--split", default="test", choices=["train", "valid", "test"])
    diagnose.add_argument("--num-data", type=int, default=8, help="data points (the split's first)")
    diagnose.add_argument("--num-samples", type=int, default=200, help="guide draws per chain")
    diagnose.add_argument("--chains", type=int, default=4)
    diagnose.add_argument("--elements", type=int, default=4,
                          help="latent coordinates in the summary and the plots")
    diagnose.add_argument("--seed", type=int, default=0)
    diagnose.add_argument("--device", default="auto")
    diagnose.add_argument("--out", default=None, help="default: CHECKPOINT's folder/diagnose")
    diagnose.add_argument("--amortization", type=int, default=0, metavar="N",
                          help="VAE: run NUTS on p(z|x) of the first N points and measure the "
                               "encoder's amortization and approximation gaps")

    sample = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid")
    sample.add_argument("checkpoint", help="a checkpoint.pt written by `ppdgm fit`")
    sample.add_argument("--n", type=int, default=64)
    sample.add_argument("--out", default="samples.png")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="auto")
    sample.add_argument("--draw", action="store_true",
                        help="show random draws instead of the likelihood's mean")
    sample.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm",
                        help="diffusion models: ancestral DDPM (all T steps) or DDIM")
    sample.add_argument("--steps", type=int, default=None,
                        help="diffusion: DDIM steps (default 50, at most T)")
    sample.add_argument("--eta", type=float, default=0.0, help="diffusion: DDIM noise, 0..1")

    compare = sub.add_parser(
        "compare", help="train several models on ring8 or grid25 and compare their mode coverage")
    compare.add_argument("--data", default="ring8", choices=["ring8", "grid25"])
    compare.add_argument("--models", type=_names, default=None,
                         help="comma-separated contenders (default: vae,gan,gan-pack2)")
    compare.add_argument("--epochs", type=int, default=None,
                         help="epochs for every model (default: each model's own, 20)")
    compare.add_argument("--max-steps", type=int, default=None, help="stop each model after this")
    compare.add_argument("--num-train", type=int, default=None, help="training points (default 50000)")
    compare.add_argument("--num-samples", type=int, default=2500, help="samples scored per model")
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    compare.add_argument("--out", default="runs/compare",
                         help="directory for compare.json, compare.png and one run per model")
    compare.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    demo = sub.add_parser("demo", help=f"train a VAE on the bundled {DEMO_DATA} and write figures")
    _add_run_flags(demo, epochs=200, out="ppdgm-demo")
    add_vae_flags(demo)
    demo.set_defaults(batch_size=64, hidden=(256, 128), z_dim=8)
    return parser








def _report(result, title: str, lines: Sequence[str] = ()) -> None:
    from .inference.distributed import is_main_process

    if not is_main_process():
        return  # data-parallel runs: rank 0 speaks for all
    print(title)
    metrics = result.metrics
    if metrics.get("estimator") == "variational bound":
        print(f"  {bound_line(metrics)}; {metrics['num_data']} points of {metrics['data']}/"
              f"{metrics['split']} in {metrics['seconds']:.1f} s")
    elif "log_px" in metrics:
        print(f"  log p(x) per example (nats, K={metrics['num_samples']}): "
              f"{metrics['log_px']:.3f} ± {metrics['log_px_stderr']:.3f}  "
              f"(NLL {metrics['nll']:.3f})")
        print(f"  ELBO per example (nats, same draws): {metrics['elbo']:.3f} ± "
              f"{metrics['elbo_stderr']:.3f}; {metrics['n']} points of {metrics['data']}/"
              f"{metrics['split']} in {metrics['seconds']:.1f} s on {metrics['device']}")
    for line in lines:
        print(f"  {line}")
    for name, path in result.files.items():
        print(f"  {name:>15}: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ppdgm`` command; returns the exit status.

    Every error ends as one line on stderr and a non-zero status: 2 for what the user can act on
    (bad arguments or data, a corrupt checkpoint, a diverged run, a file system error), 1 for an
    internal error (``PPDGM_DEBUG=1`` shows its traceback), 130 for Ctrl-C, which says how to
    continue a training run from its last checkpoint.
    """
    args = build_parser().parse_args(argv)
    try:
        _check_outputs(args)
        return _dispatch(args)
    except KeyboardInterrupt:
        print(f"ppdgm {args.command}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("PPDGM_DEBUG"):
            raise
        expected = isinstance(err, _USER_ERRORS)
        text = _one_line(err) if expected else f"{type(err).__name__}: {_one_line(err)}"
        hint = "" if expected else " (an internal error; PPDGM_DEBUG=1 shows the traceback)"
        print(f"ppdgm {args.command}: error: {text}{hint}", file=sys.stderr)
        return 2 if expected else 1


# What a user can act on: bad arguments or data, corrupt or foreign checkpoints (CheckpointError
# is a ValueError), a diverged run (NonFiniteLossError), a full disk or a read-only folder
# (OSError), torch.distributed without torchrun (RuntimeError), a corrupt archive.
_USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError, RuntimeError, EOFError,
                zipfile.BadZipFile)


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[0] + (" (...)" if len(lines) > 1 else "")


def _resume_hint(args: argparse.Namespace) -> str:
    out = getattr(args, "out", None)
    if args.command not in ("fit", "demo") or not hasattr(args, "resume") or out is None:
        return ""
    if not (Path(out) / "checkpoint.pt").exists():
        return "; no checkpoint was written yet"
    return f"; the last checkpoint is in {out}: run the same command with --resume to continue"


def _check_outputs(args: argparse.Namespace) -> None:
    """Find an unusable --out before any training: a file where a folder is needed, a folder
    that cannot be created or written."""
    out = getattr(args, "out", None)
    if out is None:
        return
    if args.command in ("fit", "demo", "compare", "diagnose"):
        _check_writable_folder(Path(out))
    else:  # sample, evaluate: --out names a file
        path = Path(out)
        if path.is_dir():
            raise ValueError(f"out: {out!r} is a folder; expected a file path")
        _check_writable_folder(path.parent if str(path.parent) else Path("."))


def _check_writable_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"out: {str(folder)!r} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".ppdgm-write-check-"):
        pass


def _dispatch(args: argparse.Namespace) -> int:
    from . import runs
    from .data import load_dataset

    if args.command == "fit":
        dataset = load_dataset(args.data, path=args.data_path, root=args.data_root,
                               download=args.download)
        recipe = RECIPES[args.model]
        result = recipe.fit(args, dataset)
        _report(result, f"{recipe.title(result, dataset)}; wrote:", recipe.lines(result))
    elif args.command == "demo":
        dataset = load_dataset(DEMO_DATA)
        recipe = RECIPES[DEMO_RECIPE]
        result = fit_vae_from_flags(args, dataset, figures=True)
        _report(result, f"{recipe.title(result, dataset)}; wrote:", recipe.lines(result))
    elif args.command == "evaluate":
        name = args.data or runs.checkpoint_data(args.checkpoint)
        if name is None:
            raise ValueError("data: the checkpoint does not record its dataset; pass --data")
        dataset = load_dataset(name, path=args.data_path, root=args.data_root)
        result = runs.evaluate_checkpoint(args.checkpoint, dataset, split=args.split, k=args.k,
                                          batch_size=args.batch_size, seed=args.seed,
                                          device=args.device, out=args.out)
        _report(result, f"Evaluated {args.checkpoint}:")
    elif args.command == "diagnose":
        from .runs_diagnose import diagnose_checkpoint, format_diagnosis

        result = diagnose_checkpoint(
            args.checkpoint, data=args.data, data_path=args.data_path, data_root=args.data_root,
            split=args.split, num_data=args.num_data, num_samples=args.num_samples,
            chains=args.chains, elements=args.elements, seed=args.seed, device=args.device,
            out=args.out, amortization=args.amortization)
        print(format_diagnosis(result))
        _report(result, "Wrote:")
    elif args.command == "compare":
        from .runs_compare import DEFAULT_MODELS, compare_models, format_compare_table

        result = compare_models(args.data, args.out, models=args.models or DEFAULT_MODELS,
                                epochs=args.epochs, max_steps=args.max_steps, seed=args.seed,
                                num_samples=args.num_samples, num_train=args.num_train,
                                device=args.device,
                                progress=False if args.no_progress else None)
        print(format_compare_table(result.metrics))
        _report(result, "Wrote:")
    else:
        result = runs.sample_checkpoint(args.checkpoint, args.out, n=args.n, seed=args.seed,
                                        device=args.device, mean=not args.draw,
                                        sampler=args.sampler, steps=args.steps, eta=args.eta)
        _report(result, f"Wrote {args.n} samples:")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
