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

from .inference.objectives.adversarial import ADVERSARIAL_LOSSES
from .inference.objectives.registry import OBJECTIVES, PLAYER_OBJECTIVES
from .models.nets import ACTIVATIONS

__all__ = ["main", "build_parser"]

DEMO_DATA = "digits-binarized"
_DATA_HELP = ("a registered dataset ({names}), a path to an .npz/.npy array file or to a folder of "
              "PNG/JPEG images, or torchvision:NAME (with --data-root, --download)")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated ints like 256,128, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths, got {text!r}")
    return widths


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


def _add_vae_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--z-dim", type=int, default=8)
    p.add_argument("--hidden", type=_hidden, default=(256, 128), help="MLP widths, e.g. 256,128")
    p.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default=None,
                   help="default: bernoulli for binary data, gaussian otherwise")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default="relu")
    p.add_argument("--objective", choices=list(OBJECTIVES), default="elbo",
                   help="elbo (Monte Carlo KL), elbo-analytic (closed-form KL) or iwae")
    p.add_argument("--k", type=int, default=None,
                   help="particles per data point (default: 50 for iwae, 1 otherwise)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ppdgm`` command."""
    from .data import DATASETS

    parser = argparse.ArgumentParser(
        prog="ppdgm", description="Deep generative models as Pyro programs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser("fit", help="train a model on a dataset")
    models = fit.add_subparsers(dest="model", required=True, metavar="MODEL")
    vae = models.add_parser("vae", help="variational autoencoder (ELBO, analytic KL, IWAE)")
    _add_data_flags(vae, DATASETS)
    _add_run_flags(vae, epochs=20, out="runs/vae")
    _add_vae_flags(vae)
    sbn = models.add_parser("sbn", help="sigmoid belief net / Helmholtz machine (wake-sleep, RWS, VIMCO)")
    _add_data_flags(sbn, DATASETS)
    _add_run_flags(sbn, epochs=100, out="runs/sbn")
    sbn.add_argument("--layers", type=_hidden, default=(8,),
                     help="latent widths from the top layer down, e.g. 200,200,200")
    sbn.add_argument("--objective", choices=list(PLAYER_OBJECTIVES), default="rws")
    sbn.add_argument("--k", type=int, default=10, help="RWS or VIMCO particles per data point")
    sbn.add_argument("--autoregressive", action="store_true",
                     help="recognition layers autoregressive within themselves")
    sbn.add_argument("--eval-k", type=int, default=1000,
                     help="importance samples for the log p(x) in metrics.json")

    rbm = models.add_parser("rbm", help="restricted Boltzmann machine (CD-k, PCD-k; log p(x) by AIS)")
    _add_data_flags(rbm, DATASETS)
    _add_run_flags(rbm, epochs=50, out="runs/rbm")
    rbm.set_defaults(batch_size=100, lr=0.05)
    rbm.add_argument("--hidden", type=int, default=100, help="hidden units")
    rbm.add_argument("--cd-k", type=int, default=1, help="Gibbs sweeps per update")
    rbm.add_argument("--persistent", action="store_true", help="persistent CD (PCD-k)")
    rbm.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                     help="sgd: momentum 0.9, --lr a step on the batch-mean gradient (e.g. 0.05); "
                          "adam: --lr e.g. 1e-3")
    rbm.add_argument("--ais-runs", type=int, default=100, help="AIS runs for log Z (large RBMs)")
    rbm.add_argument("--ais-steps", type=int, default=None,
                     help="uniform AIS temperatures (default: the 14,500 of Salakhutdinov & Murray)")

    gan = models.add_parser("gan", help="GAN: generator = Pyro model, discriminator = guide q(y | x)")
    _add_data_flags(gan, DATASETS)
    _add_run_flags(gan, epochs=20, out="runs/gan")
    gan.set_defaults(lr=2e-4)
    gan.add_argument("--loss", choices=list(ADVERSARIAL_LOSSES), default="non-saturating")
    gan.add_argument("--critic-steps", type=int, default=1,
                     help="discriminator steps per generator step (WGAN-GP uses 5)")
    gan.add_argument("--pack", type=int, default=1,
                     help="PacGAN: points the discriminator judges at once (divides --batch-size)")
    gan.add_argument("--gp-weight", type=float, default=10.0, help="wasserstein-gp's penalty weight")
    gan.add_argument("--z-dim", type=int, default=None, help="default: 2 for 2-D data, 64 for images")
    gan.add_argument("--hidden", type=_hidden, default=(128, 128), help="MLP widths, e.g. 128,128")
    gan.add_argument("--arch", choices=["mlp", "dcgan"], default="mlp")
    gan.add_argument("--activation", choices=list(ACTIVATIONS), default="relu")
    gan.add_argument("--lr-discriminator", type=float, default=None, help="default: --lr")
    gan.add_argument("--num-samples", type=int, default=1000,
                     help="generated points for mode coverage and the sample figure")

    vaegan = models.add_parser(
        "vae-gan", help="VAE-GAN (Larsen et al. 2016): a VAE whose likelihood lives in a GAN "
                        "discriminator's features")
    _add_data_flags(vaegan, DATASETS)
    _add_run_flags(vaegan, epochs=20, out="runs/vae-gan")
    vaegan.set_defaults(lr=2e-4)
    vaegan.add_argument("--loss", choices=list(ADVERSARIAL_LOSSES), default="non-saturating",
                        help="the GAN terms of the decoder's and discriminator's losses")
    vaegan.add_argument("--gamma", type=float, default=1.0,
                        help="decoder's weight of feature-space reconstruction vs fooling D")
    vaegan.add_argument("--gp-weight", type=float, default=10.0,
                        help="wasserstein-gp's penalty weight")
    vaegan.add_argument("--z-dim", type=int, default=None,
                        help="default: 2 for 2-D data, 64 for images")
    vaegan.add_argument("--hidden", type=_hidden, default=(128, 128),
                        help="encoder MLP widths (decoder reversed), e.g. 128,128")
    vaegan.add_argument("--discriminator-hidden", type=_hidden, default=None,
                        help="discriminator MLP widths (default: --hidden)")
    vaegan.add_argument("--feature-layer", type=int, default=-1,
                        help="discriminator hidden layer used as the similarity metric (-1: last)")
    vaegan.add_argument("--arch", choices=["mlp", "dcgan"], default="mlp")
    vaegan.add_argument("--activation", choices=list(ACTIVATIONS), default="relu")
    vaegan.add_argument("--lr-discriminator", type=float, default=None, help="default: --lr")
    vaegan.add_argument("--num-samples", type=int, default=1000,
                        help="generated points for mode coverage and the sample figure")

    diffusion = models.add_parser(
        "diffusion", help="denoising diffusion model: reverse chain = model, forward chain = guide")
    _add_data_flags(diffusion, DATASETS)
    _add_run_flags(diffusion, epochs=20, out="runs/diffusion")
    diffusion.set_defaults(lr=2e-4)
    diffusion.add_argument("--timesteps", type=int, default=1000, help="T, the noising steps")
    diffusion.add_argument("--schedule", choices=["linear", "cosine"], default="linear")
    diffusion.add_argument("--prediction", choices=["eps", "x0", "v"], default="eps",
                           help="what the denoiser predicts")
    diffusion.add_argument("--variance", choices=["small", "large"], default="small",
                           help="reverse step variance: beta-tilde_t (small) or beta_t (large)")
    diffusion.add_argument("--hidden", type=_hidden, default=None,
                           help="MLP denoiser widths for vector data (default 256,256,256)")
    diffusion.add_argument("--channels", type=int, default=None,
                           help="U-Net base width for images (default 32)")
    diffusion.add_argument("--multipliers", type=_hidden, default=None,
                           help="U-Net width multiplier per level (default 1,2,2)")
    diffusion.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm",
                           help="sampler for the metrics' samples and figures")
    diffusion.add_argument("--steps", type=int, default=None, help="DDIM steps (default 50, at most T)")
    diffusion.add_argument("--eta", type=float, default=0.0, help="DDIM noise (0: deterministic)")
    diffusion.add_argument("--num-samples", type=int, default=1000,
                           help="generated points for mode coverage and the sample figure")
    diffusion.add_argument("--bound-points", type=int, default=None,
                           help="test points for the exact bound (default 1000; images 100)")

    mixture = models.add_parser("mixture", help="Bernoulli or Gaussian mixture fitted by EM")
    _add_data_flags(mixture, DATASETS)
    mixture.add_argument("--components", type=int, default=10)
    mixture.add_argument("--iterations", type=int, default=100)
    mixture.add_argument("--m-step", choices=["auto", "closed-form", "gradient"], default="auto")
    mixture.add_argument("--seed", type=int, default=0)
    mixture.add_argument("--out", default="runs/mixture")

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
    _add_vae_flags(demo)
    demo.set_defaults(batch_size=64, hidden=(256, 128), z_dim=8)
    return parser


