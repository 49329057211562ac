"""A small COCO captioning folder in the course's exact file format, written by tests.

Each image gets ``captions_per_image`` captions of the form
"<START> a {colour} {animal} {verb} on the {thing} <END>" padded with <NULL> to T words,
so that a captioning model can learn to reproduce them from the image's features.
"""

import json

import numpy as np

WORDS = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "on", "the", "red", "blue", "green", "cat",
         "dog", "bird", "sits", "runs", "mat", "sofa", "grass"]
WORD_TO_IDX = {w: i for i, w in enumerate(WORDS)}


def caption_for(rng, T):
    words = ["<START>", "a", rng.choice(["red", "blue", "green"]), rng.choice(["cat", "dog", "bird"]),
             rng.choice(["sits", "runs"]), "on", "the", rng.choice(["mat", "sofa", "grass"]), "<END>"]
    idx = [WORD_TO_IDX[w] for w in words]
    return idx + [WORD_TO_IDX["<NULL>"]] * (T - len(idx))


def coco_arrays(num_train_images=12, num_val_images=4, captions_per_image=2, D=16, T=17, seed=0):
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in (("train", num_train_images), ("val", num_val_images)):
        idxs = np.repeat(np.arange(n), captions_per_image).astype(np.int32)
        per_image = [caption_for(rng, T) for _ in range(n)]
        data[f"{split}_captions"] = np.array([per_image[i] for i in idxs], dtype=np.int32)
        data[f"{split}_image_idxs"] = idxs
        data[f"{split}_features"] = rng.standard_normal((n, D)).astype(np.float32)
        data[f"{split}_urls"] = np.array([f"http://example.invalid/{split}/{i}.jpg" for i in range(n)])
    data["idx_to_word"] = list(WORDS)
    data["word_to_idx"] = dict(WORD_TO_IDX)
    return data


def write_coco_dir(folder, pca_features=True, **kwargs):
    """Write the course's files into ``folder``; returns the arrays written."""
    import h5py
    folder.mkdir(parents=True, exist_ok=True)
    data = coco_arrays(**kwargs)
    with h5py.File(folder / "coco2014_captions.h5", "w") as f:
        for split in ("train", "val"):
            f[f"{split}_captions"] = data[f"{split}_captions"]
            f[f"{split}_image_idxs"] = data[f"{split}_image_idxs"]
    suffix = "_pca" if pca_features else ""
    for split in ("train", "val"):
        with h5py.File(folder / f"{split}2014_vgg16_fc7{suffix}.h5", "w") as f:
            f["features"] = data[f"{split}_features"]
        (folder / f"{split}2014_urls.txt").write_text("\n".join(data[f"{split}_urls"]) + "\n")
    (folder / "coco2014_vocab.json").write_text(json.dumps(
        {"idx_to_word": data["idx_to_word"], "word_to_idx": data["word_to_idx"]}))
    return data
