"""``VisionTransformer``: image classification with a Transformer encoder over patches, in
PyTorch (the 2025 CS231n assignment 3, after Dosovitskiy et al., "An Image is Worth 16x16
Words").

Architecture, for images ``(N, C, H, W)`` and patches of P x P pixels::

    patch_embed: patches -> linear                 (N, L, D)  L = (H / P) * (W / P)
    + sinusoidal positional encoding, dropout      (N, L, D)
    num_layers x TransformerEncoderLayer           (N, L, D)  every patch sees every patch
    mean over the L patches                        (N, D)
    head (linear) -> class scores                  (N, num_classes)

There is no class token: the scores come from the average of the patch vectors, as in the
course. Needs PyTorch.
"""

import torch.nn as nn

from ._validate import check_int
from .transformer_layers import (PatchEmbedding, PositionalEncoding, TransformerEncoder, TransformerEncoderLayer,
                                 init_course_weights)


class VisionTransformer(nn.Module):
    """Classify images from their sequence of patches.

    The constructor and its defaults are the course's, and its modules are made in the
    course's order and then initialised as the course does (every ``nn.Linear`` weight
    N(0, 0.02) with zero bias, layer norms at 1 and 0), so that a seeded construction draws
    the course's weights.

    Parameters
    ----------
    img_size : int, default 32
        Height and width of the (square) images; a multiple of ``patch_size``.
    patch_size : int, default 8
        P.
    in_channels : int, default 3
        C.
    embed_dim : int, default 128
        D, the model width; even (sin/cos pairs) and divisible by ``num_heads``.
    num_layers : int, default 6
        Encoder layers.
    num_heads : int, default 4
    dim_feedforward : int, default 256
        Hidden width of each layer's feed-forward block (GELU).
    num_classes : int, default 10
    dropout : float, default 0.1
        On the positions, the attention weights and in each block (training mode only).
    """

    def __init__(self, img_size=32, patch_size=8, in_channels=3, embed_dim=128, num_layers=6,
                 num_heads=4, dim_feedforward=256, num_classes=10, dropout=0.1):
        super().__init__()
        # Checked before any layer is made (nn.Linear takes 0 outputs without complaint).
        self.num_classes = check_int("VisionTransformer", "num_classes", num_classes, 1)
        num_layers = check_int("VisionTransformer", "num_layers", num_layers, 1)
        self.patch_embed = PatchEmbedding(img_size, patch_size, in_channels, embed_dim)
        self.positional_encoding = PositionalEncoding(embed_dim, dropout=dropout)
        layer = TransformerEncoderLayer(embed_dim, num_heads, dim_feedforward, dropout)
        self.transformer = TransformerEncoder(layer, num_layers=num_layers)
        self.head = nn.Linear(embed_dim, num_classes)
        # Unlike CaptioningTransformer, the course initialises after the head is made, so the
        # head's weights are N(0, 0.02) too and the first scores are all near zero.
        self.apply(init_course_weights)

    def forward(self, x):
        """Class scores.

        Parameters
        ----------
        x : tensor, (N, C, H, W), H and W multiples of ``patch_size``

        Returns
        -------
        logits : tensor, (N, num_classes), unnormalised (for ``nn.CrossEntropyLoss``)
        """
        patches = self.positional_encoding(self.patch_embed(x))
        return self.head(self.transformer(patches).mean(dim=1))
