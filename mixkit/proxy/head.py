"""The output head and its cross-entropy, one row chunk at a time (the proxy's hot path on a CPU).

`head_cross_entropy(h, weight, targets)` equals `F.cross_entropy(h @ weight.T, targets)` without
materialising the (N, V) logits. On a CPU the logits tensor of a tiny proxy (4096 tokens x 4096 vocab,
64 MB) is far bigger than its weights, and reading and writing it (log_softmax, its backward, the
zero-filled NLL gradient) took about half of every step; a chunk that stays in cache removes that
traffic.
"""

from __future__ import annotations

import math

import torch


# Rows of the flattened (B*T, d) hidden state per head/cross-entropy chunk: a 512 x 4096 chunk is 4 MB
# of bf16 logits plus 8 MB of fp32 softmax, within a server CPU's last-level cache. Measured against
# 128, 256 and 1024 rows in alternated rounds on the tiny preset, 512 was 2-4% faster than 256.
HEAD_CHUNK_ROWS = 512

# The head works in base-2 logits (h scaled by log2(e) before the matmul): torch's exp2 measured 3-4x
# faster than its exp on this project's CPU when written (1.5 vs 5.3 ms for 16 chunks of 256 x 4096
# fp32), and the scaling is one pass over the (N, d) hidden state instead of one over the (N, V)
# logits. (With torch 2.13 exp_, which goes to MKL's VML, measured 1.4-1.7x faster than exp2_ on an
# avx512_bf16 Xeon, also under ATen's AVX2 kernels; exp2 stays: it is torch's own vector code on every
# x86 CPU, while VML's speed on AMD CPUs is unmeasured.)
LOG2E = 1.4426950408889634
LN2 = math.log(2)

# The softmax may skip subtracting each row's max when no base-2 logit can exceed this many bits in
# magnitude: every exp2 term then lies in [2^-64, 2^64], so none underflows, a row's sum of up to 2^20
# terms stays below 2^84, and the gradient's 1/(sum * N) stays a normal float. The bound is
# Cauchy-Schwarz, max |h_i| * max |w_j| in bits, checked once per call (past it, the whole call takes
# the usual shifted path). Real proxies stay well below it: 12 bits through the smoke preset, 34 bits after
# 300 steps of tiny (max |h| 10, max |w| 2.3). Skipping the max and its subtraction removes two of
# the five passes over each (rows x V) chunk: in one process, alternated, the head got 8-12% faster
# and a whole training step 7% (tiny) to 11% (smoke) in fp32 under ATen's AVX2 kernels, 3-7% in bf16.
UNSHIFTED_MAX_BITS = 64.0


def _head_ce(h, weight, targets, dtype, chunk_rows, need_grad, token_weights=None, losses_out=None):
    """(loss, dL/dh or None, dL/dweight or None) one row chunk at a time; see _HeadCrossEntropy.

    The loss is the mean over rows, or sum_t token_weights[t] * loss_t when token_weights is given;
    losses_out, when given, receives every row's loss in nats.
    """
    n, vocab = h.shape[0], weight.shape[0]
    h2 = (h * LOG2E).to(dtype)
    wc = weight.to(dtype)
    total = torch.zeros((), dtype=torch.float32, device=h.device)
    grad_h = torch.empty(h.shape, dtype=h.dtype, device=h.device) if need_grad else None
    grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=h.device) if need_grad else None
    # Chunk buffers allocated once: a fresh multi-MB tensor per chunk comes back from the allocator
    # as unmapped pages, and faulting them in cost about as much as the softmax arithmetic.
    width = min(chunk_rows, n)
    raw = torch.empty((width, vocab), dtype=dtype, device=h.device)  # matmul output
    # The softmax runs in fp32. Conversions go through explicit copies into these buffers: a
    # mixed-dtype elementwise op allocates its own converted temporary on every call.
    shifted = raw if dtype == torch.float32 else torch.empty((width, vocab), dtype=torch.float32, device=h.device)
    shift = _needs_max_shift(h2, wc)
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        rows, m, tgt = slice(start, stop), stop - start, targets[start:stop]
        logits = torch.mm(h2[rows], wc.t(), out=raw[:m])  # base-2 logits, (m, V)
        expd = shifted[:m] if shifted is raw else shifted[:m].copy_(logits)
        if shift:
            expd.sub_(expd.amax(dim=1, keepdim=True))
        target_shifted = expd.gather(1, tgt.unsqueeze(1))
        expd.exp2_()
        denom = expd.sum(dim=1, keepdim=True)
        bits = denom.log2() - target_shifted  # (m, 1) per-row loss in bits
        w = None if token_weights is None else token_weights[rows].unsqueeze(1)
        total += bits.sum() if w is None else (bits * w).sum()
        if losses_out is not None:
            losses_out[rows] = bits.squeeze(1) * LN2
        if need_grad:
            e = expd if shifted is raw else raw[:m].copy_(expd)  # the logits are spent: reuse
            _chunk_grads(e, denom, w, n, h[rows], weight, wc, tgt, grad_h[rows], grad_w)
    loss = total * (LN2 / n) if token_weights is None else total * LN2  # back from bits to nats
    return loss, grad_h, None if grad_w is None else grad_w.to(weight.dtype)


