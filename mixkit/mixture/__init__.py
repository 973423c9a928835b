"""Mixtures and the designs that generate them.

weights (the `Mixture` value: validated weights over named domains) -> designs (uniform, natural,
grid, RegMix's Dirichlet with the kit's one Dirichlet sampler), entropy (BiMix's training-free
mixtures from token entropy) and phased (a run's mixture changing at fixed fractions of the run).
"""

from mixkit.mixture.designs import dirichlet, grid, natural, sample_dirichlet, tempered_prior, uniform
from mixkit.mixture.entropy import conditional_entropy, domain_entropy, entropy_mixture, unigram_entropy
from mixkit.mixture.phased import Phased
from mixkit.mixture.weights import Mixture

__all__ = ["Mixture", "Phased", "conditional_entropy", "dirichlet", "domain_entropy", "entropy_mixture", "grid",
           "natural", "sample_dirichlet", "tempered_prior", "uniform", "unigram_entropy"]
