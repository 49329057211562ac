"""Transformer layers in PyTorch (CS231n assignment 3): positional encoding, multi-head
attention, the feed-forward block, post-norm decoder and encoder layers and their stacks, and
the Vision Transformer's patch embedding.

Shapes: N sequences, S query positions, T key/value positions, E embedding size, H heads,
E / H features per head. Sequences are batch-first, ``(N, S, E)``. These modules need PyTorch
(``pip install "cs231n-toolkit[torch]"``); the NumPy core does not import them.

Submodules are made in the order, and under the names, of the 2025 course's files, so that a
seeded construction draws the course's weights and its ``state_dict`` keys are the course's.
"""

import copy
import math
import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validate import check_int


def init_course_weights(module):
    """The course's ``_init_weights``, for ``model.apply``: every ``nn.Linear`` and
    ``nn.Embedding`` weight N(0, 0.02) and ``nn.Linear`` bias 0, layer norms at weight 1, bias 0.

    Small normal weights (std 0.02, as GPT-2) keep the residual stream O(1) at the start. An
    embedding's padding row is drawn like the others, as in the 2025 course (zeroing it changes
    a seeded model's scores); ``padding_idx`` still keeps its gradient at zero.
    """
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)


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


class FeedForwardNetwork(nn.Module):
    """The position-wise feed-forward block: ``fc2(dropout(gelu(fc1(x))))``.

    GELU, as the 2025 course's ``FeedForwardNetwork`` (the 2023 and 2024 decoders used ReLU,
    as "Attention Is All You Need"); the 2025 notebook's reference numbers need GELU.

    Parameters
    ----------
    embed_dim : int
        E, the width of the input and output.
    ffn_dim : int
        The hidden width.
    dropout : float
        Dropout on the hidden activations (training mode only).
    """

    def __init__(self, embed_dim, ffn_dim, dropout=0.1):
        super().__init__()
        embed_dim = check_int("FeedForwardNetwork", "embed_dim", embed_dim, 1)
        ffn_dim = check_int("FeedForwardNetwork", "ffn_dim", ffn_dim, 1)
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.gelu = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)

    def forward(self, x):
        """x: (..., E) -> (..., E), each position on its own."""
        width = self.fc1.in_features
        if x.ndim < 1 or x.shape[-1] != width:
            raise ValueError(f"FeedForwardNetwork: input must be (..., E) with E = embed_dim = {width}, "
                             f"got {tuple(x.shape)}")
        return self.fc2(self.dropout(self.gelu(self.fc1(x))))


def _check_sequence(who, name, x, width, batch=None):
    # Named here, as the layer's own argument: the attention's check would call it the query.
    if x.ndim != 3 or x.shape[2] != width or (batch is not None and x.shape[0] != batch):
        same_n = "" if batch is None else f" and the same N as tgt, {batch}"
        raise ValueError(f"{who}: {name} must be (N, *, E) with E = input_dim = {width}{same_n}, "
                         f"got {name} {tuple(x.shape)}")


class TransformerDecoderLayer(nn.Module):
    """Masked self-attention, cross-attention to the memory, and a feed-forward block, each
    followed by dropout, a residual connection and layer norm (post-norm, as in the paper and
    ``torch.nn.TransformerDecoderLayer``)::

        tgt = norm_self(tgt + dropout_self(self_attn(tgt, tgt, tgt, tgt_mask)))
        tgt = norm_cross(tgt + dropout_cross(cross_attn(tgt, memory, memory)))
        tgt = norm_ffn(tgt + dropout_ffn(ffn(tgt)))

    The feed-forward block uses GELU, as the 2025 course does (:class:`FeedForwardNetwork`);
    the 2023 and 2024 courses' decoder used ReLU. With ``activation="gelu"``,
    ``torch.nn.TransformerDecoderLayer`` computes the same function.

    Parameters
    ----------
    input_dim : int
        E.
    num_heads : int
    dim_feedforward : int
        Hidden width of the feed-forward block.
    dropout : float
    """

    def __init__(self, input_dim, num_heads, dim_feedforward=2048, dropout=0.1):
        super().__init__()
        self.self_attn = MultiHeadAttention(input_dim, num_heads, dropout)
        self.cross_attn = MultiHeadAttention(input_dim, num_heads, dropout)
        self.ffn = FeedForwardNetwork(input_dim, dim_feedforward, dropout)
        self.norm_self = nn.LayerNorm(input_dim)
        self.norm_cross = nn.LayerNorm(input_dim)
        self.norm_ffn = nn.LayerNorm(input_dim)
        self.dropout_self = nn.Dropout(dropout)
        self.dropout_cross = nn.Dropout(dropout)
        self.dropout_ffn = nn.Dropout(dropout)

    def forward(self, tgt, memory, tgt_mask=None):
        """Decode ``tgt`` attending to ``memory``.

        Parameters
        ----------
        tgt : tensor, (N, T, E)
        memory : tensor, (N, S, E), e.g. the encoded image
        tgt_mask : tensor or ndarray, (T, T), optional
            0 (False) blocks and nonzero (True) allows, as :class:`MultiHeadAttention` reads it;
            a causal mask is ``torch.tril(torch.ones(T, T))``.

        Returns
        -------
        out : tensor, (N, T, E)
        """
        width = self.self_attn.query.in_features
        _check_sequence("TransformerDecoderLayer", "tgt", tgt, width)
        _check_sequence("TransformerDecoderLayer", "memory", memory, width, batch=tgt.shape[0])
        tgt = self.norm_self(tgt + self.dropout_self(self.self_attn(tgt, tgt, tgt, attn_mask=tgt_mask)))
        tgt = self.norm_cross(tgt + self.dropout_cross(self.cross_attn(tgt, memory, memory)))
        return self.norm_ffn(tgt + self.dropout_ffn(self.ffn(tgt)))


class TransformerEncoderLayer(nn.Module):
    """Self-attention and a feed-forward block, each followed by dropout, a residual
    connection and layer norm (post-norm, as ``torch.nn.TransformerEncoderLayer``)::

        src = norm_self(src + dropout_self(self_attn(src, src, src, src_mask)))
        src = norm_ffn(src + dropout_ffn(ffn(src)))

    The Vision Transformer's layer (2025 course). The feed-forward block uses GELU; with
    ``activation="gelu"``, ``torch.nn.TransformerEncoderLayer`` computes the same function.

    Parameters
    ----------
    input_dim : int
        E.
    num_heads : int
    dim_feedforward : int
        Hidden width of the feed-forward block.
    dropout : float
    """

    def __init__(self, input_dim, num_heads, dim_feedforward=2048, dropout=0.1):
        super().__init__()
        self.self_attn = MultiHeadAttention(input_dim, num_heads, dropout)
        self.ffn = FeedForwardNetwork(input_dim, dim_feedforward, dropout)
        self.norm_self = nn.LayerNorm(input_dim)
        self.norm_ffn = nn.LayerNorm(input_dim)
        self.dropout_self = nn.Dropout(dropout)
        self.dropout_ffn = nn.Dropout(dropout)

    def forward(self, src, src_mask=None):
        """Encode ``src``.

        Parameters
        ----------
        src : tensor, (N, S, E)
        src_mask : tensor or ndarray, (S, S), optional
            0 (False) blocks and nonzero (True) allows, as :class:`MultiHeadAttention` reads it.
            A ViT lets every patch attend to every other, and passes none.

        Returns
        -------
        out : tensor, (N, S, E)
        """
        _check_sequence("TransformerEncoderLayer", "src", src, self.self_attn.query.in_features)
        src = self.norm_self(src + self.dropout_self(self.self_attn(src, src, src, attn_mask=src_mask)))
        return self.norm_ffn(src + self.dropout_ffn(self.ffn(src)))


