"""Token weights and per-token losses of the chunked head equal F.cross_entropy(reduction="none")."""

import pytest
import torch
import torch.nn.functional as F

from mixkit.proxy.head import head_cross_entropy
from mixkit.proxy.model import GPT, GPTConfig


def _problem(seed, n=300, d=24, vocab=97):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g).requires_grad_()
    w = torch.randn(vocab, d, generator=g).requires_grad_()
    t = torch.randint(0, vocab, (n,), generator=g)
    tw = torch.rand(n, generator=g) ** 3  # uneven, some near zero
    return h, w, t, tw / tw.sum()


def _reference(h, w, t, tw):
    per = F.cross_entropy(h @ w.t(), t, reduction="none")
    loss = (per * tw).sum()
    return loss, per, torch.autograd.grad(loss * 2.5, (h, w))


def test_token_weights_and_losses_equal_reduction_none_fp32():
    h, w, t, tw = _problem(0)
    ref, ref_per, (gh, gw) = _reference(h, w, t, tw)
    out_losses = torch.full((300,), float("nan"))
    # 300 rows in chunks of 64: the last chunk is short; a non-unit upstream gradient is scaled through.
    out = head_cross_entropy(h, w, t, chunk_rows=64, token_weights=tw, token_losses_out=out_losses)
    fh, fw = torch.autograd.grad(out * 2.5, (h, w))
    assert abs(out.item() - ref.item()) < 1e-5
    assert torch.allclose(out_losses, ref_per.detach(), atol=1e-5, rtol=1e-5)
    assert torch.allclose(fh, gh, atol=1e-6, rtol=1e-4) and torch.allclose(fw, gw, atol=1e-6, rtol=1e-4)
    # The weighting really changes the loss and its gradient (not the plain mean in disguise).
    mean = F.cross_entropy(h @ w.t(), t)
    assert abs(mean.item() - ref.item()) > 1e-3
    # Evaluation path (no grad): same loss and losses.
    again = torch.zeros(300)
    with torch.no_grad():
        assert abs(head_cross_entropy(h, w, t, chunk_rows=64, token_weights=tw, token_losses_out=again).item()
                   - ref.item()) < 1e-5
    assert torch.equal(again, out_losses)


def test_token_weights_bf16_within_rounding():
    h, w, t, tw = _problem(1, n=700, d=32, vocab=300)
    ref, ref_per, (gh, gw) = _reference(h, w, t, tw)
    out_losses = torch.zeros(700)
    out = head_cross_entropy(h, w, t, dtype=torch.bfloat16, chunk_rows=128, token_weights=tw,
                             token_losses_out=out_losses)
    fh, fw = torch.autograd.grad(out * 2.5, (h, w))
    assert abs(out.item() - ref.item()) < 2e-2 * ref.item()
    assert ((out_losses - ref_per.detach()).abs() / ref_per.detach().abs().clamp(min=1)).max() < 5e-2
    for fast, exact in ((fh, gh), (fw, gw)):
        assert ((fast - exact).norm() / exact.norm()).item() < 2e-2


def test_losses_out_without_weights_keeps_the_mean_bit_identical():
    h, w, t, _ = _problem(2)
    plain = head_cross_entropy(h, w, t, chunk_rows=64)
    ph, pw = torch.autograd.grad(plain, (h, w))
    losses = torch.zeros(300)
    out = head_cross_entropy(h, w, t, chunk_rows=64, token_losses_out=losses)
    oh, ow = torch.autograd.grad(out, (h, w))
    assert torch.equal(plain, out) and torch.equal(ph, oh) and torch.equal(pw, ow)
    assert torch.allclose(losses.mean(), plain.detach(), atol=1e-6)
    # Uniform weights 1/N give the mean (to rounding).
    uni = head_cross_entropy(h, w, t, chunk_rows=64, token_weights=torch.full((300,), 1 / 300))
    assert abs(uni.item() - plain.item()) < 1e-5


