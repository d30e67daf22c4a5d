"""Live tracking of a run in TensorBoard, through the engine's two callback hooks.

The engine calls ``step_callbacks`` as ``callback(engine, step)`` after every step and
``callbacks`` as ``callback(engine, epoch)`` after every epoch, with ``engine.history`` holding
every step's loss per player and every epoch's means. :class:`TensorBoard` is one such pair; a
tracker for MLflow or Weights & Biases is the same few lines with its own ``log`` call::

    import mlflow

    def log_steps(engine, step):
        for row in engine.history.steps[-len(engine.players):]:
            if row["step"] == step:
                mlflow.log_metric(f"loss/{row['player']}", row["loss"] / row["batch_size"], step)

    Engine(model, guide, loss, config=config, step_callbacks=[log_steps])

``TrainConfig(tensorboard="runs/tb")`` (``ppdgm fit --tensorboard DIR``) attaches a
:class:`TensorBoard` to the engine of any run. It needs the ``tensorboard`` package
(``pip install 'ppdgm[tensorboard]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = ["TensorBoard"]


class TensorBoard:
    """Writes each player's loss per example every step, the epoch means every epoch, and a
    grid of ``num_images`` samples every ``images_every`` epochs (for models with ``sample(n)``
    that draw images).

    Examples:
        >>> import tempfile
        >>> from pyro.infer import Trace_ELBO
        >>> from ppdgm.inference import Engine, TrainConfig
        >>> from ppdgm.models import VAE
        >>> vae = VAE(x_shape=(1, 4, 4), z_dim=2, hidden=(8,))
        >>> tb = TensorBoard(tempfile.mkdtemp(), sample=vae.sample, images_every=1)
        >>> cfg = TrainConfig(epochs=1, batch_size=10, device="cpu", progress=False)
        >>> _ = Engine(vae.model, vae.guide, Trace_ELBO(), config=cfg, callbacks=[tb.on_epoch],
        ...            step_callbacks=[tb.on_step]).fit(torch.rand(20, 1, 4, 4).round())
        >>> tb.close()
    """

    def __init__(self, log_dir: str | Path, *, sample: Any = None, images_every: int = 5,
                 num_images: int = 64) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # torch raises this when the tensorboard package is missing
            raise ImportError("tensorboard: TensorBoard logging needs the tensorboard package "
                              "(pip install 'ppdgm[tensorboard]')") from err
        from .._validation import check_positive_int

        check_positive_int("images_every", images_every)
        check_positive_int("num_images", num_images)
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.sample, self.images_every, self.num_images = sample, images_every, num_images

    def on_step(self, engine: Any, step: int) -> None:
        """Each player's loss per example at ``step`` (the history's rows of that step)."""
        for row in reversed(engine.history.steps):
            if row["step"] != step:
                break
            self.writer.add_scalar(f"loss/{row['player']}", row["loss"] / max(row["batch_size"], 1),
                                   step)

    def on_epoch(self, engine: Any, epoch: int) -> None:
        """The epoch's mean loss per player and, every ``images_every`` epochs, a sample grid."""
        step = engine.history.steps[-1]["step"] if engine.history.steps else 0
        for row in engine.history.epochs:
            if row["epoch"] == epoch:
                self.writer.add_scalar(f"epoch_loss/{row['player']}", row["loss_per_example"], step)
        if self.sample is not None and (epoch + 1) % self.images_every == 0:
            with torch.no_grad():
                images = self.sample(self.num_images)
            if isinstance(images, torch.Tensor) and images.dim() == 4:
                from .._images import image_grid

                self.writer.add_image("samples", image_grid(images.detach().float().clamp(0, 1).cpu(),
                                                            nrow=8), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
