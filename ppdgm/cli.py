"""The ``ppdgm`` command: ``fit`` and ``demo`` from the recipes, the other commands from
:data:`ppdgm.recipes.commands.COMMANDS`, and one error boundary around them all.

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

from ._files import make_folder
from .recipes import DEMO_RECIPE, RECIPES
from .recipes.commands import COMMANDS, Report

__all__ = ["main", "build_parser"]

DEMO_DATA = "digits-binarized"
_DATA_HELP = ("a registered dataset ({names}), a path to an .npz/.npy array file or to a folder of "
              "PNG/JPEG images, or torchvision:NAME (with --data-root, --download)")


def _add_run_flags(p: argparse.ArgumentParser, *, epochs: int, out: str) -> None:
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=out, help="directory for checkpoint, history, figures")
    p.add_argument("--resume", nargs="?", const=True, default=False, type=_resume_mode,
                   metavar="auto", help="continue from OUT/checkpoint.pt; --resume auto continues "
                   "when there is one and starts afresh when there is none (the command to "
                   "repeat on every restart of a launcher such as torchrun --max-restarts)")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS")
    p.add_argument("--checkpoint-seconds", type=float, default=None, metavar="SECONDS",
                   help="also checkpoint once this many seconds have passed since the last "
                        "checkpoint (bounds the work a crash can cost)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: the loss's forward pass under bfloat16 autocast (GPUs)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes torchrun starts (--batch-size is global)")
    p.add_argument("--divergence", type=float, default=1e6, metavar="FACTOR",
                   help="stop when a loss exceeds FACTOR times its first value (0: never)")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="log losses and sample grids to TensorBoard in DIR (needs tensorboard)")
    p.add_argument("--compile", nargs="?", const="inductor", default="replay",
                   choices=["off", "replay", "inductor"],
                   help="replay (the default): trace each step once and replay it as a graph, the "
                        "eager run's numbers bit for bit; inductor (--compile alone): also compile "
                        "it with torch.compile, faster after seconds of compiling; off: every step "
                        "eager")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="keep a moving average of the weights (e.g. 0.999); the run's measurements, "
                        "samples and checkpoint loads use it")


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

    for name, command in COMMANDS.items():
        command.add_flags(sub.add_parser(name, help=command.help))

    demo_recipe = RECIPES[DEMO_RECIPE]
    demo = sub.add_parser("demo", help=f"train a {demo_recipe.name} on the bundled {DEMO_DATA} "
                                       "and write figures")
    _add_run_flags(demo, epochs=200, out="ppdgm-demo")
    demo_recipe.add_flags(demo)
    demo.set_defaults(batch_size=64, plots=True)
    return parser


def _report(report: Report) -> None:
    from .inference.distributed import is_main_process

    if not is_main_process():
        return  # data-parallel runs: rank 0 speaks for all
    if report.text:
        print(report.text)
    print(report.title)
    for line in report.lines:
        print(f"  {line}")
    for name, path in report.result.files.items():
        print(f"  {name:>15}: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ppdgm`` command; returns the exit status.

    Every error ends as one line on stderr and a non-zero status: 2 for what the user can act on
    (bad arguments or data, a corrupt checkpoint, a diverged run, a file system error), 1 for an
    internal error (``PPDGM_DEBUG=1`` shows its traceback), 130 for Ctrl-C, which says how to
    continue a training run from its last checkpoint, and 75 (sysexits' EX_TEMPFAIL) for a
    training run that a SIGTERM stopped after a step and a checkpoint (rerun with ``--resume
    auto``).
    """
    args = build_parser().parse_args(argv)
    try:
        _check_outputs(args)
        return _dispatch(args)
    except KeyboardInterrupt:
        print(f"ppdgm {args.command}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130
    except Exception as err:
        status = getattr(err, "exit_status", None)  # a run that stopped on request (Preempted)
        if isinstance(status, int):
            from .inference.distributed import is_main_process

            if is_main_process():
                print(f"ppdgm {args.command}: {_one_line(err)}", file=sys.stderr)
            return status
        if os.environ.get("PPDGM_DEBUG"):
            raise
        expected = isinstance(err, _USER_ERRORS)
        text = _one_line(err) if expected else f"{type(err).__name__}: {_one_line(err)}"
        hint = "" if expected else " (an internal error; PPDGM_DEBUG=1 shows the traceback)"
        print(f"ppdgm {args.command}: error: {text}{hint}", file=sys.stderr)
        return 2 if expected else 1


# What a user can act on: bad arguments or data, corrupt or foreign checkpoints (CheckpointError
# is a ValueError), a diverged run (NonFiniteLossError), a full disk or a read-only folder
# (OSError), torch.distributed without torchrun (RuntimeError), a corrupt archive, an optional
# extra that is not installed (ImportError: diffusers, tensorboard).
_USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError, RuntimeError, EOFError,
                zipfile.BadZipFile, ImportError)


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[0] + (" (...)" if len(lines) > 1 else "")


def _resume_mode(value: str) -> str:
    if value != "auto":
        raise argparse.ArgumentTypeError(f"expected nothing or 'auto', got {value!r}")
    return value


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
    if args.command in ("fit", "demo") or COMMANDS[args.command].out_kind == "folder":
        _check_writable_folder(Path(out))
    else:  # sample, evaluate: --out names a file
        path = Path(out)
        if path.is_dir():
            raise ValueError(f"out: {out!r} is a folder; expected a file path")
        _check_writable_folder(path.parent if str(path.parent) else Path("."))


def _check_writable_folder(folder: Path) -> None:
    make_folder("out", folder)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".ppdgm-write-check-"):
        pass


def _dispatch(args: argparse.Namespace) -> int:
    from .data import load_dataset

    if args.command in COMMANDS:
        _report(COMMANDS[args.command].run(args))
        return 0
    recipe = RECIPES[args.model if args.command == "fit" else DEMO_RECIPE]
    data = args.data if args.command == "fit" else DEMO_DATA
    dataset = load_dataset(data, path=getattr(args, "data_path", None),
                           root=getattr(args, "data_root", None),
                           download=getattr(args, "download", False))
    result = recipe.fit(args, dataset)
    _report(Report(result, f"{recipe.title(result, dataset)}; wrote:", recipe.lines(result)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
