"""Likelihood estimators that anneal: AIS over any Pyro program's latents, the BDMC sandwich, and
the likelihood of any decoder under a Gaussian observation model."""

from .annealing import Annealing, sigmoid_schedule
from .bidirectional import BDMCResult, bdmc
from .decoder import DecoderLikelihood, decoder_log_likelihood, gaussian_decoder_model
from .marginal import AISEstimate, ais_log_marginal

__all__ = ["AISEstimate", "Annealing", "BDMCResult", "DecoderLikelihood", "ais_log_marginal",
           "bdmc", "decoder_log_likelihood", "gaussian_decoder_model", "sigmoid_schedule"]