def _needs_max_shift(h2: torch.Tensor, wc: torch.Tensor) -> bool:
    """Whether a row's max must be subtracted before exp2 (see UNSHIFTED_MAX_BITS); h2 is in bits.

    Always on a GPU: there the check would cost a device sync and the extra passes little.
    """
    if h2.device.type != "cpu" or h2.shape[0] == 0 or wc.shape[0] > 2**20:
        return True
    bound = h2.float().norm(dim=1).max() * wc.float().norm(dim=1).max()
    return not bool(bound <= UNSHIFTED_MAX_BITS)  # NaN (a diverged run) shifts, as before


def _chunk_grads(e, denom, w, n, h_rows, weight, wc, tgt, grad_h_rows, grad_w):
    """One chunk's rows of dL/dh (written into grad_h_rows) and its share of dL/dweight (added to grad_w).

    dL/dlogits = r * (softmax - onehot) with the row weight r = 1/n (mean) or w_t (token weights):
    scale * e - r * onehot, the per-row scale and the one-hot part applied to the thin (m, d) sides
    of the matmuls, not the (m, V) one. `e` holds the unnormalised exp2 logits in the matmul dtype.
    """
    hf = h_rows.float()
    if w is None:
        scale = 1.0 / (denom * n)
        grad_h_rows.copy_((e @ wc).float().mul_(scale).sub_(weight[tgt].float(), alpha=1.0 / n))
        grad_w += (e.t() @ (hf * scale).to(e.dtype)).float()
        grad_w.index_add_(0, tgt, hf, alpha=-1.0 / n)
        return
    scale = w / denom
    grad_h_rows.copy_((e @ wc).float().mul_(scale).sub_(weight[tgt].float().mul_(w)))
    grad_w += (e.t() @ (hf * scale).to(e.dtype)).float()
    grad_w.index_add_(0, tgt, hf * w, alpha=-1.0)  # not in place: hf may be h itself


class _HeadCrossEntropy(torch.autograd.Function):
    """Cross-entropy of `h @ weight.T` against `targets`, gradients computed in the forward.

    The gradient of the loss w.r.t. a row's logits is r_t * (softmax - onehot), with r_t = 1/N for the
    mean and token_weights[t] for the weighted loss, known as soon as a chunk's softmax is: the
    forward turns each chunk of it straight into that chunk's rows of dL/dh and its share of
    dL/dweight, so nothing of size N x V outlives a chunk. `dtype` is the matmul dtype (bf16 for the
    fast path); the softmax and all accumulations stay in fp32. The token weights are constants (no
    gradient flows to them) and `losses_out` is written in place, outside autograd.
    """

    @staticmethod
    def forward(ctx, h, weight, targets, dtype, chunk_rows, token_weights, losses_out):
        loss, grad_h, grad_w = _head_ce(h, weight, targets, dtype, chunk_rows, True, token_weights, losses_out)
        ctx.save_for_backward(grad_h, grad_w)
        return loss

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_out, grad_w * grad_out, None, None, None, None, None


def _check_per_token(name: str, t: torch.Tensor | None, h: torch.Tensor) -> None:
    if t is None:
        return
    if not isinstance(t, torch.Tensor) or t.shape != h.shape[:1] or t.dtype != torch.float32:
        got = f"{tuple(t.shape)} {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"head_cross_entropy: {name} must be an ({h.shape[0]},) float32 tensor, got {got}")
    if t.device != h.device:
        raise ValueError(f"head_cross_entropy: {name} is on {t.device}, h on {h.device}")
    if t.requires_grad:
        raise ValueError(f"head_cross_entropy: {name} must not require grad (no gradient flows to it)")


def head_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                       dtype: torch.dtype = torch.float32, chunk_rows: int = HEAD_CHUNK_ROWS,
                       token_weights: torch.Tensor | None = None,
                       token_losses_out: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the logits `h @ weight.T` (h: (N, d), weight: (V, d), targets: (N,)).

    Without token_weights: the mean, equal to `F.cross_entropy(h @ weight.T, targets)` (to float
    rounding when dtype is fp32). With token_weights ((N,) float32, non-negative; pass weights summing
    to 1 for a weighted mean): `sum_t token_weights[t] * loss_t`, a constant weighting (no gradient
    reaches the weights). token_losses_out ((N,) float32) is filled with the detached per-row losses
    in nats, `F.cross_entropy(..., reduction="none")`. Neither materialises the (N, V) logits;
    matmuls run in `dtype`, softmax and sums in fp32.
    """
    if h.dim() != 2 or targets.shape != h.shape[:1]:
        raise ValueError(f"head_cross_entropy wants h (N, d) and targets (N,), got {tuple(h.shape)} and "
                         f"{tuple(targets.shape)}")
    _check_per_token("token_weights", token_weights, h)
    _check_per_token("token_losses_out", token_losses_out, h)
    with torch.autocast(device_type=h.device.type, enabled=False):
        if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
            return _HeadCrossEntropy.apply(h, weight, targets, dtype, int(chunk_rows), token_weights,
                                           token_losses_out)
        # Evaluation: the loss alone, no gradient work.
        return _head_ce(h, weight, targets, dtype, int(chunk_rows), False, token_weights, token_losses_out)[0]
