"""``cs231n.style_transfer_pytorch``: the StyleTransfer notebook's losses, feature extraction and
optimisation loop (PyTorch)."""

import torch

from deep_learning_suite.net_visualization import deprocess, preprocess, rescale
from deep_learning_suite.style_transfer import (
    content_loss,
    extract_features,
    features_from_img,
    gram_matrix,
    style_loss,
    style_transfer,
    tv_loss,
)
from deep_learning_suite.utils import rel_error

# The course's module defines this for `.type(dtype)` calls in its notebook.
dtype = torch.FloatTensor

__all__ = [
    "content_loss", "deprocess", "dtype", "extract_features", "features_from_img", "gram_matrix",
    "preprocess", "rel_error", "rescale", "style_loss", "style_transfer", "tv_loss",
]