def test_gpt_loss_passes_weights_and_losses_through():
    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=120, context_length=16, d_model=32, n_layers=2, n_heads=4))
    x, y = torch.randint(0, 120, (4, 16)), torch.randint(0, 120, (4, 16))
    logits, _ = model(x, y)
    per = F.cross_entropy(logits.view(-1, 120), y.reshape(-1), reduction="none")
    tw = torch.rand(4, 16)
    tw /= tw.sum()
    losses = torch.zeros(4, 16)
    loss = model.loss(x, y, token_weights=tw, token_losses_out=losses)
    assert abs(loss.item() - (per * tw.reshape(-1)).sum().item()) < 1e-5
    assert torch.allclose(losses.reshape(-1), per.detach(), atol=1e-5)
    loss.backward()
    assert model.tok_emb.weight.grad is not None


def test_bad_per_token_tensors_raise():
    h, w, t, tw = _problem(4, n=10)
    with pytest.raises(ValueError, match="token_weights"):
        head_cross_entropy(h, w, t, token_weights=tw[:5])
    with pytest.raises(ValueError, match="token_weights"):
        head_cross_entropy(h, w, t, token_weights=tw.double())
    with pytest.raises(ValueError, match="token_losses_out"):
        head_cross_entropy(h, w, t, token_losses_out=torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="token_weights.*grad"):
        head_cross_entropy(h, w, t, token_weights=tw.clone().requires_grad_())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_token_weights_on_cuda_match_cpu(monkeypatch):
    # Exact fp32 matmuls: a training process on CUDA turns TF32 on for the whole process.
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    h, w, t, tw = _problem(5)
    ref, ref_per, (gh, gw) = _reference(h, w, t, tw)
    hc, wc = h.detach().cuda().requires_grad_(), w.detach().cuda().requires_grad_()
    losses = torch.zeros(300, device="cuda")
    out = head_cross_entropy(hc, wc, t.cuda(), chunk_rows=64, token_weights=tw.cuda(), token_losses_out=losses)
    fh, fw = torch.autograd.grad(out * 2.5, (hc, wc))
    assert abs(out.item() - ref.item()) < 1e-4
    assert torch.allclose(losses.cpu(), ref_per.detach(), atol=1e-4)
    assert torch.allclose(fh.cpu(), gh, atol=1e-5, rtol=1e-3) and torch.allclose(fw.cpu(), gw, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("scale,shifts", [(0.05, False), (0.3, False), (3.0, True), (40.0, True)])
def test_softmax_with_and_without_the_max_shift_matches_reference(scale, shifts):
    # Small logits (every trained proxy so far) skip the row-max subtraction; large ones (up to
    # thousands of nats, which would overflow exp2 unshifted) take the shifted path. Both are exact.
    from mixkit.proxy import head

    g = torch.Generator().manual_seed(6)
    h = torch.randn(260, 16, generator=g).requires_grad_()
    w = (torch.randn(50, 16, generator=g) * scale).requires_grad_()
    t = torch.randint(0, 50, (260,), generator=g)
    assert head._needs_max_shift(h.detach() * head.LOG2E, w.detach()) == shifts
    per = F.cross_entropy(h @ w.t(), t, reduction="none")
    gh, gw = torch.autograd.grad(per.mean(), (h, w))
    losses = torch.zeros(260)
    out = head_cross_entropy(h, w, t, chunk_rows=64, token_losses_out=losses)
    fh, fw = torch.autograd.grad(out, (h, w))
    assert torch.isfinite(out) and abs(out.item() - per.mean().item()) < 1e-5 * max(1.0, per.mean().item())
    assert torch.allclose(losses, per.detach(), atol=1e-4, rtol=1e-5)
    assert torch.allclose(fh, gh, atol=1e-6, rtol=1e-4) and torch.allclose(fw, gw, atol=1e-6, rtol=1e-4)
