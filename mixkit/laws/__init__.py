"""Laws that predict loss from the mixture, the training steps and the model size.

Every law is a scikit-learn regressor (see :mod:`mixkit.laws.base`); the parametric ones share one
robust fitter (:mod:`mixkit.laws.fitting`): Huber loss on log-loss residuals, L-BFGS-B from many
starts, bootstrap intervals, and a statsmodels-like :class:`FitResult`.
"""

from .base import ParametricLaw
from .bimix import BiMixLaw
from .continual import ContinualMixingLaw, DCPTLaw, critical_proportion
from .domain import ExtrapolationWarning, FittedDomain, hull_distance
from .evaluate import compare_laws, noise_floor, seed_noise_floor
from .fitting import FitResult, FitWarning, Param, robust_fit
from .joint import JointLaw, JointLawSlice
from .mixing import ImplicitMixingLaw, MixingLaw
from .pipeline import NestedPrediction, nested_prediction
from .regression import LightGBMLaw, LinearRegressionLaw, LogLinearLaw
from .scaling import ChinchillaLaw, SizeLaw, StepLaw

__all__ = [
    "BiMixLaw", "ChinchillaLaw", "ContinualMixingLaw", "DCPTLaw", "ExtrapolationWarning", "FitResult", "FitWarning",
    "FittedDomain", "hull_distance",
    "ImplicitMixingLaw", "JointLaw", "JointLawSlice", "LightGBMLaw", "LinearRegressionLaw", "LogLinearLaw", "MixingLaw",
    "NestedPrediction", "Param", "ParametricLaw", "SizeLaw", "StepLaw", "compare_laws",
    "critical_proportion", "nested_prediction", "noise_floor", "robust_fit", "seed_noise_floor",
]
