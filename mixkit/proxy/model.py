"""A small decoder-only transformer for proxy runs, in one readable file.

Pre-LayerNorm blocks (x + attn(ln(x)), x + mlp(ln(x))), causal self-attention through
F.scaled_dot_product_attention, a GELU MLP of width 4*d, learned position embeddings and an
optionally tied output head.

Training goes through `GPT.loss`, which never builds the (B, T, V) logits: the chunked
`mixkit.proxy.head.head_cross_entropy` computes the output-head matmul, the softmax and the head's
gradients a row chunk at a time. No dropout: proxy runs are short and single-epoch, and dropout
would only add noise to the loss differences between mixtures that the laws are fitted on.

Parameter-count convention (the N of scaling laws, `param_counts(cfg)["non_embedding"]`): every
parameter except the token embedding, the position embedding and, when untied, the output head.
The head is an embedding-sized V x d matrix whether tied or not, so a tied and an untied model of
the same shape have the same N (Kaplan et al. 2020 count N the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from mixkit.proxy.head import HEAD_CHUNK_ROWS, head_cross_entropy


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    context_length: int = 128
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    tie_embeddings: bool = True
    bias: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "d_model", "n_layers", "n_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")


def param_counts(cfg: GPTConfig) -> dict[str, int]:
    """Closed-form parameter counts: {"total", "non_embedding"} (see the module docstring)."""
    d, b = cfg.d_model, int(cfg.bias)
    ln = 2 * d if cfg.bias else d
    attn = d * 3 * d + b * 3 * d + d * d + b * d  # fused qkv projection + output projection
    mlp = d * 4 * d + b * 4 * d + 4 * d * d + b * d
    block = 2 * ln + attn + mlp
    non_embedding = cfg.n_layers * block + ln  # + final LayerNorm
    embedding = cfg.vocab_size * d + cfg.context_length * d
    if not cfg.tie_embeddings:
        embedding += cfg.vocab_size * d
    return {"total": non_embedding + embedding, "non_embedding": non_embedding}


def flops_per_token(cfg: GPTConfig) -> int:
    """Training FLOPs per token: 6 * (matmul params) + the attention-score term (Kaplan et al.).

    The output head is a real V x d matmul even when tied, so it counts here although it is not part
    of N; embedding lookups cost nothing. The attention term counts QK^T and AV over the full
    context, not halved for the causal mask, following Kaplan et al. (2020).
    """
    n_matmul = param_counts(cfg)["non_embedding"] + cfg.vocab_size * cfg.d_model
    return 6 * n_matmul + 6 * cfg.n_layers * cfg.context_length * cfg.d_model


def _layer_norm(d: int, bias: bool) -> nn.LayerNorm:
    return nn.LayerNorm(d, bias=bias)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, head_dim)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # CPU bf16 attention is the slow part of a bf16 step (its backward measured 5x the fp32
            # one at head_dim 16); the attention matmuls are a small share of the FLOPs, so run fp32.
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = _layer_norm(cfg.d_model, cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = _layer_norm(cfg.d_model, cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.context_length, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = _layer_norm(cfg.d_model, cfg.bias)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        # GPT-2 scaling: each residual branch's output projection shrinks with depth so the residual
        # stream's variance does not grow with the number of layers.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) token ids -> the final LayerNorm's output (B, T, C), the head's input."""
        B, T = idx.shape
        if T > self.cfg.context_length:
            raise ValueError(f"sequence length {T} exceeds context_length {self.cfg.context_length}")
        pos = torch.arange(T, device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor, head_dtype: torch.dtype = torch.float32,
             chunk_rows: int = HEAD_CHUNK_ROWS, token_weights: torch.Tensor | None = None,
             token_losses_out: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token cross-entropy without building the logits (the training path).

        The mean, the same value as `forward(idx, targets)[1]`; with token_weights (B*T float32 weights
        in flattened (B, T) order, (B, T) also accepted) `sum_t w_t * loss_t` instead, the weights
        constants. token_losses_out (B*T or contiguous (B, T) float32) receives every token's loss in
        nats, detached. `head_dtype=torch.bfloat16` runs the head matmuls in bf16 (the softmax stays
        fp32). See `mixkit.proxy.head.head_cross_entropy`.
        """
        h = self.hidden(idx)
        flat_weights = None if token_weights is None else token_weights.reshape(-1)
        # view, not reshape: the losses must land in the caller's tensor, never in a silent copy.
        flat_out = None if token_losses_out is None else token_losses_out.view(-1)
        return head_cross_entropy(h.reshape(-1, h.size(-1)), self.head.weight, targets.reshape(-1),
                                  dtype=head_dtype, chunk_rows=chunk_rows, token_weights=flat_weights,
                                  token_losses_out=flat_out)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) token ids -> logits (B, T, V); with targets also the mean cross-entropy."""
        logits = self.head(self.hidden(idx))  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss
