import pytest
import torch

from mixkit.proxy.model import GPT, GPTConfig, flops_per_token, param_counts


def _numel(model: torch.nn.Module) -> int:
    # parameters() yields a tied weight once, which is what "total" counts.
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("d,layers,heads,tie,bias", [
    (32, 1, 2, True, True), (64, 2, 4, True, True), (64, 3, 4, False, True), (48, 2, 3, True, False),
    (128, 2, 8, False, False),
])
def test_param_counts_match_the_module(d, layers, heads, tie, bias):
    cfg = GPTConfig(vocab_size=257, context_length=32, d_model=d, n_layers=layers, n_heads=heads,
                    tie_embeddings=tie, bias=bias)
    model = GPT(cfg)
    counts = param_counts(cfg)
    assert counts["total"] == _numel(model)
    embedding = cfg.vocab_size * d * (1 if tie else 2) + cfg.context_length * d
    assert counts["non_embedding"] == counts["total"] - embedding
    non_emb = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("tok_emb", "pos_emb", "head")))
    assert counts["non_embedding"] == non_emb


def test_tiny_size_is_the_feasibility_proxy():
    # d64 x 2 layers: 12 d^2 + 13 d per block plus the final LayerNorm, about 0.1M (DESIGN).
    cfg = GPTConfig(vocab_size=4096, context_length=128, d_model=64, n_layers=2, n_heads=4)
    assert param_counts(cfg)["non_embedding"] == 2 * (12 * 64 * 64 + 13 * 64) + 2 * 64 == 100_096
    assert flops_per_token(cfg) == 6 * (100_096 + 4096 * 64) + 6 * 2 * 128 * 64


def test_forward_shapes_loss_and_causality():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, context_length=16, d_model=32, n_layers=2, n_heads=4)
    model = GPT(cfg).eval()
    x = torch.randint(0, 50, (3, 16))
    logits, loss = model(x, torch.randint(0, 50, (3, 16)))
    assert logits.shape == (3, 16, 50)
    # Near-uniform predictions at init: loss close to ln(V).
    assert abs(loss.item() - torch.log(torch.tensor(50.0)).item()) < 0.2
    x2 = x.clone()
    x2[:, 10:] = (x2[:, 10:] + 1) % 50
    logits2, _ = model(x2)
    assert torch.allclose(logits[:, :10], logits2[:, :10], atol=1e-6), "future tokens leaked into the past"
    assert not torch.allclose(logits[:, 10:], logits2[:, 10:])


def test_tied_head_shares_the_embedding():
    model = GPT(GPTConfig(vocab_size=30, context_length=8, d_model=16, n_layers=1, n_heads=2))
    assert model.head.weight is model.tok_emb.weight
    untied = GPT(GPTConfig(vocab_size=30, context_length=8, d_model=16, n_layers=1, n_heads=2, tie_embeddings=False))
    assert untied.head.weight is not untied.tok_emb.weight


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(vocab_size=10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        GPTConfig(vocab_size=0)
    model = GPT(GPTConfig(vocab_size=10, context_length=4, d_model=8, n_layers=1, n_heads=2))
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, 5, dtype=torch.long))
