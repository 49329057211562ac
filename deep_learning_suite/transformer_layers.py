"""Transformer layers in PyTorch (CS231n assignment 3): positional encoding, multi-head
attention, and a post-norm decoder layer and stack.

Shapes: N sequences, S query positions, T key/value positions, E embedding size, H heads,
E / H features per head. Sequences are batch-first, ``(N, S, E)``. These modules need PyTorch
(``pip install "cs231n-toolkit[torch]"``); the NumPy core does not import them.
"""

import copy
import math
import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal position code of "Attention Is All You Need", then dropout.

    ``pe[t, 2j] = sin(t * 10000^(-2j / E))`` and ``pe[t, 2j + 1] = cos(t * 10000^(-2j / E))``:
    each pair of features turns at its own frequency, so that the code of position ``t + k`` is
    a fixed linear function of the code of ``t``.

    Parameters
    ----------
    embed_dim : int
        E, even.
    dropout : float
        Probability of zeroing an element of the output (training mode only).
    max_len : int
        Longest sequence the table covers.
    """

    def __init__(self, embed_dim, dropout=0.1, max_len=5000):
        super().__init__()
        if embed_dim % 2:
            raise ValueError(f"PositionalEncoding: embed_dim must be even (sin/cos pairs), got {embed_dim}")
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len, dtype=torch.float64)[:, None]
        freq = 10000.0 ** (-torch.arange(0, embed_dim, 2, dtype=torch.float64) / embed_dim)
        pe = torch.zeros(1, max_len, embed_dim, dtype=torch.float64)
        pe[0, :, 0::2] = torch.sin(position * freq)
        pe[0, :, 1::2] = torch.cos(position * freq)
        self.register_buffer("pe", pe.float())

    def forward(self, x):
        """x: (N, S, E) -> (N, S, E)."""
        N, S, E = x.shape
        if S > self.pe.shape[1] or E != self.pe.shape[2]:
            raise ValueError(f"PositionalEncoding: input (N, S, E) = {tuple(x.shape)} needs S <= "
                             f"max_len = {self.pe.shape[1]} and E = {self.pe.shape[2]}")
        return self.dropout(x + self.pe[:, :S].to(x.dtype))


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention in H heads, with optional masking and attention dropout.

    ``Y = proj(concat_h softmax(Q_h K_h^T / sqrt(E / H)) V_h)`` with ``Q, K, V`` the linear
    maps ``query``, ``key``, ``value`` of the three inputs, split into H heads.

    Parameters
    ----------
    embed_dim : int
        E, divisible by ``num_heads``.
    num_heads : int
    dropout : float
        Dropout on the attention weights (training mode only).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.1):
        super().__init__()
        # Checked first: num_heads = 0 would make the divisibility test a ZeroDivisionError.
        for name, value in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"MultiHeadAttention: {name} must be a positive integer, got {value!r}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} must be divisible by "
                             f"num_heads {num_heads}")
        self.key = nn.Linear(embed_dim, embed_dim)
        self.query = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.attn_drop = nn.Dropout(dropout)
        self.n_head = num_heads
        self.head_dim = embed_dim // num_heads

    def forward(self, query, key, value, attn_mask=None):
        """Attend from ``query`` (N, S, E) to ``key`` and ``value`` (N, T, E).

        ``attn_mask`` (S, T), optional: ``attn_mask[i, j]`` 0 (or False) blocks query position
        i from key position j, and nonzero (True) allows it, as in the course; a causal mask is
        ``torch.tril(torch.ones(S, S))``. This is not ``torch.nn.MultiheadAttention``'s
        convention, where True blocks and a float mask is added to the scores (0 = allowed).
        Every query row must allow at least one key. Returns (N, S, E).

        Raises
        ------
        ValueError
            Inputs or mask of the wrong shape, or a mask row that blocks every key (its
            softmax would be over nothing: NaN in the output and the gradients).
        """
        # Cheap shape checks (no data is touched), so that a wrong width is named here rather
        # than surfacing as "mat1 and mat2 shapes cannot be multiplied" inside a Linear.
        width = self.query.in_features
        if query.ndim != 3 or query.shape[2] != width:
            raise ValueError(f"MultiHeadAttention: query must be (N, S, E) with E = embed_dim = {width}, "
                             f"got {tuple(query.shape)}; project the inputs to {width} features first")
        N, S, E = query.shape
        if key.ndim != 3 or key.shape != value.shape or key.shape[0] != N or key.shape[2] != E:
            raise ValueError(f"MultiHeadAttention: query {tuple(query.shape)}, key {tuple(key.shape)} "
                             f"and value {tuple(value.shape)} must be (N, S, E), (N, T, E), (N, T, E)")
        T = value.shape[1]
        if attn_mask is not None:
            attn_mask = torch.as_tensor(attn_mask, device=query.device)     # a NumPy mask works too
            if tuple(attn_mask.shape) != (S, T):
                raise ValueError(f"MultiHeadAttention: attn_mask must be (S, T) = {(S, T)}, got "
                                 f"{tuple(attn_mask.shape)}")
            # A row that allows no key has a softmax over nothing: NaN, silently, in the output
            # and every gradient. Reading the (S, T) mask costs one sync on a GPU. With no key
            # at all (T = 0) nothing is blocked: the output is the projection's bias, not NaN.
            allowed = (attn_mask != 0).any(dim=1)
            if T and not allowed.all():
                rows = (~allowed).nonzero().flatten().tolist()
                shown = f"{rows[:10]}" + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
                raise ValueError(f"MultiHeadAttention: attn_mask allows no key for query row(s) "
                                 f"{shown}, whose attention would be NaN. Here 0 (or False) blocks "
                                 f"and nonzero (True) allows, unlike torch.nn.MultiheadAttention's "
                                 f"masks (True or -inf blocks); a causal mask is "
                                 f"torch.tril(torch.ones(S, S))")
        H, d = self.n_head, self.head_dim
        q = self.query(query).view(N, S, H, d).transpose(1, 2)      # N, H, S, d
        k = self.key(key).view(N, T, H, d).transpose(1, 2)          # N, H, T, d
        v = self.value(value).view(N, T, H, d).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)             # N, H, S, T
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, float("-inf"))
        weights = self.attn_drop(F.softmax(scores, dim=-1))
        return self.proj((weights @ v).transpose(1, 2).reshape(N, S, E))


class TransformerDecoderLayer(nn.Module):
    """Masked self-attention, attention to the memory, and a ReLU feed-forward block, each
    followed by dropout, a residual connection and layer norm (post-norm, as in the paper and
    ``torch.nn.TransformerDecoderLayer``).

    Parameters
    ----------
    input_dim : int
        E.
    num_heads : int
    dim_feedforward : int
        Width of the feed-forward block.
    dropout : float
    """

    def __init__(self, input_dim, num_heads, dim_feedforward=2048, dropout=0.1):
        super().__init__()
        self.self_attn = MultiHeadAttention(input_dim, num_heads, dropout)
        self.multihead_attn = MultiHeadAttention(input_dim, num_heads, dropout)
        self.linear1 = nn.Linear(input_dim, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, input_dim)
        self.norm1 = nn.LayerNorm(input_dim)
        self.norm2 = nn.LayerNorm(input_dim)
        self.norm3 = nn.LayerNorm(input_dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt, memory, tgt_mask=None):
        """tgt (N, T, E), memory (N, S, E), tgt_mask (T, T) -> (N, T, E)."""
        # Named here, as tgt and memory: the attention's own check would call them query and key.
        width = self.linear1.in_features
        for name, x in (("tgt", tgt), ("memory", memory)):
            if x.ndim != 3 or x.shape[2] != width or x.shape[0] != tgt.shape[0]:
                raise ValueError(f"TransformerDecoderLayer: {name} must be (N, *, E) with E = input_dim = "
                                 f"{width} and the same N, got tgt {tuple(tgt.shape)} and memory "
                                 f"{tuple(memory.shape)}")
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(tgt, tgt, tgt, attn_mask=tgt_mask)))
        tgt = self.norm2(tgt + self.dropout2(self.multihead_attn(tgt, memory, memory)))
        ff = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ff))


class TransformerDecoder(nn.Module):
    """``num_layers`` independent copies of ``decoder_layer``, applied in turn."""

    def __init__(self, decoder_layer, num_layers):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers

    def forward(self, tgt, memory, tgt_mask=None):
        for layer in self.layers:
            tgt = layer(tgt, memory, tgt_mask=tgt_mask)
        return tgt
