"""The published numbers that mixkit's laws are checked against on the papers' own runs.

One home for them: notebook 05, its test, tests/test_peer_laws.py and bench/law_accuracy.py read
them from here. This module is data: it imports nothing of mixkit. Each group names its source (the
paper and the released file); all of them are listed in the reference table of the peer-data
README (``../shared/peer-data/README.md``). How close a fit must come is the tests' business, not
this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class SLDReference:
    """Explicit mixing law ``L_i(r) = c_i + k_i exp(sum_j t_ij r_j)`` on the 5Mix runs at step 30k,
    fitted per model size on SLD's train mixtures and scored on its eval mixtures; the overall loss
    is the Pile-valid-weighted sum of the five group losses."""

    source: str
    n_train: int  # train mixtures per model size
    n_eval: int  # held-out (eval) mixtures per model size
    overall_mae: Mapping[str, float]  # held-out MAE of the overall Pile loss, per model size label
    rel_error_range: tuple[float, float]  # per-domain relative error on the held-out mixtures


@dataclass(frozen=True)
class ContinualReference:
    """Continual pretraining of Pythia-70M on Pile : Python, Pile loss ``L(r) = c + exp(k r + b)``
    over the Pile share r."""

    source: str
    step: int  # the step the law is fitted at
    fit_shares: tuple[float, ...]  # Pile shares of the runs the law is fitted on
    check_share: float  # Pile share of the authors' check run (held out)
    base_loss: float  # Pile-valid-weighted loss of the base model before continual pretraining
    critical_share: float  # smallest Pile share whose predicted loss stays at base_loss
    check_gap: float  # |check run's Pile loss - base_loss|


@dataclass(frozen=True)
class RegMixReference:
    """Regression of the Pile-CC validation loss on the 17 domain weights, fitted on the 1M-parameter
    training proxies, Spearman rank correlation on the unseen test mixtures."""

    source: str
    n_train: int  # 1M training proxies
    n_test: int  # unseen test mixtures (the same mixtures at 1M and at 60M)
    spearman: Mapping[tuple[str, str], float]  # (law, scale) -> Spearman, fitted on all n_train runs
    loglinear_spearman_64runs: float  # log-linear law fitted on 64 runs, scored at 1M


@dataclass(frozen=True)
class ChinchillaReference:
    """``L = E + A/N^a + B/D^b`` fitted with a Huber loss on log-loss residuals, L-BFGS from a grid."""

    source: str
    dropped_highest_loss: int  # the highest-loss points left out of the fit
    huber_delta: float
    params: Mapping[str, float]  # the fitted E, A, B, a, b


SLD = SLDReference(
    source="Ye et al. 2024, Data Mixing Laws, 5Mix runs at step 30k as packaged by "
           "github.com/linhaowei1/SLD (sld/all_models_data.json); peer-data README reference table",
    n_train=20,
    n_eval=6,
    overall_mae=MappingProxyType({"70M": 0.0110, "160M": 0.0092, "305M": 0.0103, "410M": 0.0099}),
    rel_error_range=(0.009, 0.014),
)

CONTINUAL = ContinualReference(
    source="Ye et al. 2024, Data Mixing Laws, continual pretraining section; runs in "
           "github.com/yegcjs/mixinglaws data/ct (mixinglaws/ct/70M.txt); peer-data README",
    step=10_000,
    fit_shares=(0.125, 0.25, 0.375, 0.5),
    check_share=0.28515625,
    base_loss=2.8734,
    critical_share=0.286,
    check_gap=0.0013,
)

REGMIX = RegMixReference(
    source="Liu et al. 2024, RegMix; runs in github.com/sail-sg/regmix data/ "
           "(train_*_1m.csv, test_*_1m.csv, test_*_60m.csv); peer-data README reference table",
    n_train=512,
    n_test=256,
    spearman=MappingProxyType({
        ("lightgbm", "1m"): 0.990,
        ("lightgbm", "60m"): 0.986,
        ("linear", "1m"): 0.902,
        ("linear", "60m"): 0.893,
    }),
    loglinear_spearman_64runs=0.93,
)

CHINCHILLA = ChinchillaReference(
    source="Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt (Epoch AI), on the points "
           "of Hoffmann et al. 2022 Fig. 4 (github.com/epoch-research/analyzing-chinchilla "
           "data/svg_extracted_data.csv); peer-data README reference table",
    dropped_highest_loss=5,
    huber_delta=1e-3,
    params=MappingProxyType({"E": 1.817, "A": 482.0, "B": 2085.4, "a": 0.3478, "b": 0.3658}),
)


@dataclass(frozen=True)
class ModelSizes:
    """Non-embedding parameter counts (the N of scaling laws) of named model sizes."""

    source: str
    non_embedding: Mapping[str, int]  # size label as the releases name it ("70M") -> N
    derived: tuple[str, ...] = ()  # labels computed from an architecture rather than copied from a table


# Pythia (Biderman et al. 2023, Table 1; the same table is on every Pythia model card on the Hugging Face
# hub). Ye et al.'s runs use the Pythia architecture and name their sizes after Pythia's. 305M is not a
# Pythia size: it is computed here for GPT-NeoX with 16 layers of width 1024 (12 d^2 + 13 d per layer plus
# the final layer norm 2 d), the only Pythia-shaped model whose total with untied 50,304-token embeddings
# (2 x 50,304 x 1024) is 305M (304,564,224); the same formula gives every Pythia entry of the table exactly.
PYTHIA = ModelSizes(
    source="Biderman et al. 2023, Pythia, Table 1 (non-embedding parameters); 305M derived as documented",
    non_embedding=MappingProxyType({
        "70M": 18_915_328,
        "160M": 85_056_000,
        "305M": 201_541_632,
        "410M": 302_311_424,
        "1B": 805_736_448,
        "1.4B": 1_208_602_624,
        "2.8B": 2_517_652_480,
        "6.9B": 6_444_163_072,
        "12B": 11_327_027_200,
    }),
    derived=("305M",),
)