def _train_config(args: argparse.Namespace):
    from .inference import TrainConfig

    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        device=args.device, out_dir=args.out, checkpoint_every=args.checkpoint_every,
        resume=args.resume, max_steps=args.max_steps,
        progress=False if args.no_progress else None, distributed=args.distributed,
        precision=args.precision,
    )


def _vae_overrides(args: argparse.Namespace) -> dict:
    return {"z_dim": args.z_dim, "hidden": tuple(args.hidden), "arch": args.arch,
            "likelihood": args.likelihood, "activation": args.activation}


def _particles(args: argparse.Namespace) -> int:
    if args.k is not None:
        return args.k
    return 50 if args.objective == "iwae" else 1


def _report(result, title: str) -> None:
    from .inference.distributed import is_main_process

    if not is_main_process():
        return  # data-parallel runs: rank 0 speaks for all
    print(title)
    metrics = result.metrics
    if metrics.get("estimator") == "variational bound":
        b = metrics["bound"]
        print(f"  variational bound on -log p(x) per example: {b['nats']:.3f} ± {b['nats_stderr']:.3f} "
              f"nats = {b['bits_per_dim']:.4f} bits/dim (prior {b['prior_nats']:.3f}, steps "
              f"{b['steps_nats']:.3f}, decoder {b['decoder_nats']:.3f}); {metrics['num_data']} points "
              f"of {metrics['data']}/{metrics['split']} in {metrics['seconds']:.1f} s")
    elif "log_px" in metrics:
        print(f"  log p(x) per example (nats, K={metrics['num_samples']}): "
              f"{metrics['log_px']:.3f} ± {metrics['log_px_stderr']:.3f}  "
              f"(NLL {metrics['nll']:.3f})")
        print(f"  ELBO per example (nats, same draws): {metrics['elbo']:.3f} ± "
              f"{metrics['elbo_stderr']:.3f}; {metrics['n']} points of {metrics['data']}/"
              f"{metrics['split']} in {metrics['seconds']:.1f} s on {metrics['device']}")
    if "log_likelihood_trace" in metrics:
        print(f"  exact log p(x) per example: train {metrics['train_log_px_exact']:.3f}, test "
              f"{metrics['test_log_px_exact']:.3f} after {metrics['iterations']} EM iterations "
              f"({metrics['seconds']:.1f} s)")
    if "test_log_px" in metrics:
        tr, te = metrics["train_log_px"], metrics["test_log_px"]
        how = (f"K={metrics['eval_k']}" if "eval_k" in metrics
               else f"log Z {metrics['log_z_method']}: {metrics['log_z']:.3f}")
        print(f"  log p(x) per example (nats, {how}): train {tr['mean']:.3f} ± "
              f"{tr['stderr']:.3f}, test {te['mean']:.3f} ± {te['stderr']:.3f}")
        if "test_log_px_exact" in metrics:
            print(f"  exact log p(x) by enumeration: train {metrics['train_log_px_exact']:.3f}, "
                  f"test {metrics['test_log_px_exact']:.3f}")
    if "test_elbo_nats" in metrics:
        tr, te = metrics["train_elbo_nats"], metrics["test_elbo_nats"]
        print(f"  ELBO per example (nats): train {tr['mean']:.3f} ± {tr['stderr']:.3f}, "
              f"test {te['mean']:.3f} ± {te['stderr']:.3f}")
        print(f"  {metrics['steps']} steps in {metrics['train_seconds']:.1f} s on {metrics['device']}")
    for name, path in result.files.items():
        print(f"  {name:>15}: {path}")


