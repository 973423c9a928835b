"""Damped Gauss-Newton (Levenberg-Marquardt) for many small robust fits at once.

The objective is the robust fitter's (:mod:`mixkit.laws.fitting`): the sum of Huber losses of
log-loss residuals. Iteratively reweighted normal equations make each step a weighted least-squares
step; P problems (curves of the nested pipeline, starts of a mixing law, outputs of a bootstrap
replicate) step together as arrays, each keeping only the steps that lower its own objective.
"""

from __future__ import annotations

import numpy as np


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def levenberg_marquardt(fun, jac, z, logy, mask, delta, lower, upper, max_iter, weight=None):
    """Minimise, for each of P problems at once, the sum-Huber objective of log residuals
    ``fun(z, rows) - logy`` over z (P, p) in the box [lower, upper], by damped, reweighted
    Gauss-Newton steps; each problem keeps only steps that lower its objective.

    fun(z, rows) -> (k, n) log predictions and jac(z, rows) -> (k, n, p) their derivatives, for
    the problems `rows`. Returns (z, objective (P,), converged (P,), iterations).
    """
    z = np.clip(np.array(z, dtype=float), lower, upper)
    w0 = mask.astype(float) if weight is None else np.where(mask, weight, 0.0)
    rows_all = np.arange(len(z))
    f, r = _lm_objective(fun(z, rows_all), logy, w0, delta)
    lam, done, it = np.full(len(z), 1e-3), np.zeros(len(z), dtype=bool), 0
    for it in range(1, max_iter + 1):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        z_new = np.clip(z[act] + _lm_step(jac(z[act], act), r[act], w0[act], delta, lam[act]), lower, upper)
        f_new, r_new = _lm_objective(fun(z_new, act), logy[act], w0[act], delta)
        better = f_new < f[act]
        small = f[act] - np.where(better, f_new, f[act]) <= 1e-13 * (1.0 + f[act])
        idx = act[better]
        z[idx], f[idx], r[idx] = z_new[better], f_new[better], r_new[better]
        lam[act] = np.where(better, np.maximum(lam[act] / 3.0, 1e-12), lam[act] * 4.0)
        # Converged: a kept step that no longer lowers the objective, or no step that lowers it at all.
        done[act] = (better & small) | (lam[act] > 1e10)
    return z, f, done.copy(), it


def _lm_objective(lp: np.ndarray, logy: np.ndarray, w: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    r = np.where(w > 0, lp - logy, 0.0)
    f = np.sum(w * huber(r, delta), axis=1)
    return np.where(np.isfinite(f), f, np.inf), np.where(np.isfinite(r), r, 0.0)


def _lm_step(J, r, w0, delta, lam) -> np.ndarray:
    """One reweighted (IRLS for the Huber loss) Levenberg-Marquardt step per problem, (k, p)."""
    absr = np.abs(r)
    w = w0 * np.where(absr <= delta, 1.0, delta / np.maximum(absr, 1e-300))
    p = J.shape[-1]
    H = np.einsum("kn,kni,knj->kij", w, J, J)
    g = np.einsum("kn,kni->ki", w * r, J)
    diag = np.einsum("kii->ki", H)
    H = H + (lam[:, None] * (diag + 1e-12))[:, :, None] * np.eye(p)[None]
    ok = np.isfinite(H).all(axis=(1, 2)) & np.isfinite(g).all(axis=1)
    step = np.zeros_like(g)
    try:
        step[ok] = -np.linalg.solve(H[ok], g[ok][..., None])[..., 0]
    except np.linalg.LinAlgError:
        step[ok] = -np.stack([np.linalg.lstsq(h, gi, rcond=None)[0] for h, gi in zip(H[ok], g[ok])])
    return np.where(np.isfinite(step), step, 0.0)
