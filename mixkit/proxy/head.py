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
# faster than its exp on this project's CPU (1.5 vs 5.3 ms for 16 chunks of 256 x 4096 fp32), and the
# scaling is one pass over the (N, d) hidden state instead of one over the (N, V) logits.
LOG2E = 1.4426950408889634


def _head_ce(h, weight, targets, dtype, chunk_rows, need_grad):
    """(mean loss, dL/dh or None, dL/dweight or None) one row chunk at a time; see _HeadCrossEntropy."""
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
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        rows, m, tgt = slice(start, stop), stop - start, targets[start:stop]
        logits = torch.mm(h2[rows], wc.t(), out=raw[:m])  # base-2 logits, (m, V)
        expd = shifted[:m] if shifted is raw else shifted[:m].copy_(logits)
        expd.sub_(expd.amax(dim=1, keepdim=True))
        target_shifted = expd.gather(1, tgt.unsqueeze(1))
        expd.exp2_()
        denom = expd.sum(dim=1, keepdim=True)
        total += (denom.log2() - target_shifted).sum()
        if need_grad:
            # dL/dlogits = (softmax - onehot) / n = scale * expd - onehot / n, with the per-row scale
            # and the one-hot part applied to the thin (m, d) sides of the matmuls, not the (m, V) one.
            scale = 1.0 / (denom * n)
            e = expd if shifted is raw else raw[:m].copy_(expd)  # the logits are spent: reuse
            hf = h[rows].float()
            grad_h[rows] = (e @ wc).float().mul_(scale).sub_(weight[tgt].float(), alpha=1.0 / n).to(h.dtype)
            grad_w += (e.t() @ (hf * scale).to(dtype)).float()
            grad_w.index_add_(0, tgt, hf, alpha=-1.0 / n)
    loss = total * (math.log(2) / n)  # back from bits to nats
    return loss, grad_h, None if grad_w is None else grad_w.to(weight.dtype)


class _HeadCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of `h @ weight.T` against `targets`, gradients computed in the forward.

    The gradient of a mean cross-entropy w.r.t. the logits is (softmax - onehot) / N, known as soon
    as a chunk's softmax is: the forward turns each chunk of it straight into that chunk's rows of
    dL/dh and its share of dL/dweight, so nothing of size N x V outlives a chunk. `dtype` is the
    matmul dtype (bf16 for the fast path); the softmax and all accumulations stay in fp32.
    """

    @staticmethod
    def forward(ctx, h, weight, targets, dtype, chunk_rows):
        loss, grad_h, grad_w = _head_ce(h, weight, targets, dtype, chunk_rows, need_grad=True)
        ctx.save_for_backward(grad_h, grad_w)
        return loss

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_out, grad_w * grad_out, None, None, None


def head_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                       dtype: torch.dtype = torch.float32, chunk_rows: int = HEAD_CHUNK_ROWS) -> torch.Tensor:
    """Mean cross-entropy of the logits `h @ weight.T` (h: (N, d), weight: (V, d), targets: (N,)).

    Equal to `F.cross_entropy(h @ weight.T, targets)` (to float rounding when dtype is fp32) without
    materialising the (N, V) logits; matmuls run in `dtype`, softmax and sums in fp32.
    """
    if h.dim() != 2 or targets.shape != h.shape[:1]:
        raise ValueError(f"head_cross_entropy wants h (N, d) and targets (N,), got {tuple(h.shape)} and "
                         f"{tuple(targets.shape)}")
    with torch.autocast(device_type=h.device.type, enabled=False):
        if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
            return _HeadCrossEntropy.apply(h, weight, targets, dtype, int(chunk_rows))
        # Evaluation: the loss alone, no gradient work.
        return _head_ce(h, weight, targets, dtype, int(chunk_rows), need_grad=False)[0]
