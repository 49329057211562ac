"""``cs231n.clip_dino``: CLIP zero-shot classification and retrieval, DINO segmentation on DAVIS.

``DavisDataset(load=False)`` processes frames and masks without ``tensorflow-datasets``.

``from cs231n.clip_dino import *`` also gives ``cv2``, as the course's file (which imports it
and has no ``__all__``) does: the CLIP_DINO notebook's last cell, ``write_video_from_array``,
calls ``cv2.VideoWriter`` without importing OpenCV. The toolkit itself never needs OpenCV;
where it is not installed, ``cv2`` is a stand-in whose every use raises ``ImportError`` saying
how to install it.
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

_OPENCV_MISSING = ("No module named 'cv2': OpenCV is not installed, and the CLIP_DINO notebook's "
                   "write_video_from_array cell uses it (cv2.VideoWriter). Install it with "
                   "pip install opencv-python (or opencv-python-headless), then restart the kernel")


class _OpenCVMissing:
    """Stands in for ``cv2`` where OpenCV is not installed: any attribute raises ``ImportError``."""

    def __getattr__(self, name):
        # Dunder probes (copy, pickle, inspect's __wrapped__) get the usual AttributeError, so
        # that tools scanning a namespace the star import filled do not break on this object.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise ModuleNotFoundError(_OPENCV_MISSING, name="cv2")

    def __repr__(self):
        return "<cv2 stand-in: OpenCV is not installed (pip install opencv-python)>"


try:
    import cv2
except ImportError:
    cv2 = _OpenCVMissing()

__all__ = [
    "get_similarity_no_loop", "clip_zero_shot_classifier", "CLIPImageRetriever", "DINOSegmentation",
    "compute_iou", "create_segmentation_overlay", "DavisDataset", "cv2",
]