class TransformerDecoder(nn.Module):
    """``num_layers`` independent copies of ``decoder_layer``, applied in turn."""

    def __init__(self, decoder_layer, num_layers):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers

    def forward(self, tgt, memory, tgt_mask=None):
        """tgt (N, T, E), memory (N, S, E), tgt_mask (T, T) -> (N, T, E)."""
        for layer in self.layers:
            tgt = layer(tgt, memory, tgt_mask=tgt_mask)
        return tgt


class TransformerEncoder(nn.Module):
    """``num_layers`` independent copies of ``encoder_layer``, applied in turn."""

    def __init__(self, encoder_layer, num_layers):
        super().__init__()
        self.layers = nn.ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers

    def forward(self, src, src_mask=None):
        """src (N, S, E), src_mask (S, S) -> (N, S, E)."""
        for layer in self.layers:
            src = layer(src, src_mask=src_mask)
        return src


class PatchEmbedding(nn.Module):
    """Cut images into non-overlapping P x P patches and project each to a D-vector (the
    Vision Transformer's input layer).

    Each patch is flattened in (C, P, P) order, as the course's, and patches are taken row by
    row: patch ``i * (W / P) + j`` covers rows ``i*P .. i*P + P - 1`` and columns
    ``j*P .. j*P + P - 1``.

    Parameters
    ----------
    img_size : int
        Height and width of the (square) images the model is built for; a multiple of
        ``patch_size``. It sets ``num_patches``; other sizes that are multiples of
        ``patch_size`` are embedded too, into ``(H / P) * (W / P)`` patches.
    patch_size : int
        P.
    in_channels : int
        C, 3 for RGB.
    embed_dim : int
        D.

    Attributes
    ----------
    num_patches : int, ``(img_size // patch_size) ** 2``
    patch_dim : int, ``C * P * P``
    proj : nn.Linear, (patch_dim -> D)
    """

    def __init__(self, img_size, patch_size, in_channels=3, embed_dim=128):
        super().__init__()
        who = "PatchEmbedding"
        self.img_size = check_int(who, "img_size", img_size, 1)
        self.patch_size = check_int(who, "patch_size", patch_size, 1)
        self.in_channels = check_int(who, "in_channels", in_channels, 1)
        self.embed_dim = check_int(who, "embed_dim", embed_dim, 1)
        if self.img_size % self.patch_size:
            raise ValueError(f"{who}: img_size {img_size} is not a multiple of patch_size {patch_size}; "
                             f"pick a patch size that divides the image size")
        self.num_patches = (self.img_size // self.patch_size) ** 2
        self.patch_dim = self.patch_size * self.patch_size * self.in_channels
        self.proj = nn.Linear(self.patch_dim, self.embed_dim)

    def forward(self, x):
        """x: (N, C, H, W) -> (N, (H / P) * (W / P), D).

        Raises
        ------
        ValueError
            ``x`` is not 4-D with C = ``in_channels`` (e.g. channels-last images), or H or W
            is not a multiple of the patch size.
        """
        C, P = self.in_channels, self.patch_size
        if x.ndim != 4 or x.shape[1] != C:
            raise ValueError(f"PatchEmbedding: x must be (N, C, H, W) with C = in_channels = {C}, "
                             f"got {tuple(x.shape)}; channels-last images need x.permute(0, 3, 1, 2)")
        N, _, H, W = x.shape
        if H % P or W % P:
            raise ValueError(f"PatchEmbedding: image height and width must be multiples of the "
                             f"patch size {P}, got H = {H}, W = {W}; crop or pad the images")
        patches = x.reshape(N, C, H // P, P, W // P, P).permute(0, 2, 4, 1, 3, 5)
        return self.proj(patches.reshape(N, (H // P) * (W // P), self.patch_dim))
