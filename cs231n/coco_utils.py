"""``cs231n.coco_utils``: loading the course's COCO captioning files, and caption helpers."""

from deep_learning_suite.coco import decode_captions, load_coco_data, sample_coco_minibatch

__all__ = ["load_coco_data", "decode_captions", "sample_coco_minibatch"]
