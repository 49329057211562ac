"""``cs231n.net_visualization_pytorch``: saliency maps, fooling images and class visualisation."""

from deep_learning_suite.net_visualization import (
    blur_image,
    class_visualization_update_step,
    compute_saliency_maps,
    create_class_visualization,
    deprocess,
    jitter,
    make_fooling_image,
    preprocess,
    rescale,
)

__all__ = [
    "blur_image", "class_visualization_update_step", "compute_saliency_maps",
    "create_class_visualization", "deprocess", "jitter", "make_fooling_image", "preprocess", "rescale",
]
