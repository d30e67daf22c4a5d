"""MCMC kernels (``pyro.infer.mcmc.MCMCKernel`` subclasses) that ``pyro.infer.MCMC`` runs."""

from .base import DiscreteKernel, SweepInfo, typed_samples
from .compound import Compound
from .dmala import DMALA
from .gibbs import Gibbs, GibbsPlan, SitePlan, gibbs_plan, gibbs_sweep
from .gwg import GibbsWithGradients
from .hmc_gibbs import HMCGibbs
from .rbm_gibbs import GibbsState, RBMGibbs, gibbs_step, sample_hidden, sample_visible

__all__ = [
    "Compound",
    "DMALA",
    "DiscreteKernel",
    "Gibbs",
    "GibbsWithGradients",
    "GibbsPlan",
    "GibbsState",
    "HMCGibbs",
    "RBMGibbs",
    "SitePlan",
    "SweepInfo",
    "gibbs_plan",
    "gibbs_step",
    "gibbs_sweep",
    "sample_hidden",
    "sample_visible",
    "typed_samples",
]
