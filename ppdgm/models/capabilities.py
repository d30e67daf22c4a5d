"""What a model offers beyond being a Pyro model/guide pair, declared on the class.

Tools ask the model, not its class: ``type(model).unsupported`` names the measurements that make
no sense for it, each with the reason a user is told.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["Capabilities"]


class Capabilities:
    """Mixin of ppdgm's models: the measurements a model cannot take, and why.

    ``unsupported`` maps ``"likelihood"`` (an importance-sampled log p(x) from the guide, what
    ``ppdgm evaluate`` estimates) and ``"posterior"`` (the guide's draws as an approximate
    posterior worth diagnosing, what ``ppdgm diagnose`` reports) to the reason, for the models
    that lack them.

    Examples:
        >>> from ppdgm.models import GAN, VAE
        >>> "likelihood" in GAN.unsupported, VAE.unsupported
        (True, {})
    """

    unsupported: ClassVar[dict[str, str]] = {}
