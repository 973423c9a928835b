"""BiMix (Ge et al. 2024, "BiMix: A Bivariate Data Mixing Law for Language Model Pretraining").

Each validation domain i is paired with the training domain i of the same data; its loss is a
joint function of that domain's proportion r_i and the training steps s.

form="full" (the bivariate law, as recalled):  ``L_i(s, r_i) = A_i / r_i^a_i * (B_i / s^b_i + C_i)``
form="power" (fixed step count):               ``L_i(r_i)    = F_i * r_i^-a_i``

UNVERIFIED: we could not check the full form against the paper's text from this workplace; it is
implemented as recalled in the project's design notes and kept pluggable (``form=``). In the full
form only the products A_i B_i and A_i C_i are identifiable, so A_i is absorbed: the fitted
parameters are a, B, b, C with A_i = 1. The power form is the reduction other implementations use
at a fixed number of steps.

Inputs: form="power": X (n, d) proportions, y (n, d), output i <-> column i of X.
form="full": X (n, 1 + d) whose first column is the step count and the rest the proportions,
y (n, d). Proportions must be > 0 (the law diverges at r_i = 0).

What of the mixture laws' input checks applies: each proportion finite and in (0, 1], and steps
positive, errors naming the row. Not the sum to one: output i reads column i alone, so a row
holds independent shares (often some domains of a mixture, or every domain at the same share r
to draw each domain's curve), and [0.6, 0.6] predicts each domain at share 0.6 as meant.
"""

from __future__ import annotations

import numpy as np

from .base import ParametricLaw
from .fitting import Param

FORMS = ("full", "power")


class BiMixLaw(ParametricLaw):
    """Per-domain BiMix law; see the module docstring for the forms and their caveat."""

    _input_rule = "BiMix proportions must be in (0, 1] (the law diverges at r_i = 0) and steps positive"

    def __init__(self, form: str = "power", n_starts: int = 16, huber_delta: float = 1e-3, bootstrap: int = 0,
                 random_state=None, bounds=None, max_iter: int = 2000):
        self.form = form
        super().__init__(n_starts=n_starts, huber_delta=huber_delta, bootstrap=bootstrap,
                         random_state=random_state, bounds=bounds, max_iter=max_iter)

    def _check_form(self) -> None:
        if self.form not in FORMS:
            raise ValueError(f"unknown BiMix form {self.form!r}; choose one of {FORMS}")

    def _check_inputs(self, X):
        self._check_form()
        arr = super()._check_inputs(X)
        props = arr[:, 1:] if self.form == "full" else arr
        if self.form == "full" and arr.shape[1] < 2:
            raise ValueError("BiMix form='full' needs X = [steps, r_1, ..., r_d] (at least 2 columns)")
        rows = np.flatnonzero(((props <= 0) | (props > 1 + 1e-9)).any(axis=1))
        if rows.size:
            raise ValueError(f"BiMix proportions must be in (0, 1]: the law diverges at r_i = 0; row {rows[0]} of X "
                             f"is {arr[rows[0]].tolist()} ({rows.size} such row(s))")
        rows = np.flatnonzero(arr[:, 0] <= 0) if self.form == "full" else []
        if len(rows):
            raise ValueError(f"BiMix steps (first column of X) must be positive; row {rows[0]} of X is "
                             f"{arr[rows[0]].tolist()}")
        return arr

    def _check_outputs(self, X, Y):
        d = X.shape[1] - (1 if self.form == "full" else 0)
        if Y.shape[1] != d:
            raise ValueError(
                f"BiMix pairs validation domain i with training domain i: y has {Y.shape[1]} column(s) "
                f"but X has {d} proportion column(s)"
            )

    def _output_X(self, X, j):
        if self.form == "full":
            return X[:, [0, j + 1]]  # (steps, r_j)
        return X[:, [j]]

    def _param_specs(self, X, y):
        ymin = float(np.min(y))
        if self.form == "power":
            return [Param("F", tuple(ymin * f for f in (0.5, 1.0, 2.0)), log=True), Param("a", (0.0, 0.1, 0.5))]
        return [
            Param("a", (0.0, 0.1, 0.5)),
            Param("B", tuple(float(np.exp(v)) for v in (-1.0, 2.0, 5.0, 8.0)), log=True),
            Param("b", (0.1, 0.3, 0.6, 1.0), bounds=(0.0, 10.0)),
            Param("C", tuple(ymin * f for f in (0.3, 0.6, 0.9)), log=True),
        ]

    def _starts(self, X, y):
        if self.form == "power":
            slope, icpt = np.polyfit(np.log(X[:, 0]), np.log(y), 1)
            return [np.array([np.exp(icpt), -slope])]
        return []

    def _log_predict(self, theta, X):
        if self.form == "power":
            F, a = theta
            return np.log(F) - a * np.log(X[:, 0])
        a, B, b, C = theta
        s, r = X[:, 0], X[:, 1]
        return -a * np.log(r) + np.log(B * s ** (-b) + C)

    def _log_jac(self, theta, X):
        if self.form == "power":
            F, a = theta
            return np.column_stack([np.full(len(X), 1.0 / F), -np.log(X[:, 0])])
        a, B, b, C = theta
        s, r = X[:, 0], X[:, 1]
        sb = s ** (-b)
        inner = B * sb + C
        return np.column_stack([-np.log(r), sb / inner, -B * sb * np.log(s) / inner, 1.0 / inner])
