"""The fast training path (chunked head cross-entropy, bf16 matmuls) learns what plain fp32 learns."""

import resource
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixkit.mixture import Mixture
from mixkit.proxy.device import keep_freed_memory_mapped
from mixkit.proxy.head import head_cross_entropy
from mixkit.proxy.model import GPT, GPTConfig
from mixkit.proxy import ProxyConfig, train_proxy


def test_chunked_head_matches_full_logits_loss_and_gradients():
    torch.manual_seed(0)
    h = torch.randn(300, 24, requires_grad=True)
    w = torch.randn(97, 24, requires_grad=True)
    t = torch.randint(0, 97, (300,))
    ref = F.cross_entropy(h @ w.t(), t)
    gh, gw = torch.autograd.grad(ref * 2.5, (h, w))
    # 300 rows in chunks of 64: the last chunk is short; a non-unit upstream gradient is scaled through.
    out = head_cross_entropy(h, w, t, chunk_rows=64)
    fh, fw = torch.autograd.grad(out * 2.5, (h, w))
    assert abs(out.item() - ref.item()) < 1e-5
    assert torch.allclose(fh, gh, atol=1e-6, rtol=1e-4) and torch.allclose(fw, gw, atol=1e-6, rtol=1e-4)
    with torch.no_grad():
        assert abs(head_cross_entropy(h, w, t, chunk_rows=64).item() - ref.item()) < 1e-5
    # bf16 matmuls: the loss moves by bf16 rounding only.
    assert abs(head_cross_entropy(h, w, t, dtype=torch.bfloat16).item() - ref.item()) < 0.05 * ref.item()


def test_model_loss_equals_forward_loss():
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=120, context_length=16, d_model=32, n_layers=2, n_heads=4))
    x, y = torch.randint(0, 120, (4, 16)), torch.randint(0, 120, (4, 16))
    _, ref = model(x, y)
    assert abs(model.loss(x, y).item() - ref.item()) < 1e-5


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="head_cross_entropy"):
        head_cross_entropy(torch.randn(2, 3, 4), torch.randn(5, 4), torch.zeros(6, dtype=torch.long))


FAST = dict(context_length=64, batch_size=32, steps=150, eval_every=150, eval_tokens=4096, lr=1e-2,
            device="cpu", threads=1)


def _final_mean_loss(data, mix, precision, seed):
    res = train_proxy(ProxyConfig.preset("smoke", precision=precision, seed=seed, **FAST), mix, data,
                      progress=False)
    assert res.precision == precision
    return float(np.mean(list(res.final_losses.values())))


# Seven short runs: about a minute on an idle 2-core box (several under load).
@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="this CPU has no bf16 matmuls")
def test_bf16_fast_path_final_loss_within_seed_noise_of_fp32(token_data):
    mix = Mixture({d: 1 / len(token_data.domains) for d in token_data.domains}, domains=token_data.domains)
    seeds = (0, 1, 2)
    fp32 = np.array([_final_mean_loss(token_data, mix, "fp32", s) for s in seeds])
    bf16 = np.array([_final_mean_loss(token_data, mix, "bf16", s) for s in seeds])
    # Both actually learned (a uniform guess over 4096 tokens is ln 4096 = 8.3 nats).
    assert fp32.max() < 7.0 and bf16.max() < 7.0
    spread = max(fp32.std(ddof=1), bf16.std(ddof=1), 0.01)
    assert abs(bf16.mean() - fp32.mean()) < spread, (fp32, bf16)
    # Same seed, same curve on the fast path too.
    assert _final_mean_loss(token_data, mix, "bf16", 0) == bf16[0]


def test_bf16_head_gradients_close_to_fp32():
    # The bf16 path rounds the matmul inputs and the softmax weights; its gradients must stay within
    # bf16 rounding (a few per mille) of the exact ones, for peaked and for flat softmaxes alike.
    torch.manual_seed(2)
    for scale in (0.02, 0.5):
        h = torch.randn(700, 32, requires_grad=True)
        w = (torch.randn(300, 32) * scale).requires_grad_()
        t = torch.randint(0, 300, (700,))
        ref = F.cross_entropy(h @ w.t(), t)
        gh, gw = torch.autograd.grad(ref, (h, w))
        out = head_cross_entropy(h, w, t, dtype=torch.bfloat16, chunk_rows=128)
        fh, fw = torch.autograd.grad(out, (h, w))
        assert abs(out.item() - ref.item()) < 2e-3 * ref.item()
        for fast, exact in ((fh, gh), (fw, gw)):
            assert ((fast - exact).norm() / exact.norm()).item() < 2e-2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_freed_activations_do_not_fault_pages_again():
    # What keep_freed_memory_mapped is for: a training step frees and reallocates multi-MB tensors;
    # without it each reallocation maps fresh pages that the kernel zero-fills (measured 14,333 page
    # faults for these 20 allocations; with it usually 0, once in a while one 4 MB stretch, 1,024).
    assert keep_freed_memory_mapped()
    torch.empty(2 << 20).fill_(1.0)  # 8 MB, allocated once so the heap has grown to fit it
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        torch.empty(2 << 20).fill_(1.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 4000, faults
