"""``cs231n.clip_dino``: CLIP zero-shot classification and retrieval, DINO segmentation on DAVIS.

``DavisDataset(load=False)`` processes frames and masks without ``tensorflow-datasets``.
"""

from deep_learning_suite import clip_dino as _clip_dino
from deep_learning_suite.clip_dino import (
    CLIPImageRetriever,
    DavisDataset,
    DINOSegmentation,
    clip_zero_shot_classifier,
    compute_iou,
    create_segmentation_overlay,
    get_similarity_no_loop,
)

# The toolkit's own object (OpenAI's package, or a stand-in that says how to install it), so
# that patching ``cs231n.clip_dino.clip.tokenize`` patches the tokenizer the functions call.
clip = _clip_dino.clip

__all__ = [
    "get_similarity_no_loop", "clip_zero_shot_classifier", "CLIPImageRetriever", "DINOSegmentation",
    "compute_iou", "create_segmentation_overlay", "DavisDataset",
]