def _coverage_text(c: dict) -> str:
    return f"{c['modes_captured']}/{c['num_modes']} modes, {c['high_quality_percent']:.1f}% high-quality"


def _fit_diffusion(args: argparse.Namespace, dataset):
    from .runs_diffusion import fit_diffusion

    overrides = {"timesteps": args.timesteps, "schedule": args.schedule,
                 "prediction": args.prediction, "variance": args.variance, "hidden": args.hidden,
                 "channels": args.channels, "multipliers": args.multipliers}
    result = fit_diffusion(dataset, _train_config(args), model_overrides=overrides,
                           sampler=args.sampler, steps=args.steps, eta=args.eta,
                           num_samples=args.num_samples, bound_points=args.bound_points,
                           figures=args.plots)
    m, b = result.metrics, result.metrics["bound"]
    title = (f"Trained a diffusion model on {dataset.name} ({m['steps']} steps in "
             f"{m['train_seconds']:.1f} s); bound on -log p(x) over {b['num_points']} test points: "
             f"{b['nats']:.2f} nats, {b['bits_per_dim']:.3f} bits/dim")
    if "mode_coverage" in m:
        title += f"; {m['sampler']} samples: {_coverage_text(m['mode_coverage'])}"
    _report(result, f"{title}; wrote:")
    return result


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

    if args.command in ("fit", "demo"):
        if args.command == "fit":
            dataset = load_dataset(args.data, path=args.data_path, root=args.data_root,
                                   download=args.download)
        else:
            dataset = load_dataset(DEMO_DATA)
        if getattr(args, "model", "vae") == "mixture":
            from .runs_mixture import fit_mixture

            result = fit_mixture(dataset, args.out, components=args.components,
                                 iterations=args.iterations, seed=args.seed,
                                 m_step=args.m_step, figures=args.plots)
            _report(result, f"Fitted a mixture to {dataset.name} by EM; wrote:")
        elif getattr(args, "model", "vae") == "rbm":
            from .runs_rbm import fit_rbm

            result = fit_rbm(dataset, _train_config(args), hidden=args.hidden, cd_k=args.cd_k,
                             persistent=args.persistent, optimizer=args.optimizer,
                             ais_runs=args.ais_runs, ais_betas=args.ais_steps, figures=args.plots)
            _report(result, f"Trained an RBM on {dataset.name}; wrote:")
        elif getattr(args, "model", "vae") == "sbn":
            from .runs_sbn import fit_sbn

            result = fit_sbn(dataset, _train_config(args), layers=tuple(args.layers),
                             objective=args.objective, k=args.k, eval_k=args.eval_k,
                             figures=args.plots, autoregressive=args.autoregressive)
            _report(result, f"Trained a sigmoid belief net on {dataset.name}; wrote:")
        elif getattr(args, "model", "vae") == "gan":
            from .runs_gan import fit_gan

            result = fit_gan(dataset, _train_config(args), loss=args.loss, z_dim=args.z_dim,
                             hidden=tuple(args.hidden), arch=args.arch, activation=args.activation,
                             critic_steps=args.critic_steps, pack=args.pack,
                             gp_weight=args.gp_weight, lr_discriminator=args.lr_discriminator,
                             figures=args.plots, num_samples=args.num_samples)
            m = result.metrics
            title = (f"Trained a GAN on {dataset.name} ({m['discriminator_steps']} discriminator, "
                     f"{m['generator_steps']} generator steps in {m['train_seconds']:.1f} s)")
            if "mode_coverage" in m:
                title += f"; {_coverage_text(m['mode_coverage'])}"
            _report(result, f"{title}; wrote:")
        elif getattr(args, "model", "vae") == "vae-gan":
            from .runs_vaegan import fit_vaegan

            result = fit_vaegan(
                dataset, _train_config(args), loss=args.loss, gamma=args.gamma,
                gp_weight=args.gp_weight, z_dim=args.z_dim, hidden=tuple(args.hidden),
                discriminator_hidden=args.discriminator_hidden,
                feature_layer=args.feature_layer, arch=args.arch, activation=args.activation,
                lr_discriminator=args.lr_discriminator, figures=args.plots,
                num_samples=args.num_samples)
            m = result.metrics
            title = (f"Trained a VAE-GAN on {dataset.name} ({m['steps']} steps of each player "
                     f"in {m['train_seconds']:.1f} s)")
            if "mode_coverage" in m:
                title += f"; samples: {_coverage_text(m['mode_coverage'])}"
            _report(result, f"{title}; wrote:")
        elif getattr(args, "model", "vae") == "diffusion":
            result = _fit_diffusion(args, dataset)
        else:
            result = runs.fit_vae(dataset, _train_config(args), model_overrides=_vae_overrides(args),
                                  objective=args.objective, k=_particles(args),
                                  figures=args.command == "demo" or args.plots)
            _report(result, f"Trained a VAE on {dataset.name}; wrote:")
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
