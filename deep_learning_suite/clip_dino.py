"""Zero-shot CLIP and DINO segmentation (CS231n assignment 3, CLIP_DINO notebook).

CLIP maps images and texts into one embedding space: ``clip_model.encode_image`` takes a
(M, 3, h, w) batch made by ``clip_preprocess`` and ``clip_model.encode_text`` takes the
(N, 77) tokens of ``clip.tokenize``; both give D-dimensional features, compared by cosine
similarity for zero-shot classification and text-to-image retrieval. DINO ViT-S/8 turns a
(1, 3, 480, 480) frame into 1 + 60 * 60 tokens of dimension 384; a linear layer on the
3600 patch tokens (``DINOSegmentation``) segments DAVIS video frames, scored by mean IoU.

Any model object with these methods works (the tests use small fakes); weights are never
loaded here. ``clip`` is OpenAI's package when installed, otherwise a stand-in whose
``tokenize`` says how to install it; the functions look it up at call time, so it can be
patched. Reading DAVIS needs ``tensorflow-datasets``; nothing else does.
"""

import numbers
import types

import numpy as np
import torch
import torch.nn as nn

from .imagenet import SQUEEZENET_MEAN, SQUEEZENET_STD, _pil
from .trainer import check_finite_loss

_CLIP_MISSING = ("OpenAI CLIP is not installed: pip install git+https://github.com/openai/CLIP.git "
                 "(or openai-clip), or set deep_learning_suite.clip_dino.clip to an object whose "
                 "tokenize(texts) returns the tokens your clip_model.encode_text takes")


def _clip_missing(*args, **kwargs):
    raise ImportError(_CLIP_MISSING)


try:
    import clip
except ImportError:
    clip = types.SimpleNamespace(tokenize=_clip_missing, load=_clip_missing, available_models=_clip_missing)

# DAVIS frames go to DINO at 480 x 480; with 8-pixel patches that is a 60 x 60 token grid.
FRAME_SIZE = 480
GRID = 60

# The course's colours (np.random.seed(42); np.random.randint(0, 256, (10, 3), dtype=np.uint8)),
# drawn once from a private RandomState seeded the same way, so they never depend on (or move)
# the global RNG.
SEGMENTATION_COLORS = np.random.RandomState(42).randint(0, 256, size=(10, 3), dtype=np.uint8)
SEGMENTATION_COLORS.setflags(write=False)


def get_similarity_no_loop(text_features, image_features):
    """Cosine similarity of every text feature with every image feature, without loops.

    Parameters
    ----------
    text_features : tensor, (N, D)
    image_features : tensor, (M, D)

    Returns
    -------
    tensor, (N, M): entry (i, j) compares ``text_features[i]`` with ``image_features[j]``
    (a zero row gives 0, as ``F.cosine_similarity`` does).
    """
    t, i = torch.as_tensor(text_features), torch.as_tensor(image_features)
    _check_same_width(t, i, "get_similarity_no_loop")
    return _unit_rows(t) @ _unit_rows(i).T


def _check_same_width(t, i, what):
    # Text and image features from two different CLIP models (or a fake encoder of another
    # width) would otherwise fail inside the matrix product with torch's "mat1 and mat2" error.
    if t.ndim != 2 or i.ndim != 2 or t.shape[1] != i.shape[1]:
        raise ValueError(f"{what} needs (N, D) text and (M, D) image features with the "
                         f"same D, got {tuple(t.shape)} and {tuple(i.shape)}; encode_text and "
                         f"encode_image must come from the same CLIP model")


def _unit_rows(x):
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _check_rgb(img, what):
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{what} must be a uint8 (H, W, 3) array, got "
                         f"{getattr(img, 'dtype', type(img).__name__)} {getattr(img, 'shape', '')}")


def _encode_images(clip_model, clip_preprocess, images, device, what):
    Image = _pil()
    if len(images) == 0:
        raise ValueError(f"{what}: images is empty; pass a list of uint8 (H, W, 3) arrays")
    for k, img in enumerate(images):
        _check_rgb(img, f"{what}: images[{k}]")
    batch = torch.stack([clip_preprocess(Image.fromarray(img)) for img in images]).to(device)
    return clip_model.encode_image(batch)


def _encode_texts(clip_model, texts, device):
    return clip_model.encode_text(clip.tokenize(texts).to(device))


@torch.no_grad()
def clip_zero_shot_classifier(clip_model, clip_preprocess, images, class_texts, device):
    """Label each image with the class text CLIP finds most similar to it.

    Parameters
    ----------
    clip_model : object with ``encode_image`` and ``encode_text``
    clip_preprocess : callable, PIL image -> tensor (3, h, w)
    images : list of uint8 ndarrays, (H, W, 3)
    class_texts : list of str, e.g. ``["a photo of a dog", "a photo of a cat"]``
    device : torch.device or str
        Where the image batch and the text tokens go before encoding.

    Returns
    -------
    list of str, one per image: the element of ``class_texts`` of highest cosine similarity.
    """
    if isinstance(class_texts, str) or len(class_texts) == 0:
        raise ValueError(f"clip_zero_shot_classifier: class_texts must be a non-empty list of strings, "
                         f"got {class_texts!r}")
    image_features = _encode_images(clip_model, clip_preprocess, images, device, "clip_zero_shot_classifier")
    text_features = _encode_texts(clip_model, list(class_texts), device)
    # CLIP on a GPU gives float16 features; compare them in float32.
    similarity = get_similarity_no_loop(text_features.float(), image_features.float())  # (C, M)
    return [class_texts[c] for c in similarity.argmax(dim=0).tolist()]


class CLIPImageRetriever:
    """Text-to-image search over M images (uint8 (H, W, 3) arrays), each encoded once.

    ``clip_model``, ``clip_preprocess`` and ``device`` are as for :func:`clip_zero_shot_classifier`;
    ``image_features`` (M, D) holds the images' L2-normalised features, in their order.
    """

    @torch.no_grad()
    def __init__(self, clip_model, clip_preprocess, images, device):
        self.clip_model = clip_model
        self.device = device
        features = _encode_images(clip_model, clip_preprocess, images, device, "CLIPImageRetriever")
        self.image_features = _unit_rows(features.float())

    @torch.no_grad()
    def retrieve(self, query: str, k: int = 2):
        """Indices of the ``k`` images most similar to ``query``, most similar first (list of int)."""
        M = self.image_features.shape[0]
        if not isinstance(query, str):
            raise ValueError(f"retrieve: query must be a string, got {type(query).__name__}")
        if isinstance(k, bool) or int(k) != k or not 1 <= k <= M:
            raise ValueError(f"retrieve: k must be an integer in 1..{M} (the number of images), got {k!r}")
        text = _unit_rows(_encode_texts(self.clip_model, [query], self.device).float())  # (1, D)
        _check_same_width(text, self.image_features, "retrieve")
        similarity = self.image_features @ text[0].to(self.image_features.device)
        return similarity.topk(int(k)).indices.tolist()


class DINOSegmentation:
    """A linear classifier from (N, inp_dim) DINO patch features (384 for ViT-S) to classes.

    Not an ``nn.Module``: the course names the training method ``train``, which would shadow
    ``Module.train``. The network itself is ``self.model``, on ``device``.
    """

    def __init__(self, device, num_classes: int, inp_dim: int = 384):
        self.device = device
        self.num_classes = num_classes
        self.inp_dim = inp_dim
        # A pixel's class is nearly linear in DINO's features, so one layer is enough.
        self.model = nn.Linear(inp_dim, num_classes).to(device)
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-2)

    def _check_features(self, X, what):
        X = torch.as_tensor(X)
        if X.ndim != 2 or X.shape[1] != self.inp_dim or not X.is_floating_point():
            raise ValueError(f"{what}: features must be a float (N, {self.inp_dim}) tensor, got "
                             f"{X.dtype} {tuple(X.shape)}; flatten the frames' patches first")
        return X.to(self.device, torch.float32)

    def train(self, X_train, Y_train, num_iters=500):
        """``num_iters`` full-batch Adam steps on float (N, D) features and (N,) labels in
        0..num_classes-1; returns the loss before each step (list of float).

        Raises
        ------
        TrainingDivergedError
            A loss is NaN or infinite (NaN or infinite features, or a diverging step); raised
            before that step, so ``self.model`` keeps the last finite parameters.
        """
        X = self._check_features(X_train, "DINOSegmentation.train")
        Y = torch.as_tensor(Y_train)
        if Y.shape != (X.shape[0],) or Y.is_floating_point() or Y.dtype == torch.bool:
            raise ValueError(f"DINOSegmentation.train: Y_train must be {X.shape[0]} integer labels, got "
                             f"{Y.dtype} {tuple(Y.shape)}")
        if Y.numel() == 0 or int(Y.min()) < 0 or int(Y.max()) >= self.num_classes:
            raise ValueError(f"DINOSegmentation.train: labels must be in 0..{self.num_classes - 1}, got "
                             f"{'none' if Y.numel() == 0 else f'{int(Y.min())}..{int(Y.max())}'}")
        Y = Y.to(self.device, torch.long)
        self.model.train()
        losses = []
        for it in range(num_iters):
            loss = self.criterion(self.model(X), Y)
            check_finite_loss(loss, "DINOSegmentation.train: the loss",
                              f"at iteration {it + 1} of {num_iters}",
                              "check that the features are finite (torch.isfinite(X_train).all()) "
                              "or lower the learning rate (self.optimizer)")
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        return losses

    @torch.no_grad()
    def inference(self, X_test):
        """Predicted class of each feature row: float (N, D) -> long (N,) on ``device``."""
        X = self._check_features(X_test, "DINOSegmentation.inference")
        self.model.eval()
        return self.model(X).argmax(dim=1)


def compute_iou(pred, gt, num_classes):
    """Mean over classes of |pred == c and gt == c| / (|pred == c or gt == c| + 1e-8).

    ``pred`` and ``gt`` are integer arrays or tensors of one shape; a class absent from both
    counts as 0, as in the course. Returns a float.

    Raises
    ------
    ValueError
        ``num_classes`` is not a positive integer, or the shapes differ.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"compute_iou: num_classes must be a positive integer (the number of classes, "
                         f"e.g. DINOSegmentation's num_classes), got {num_classes!r}")
    pred, gt = (x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
                for x in (pred, gt))
    if pred.shape != gt.shape:
        raise ValueError(f"compute_iou: pred and gt must have one shape, got {tuple(pred.shape)} and "
                         f"{tuple(gt.shape)}")
    iou = 0.0
    for c in range(num_classes):
        p, g = pred == c, gt == c
        iou += float((p & g).sum()) / (float((p | g).sum()) + 1e-8)
    return iou / num_classes


def create_segmentation_overlay(segmentation_mask, image, alpha=0.5):
    """Blend class colours over an image: ``(1 - alpha) * image + alpha * colour[mask]``.

    Parameters
    ----------
    segmentation_mask : int ndarray, (H, W), classes in 0..9 (class c is ``SEGMENTATION_COLORS[c]``)
    image : uint8 ndarray, (H, W, 3)
    alpha : float in [0, 1], the colours' weight

    Returns
    -------
    uint8 ndarray, (H, W, 3), rounded and clipped as OpenCV's ``addWeighted``.
    """
    mask, image = np.asarray(segmentation_mask), np.asarray(image)
    _check_rgb(image, "create_segmentation_overlay: image")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"create_segmentation_overlay: mask {mask.shape} and image {image.shape} differ "
                         f"in (H, W); resize the mask to the image")
    if not 0 <= alpha <= 1:
        raise ValueError(f"create_segmentation_overlay: alpha must be in [0, 1], got {alpha}")
    n = len(SEGMENTATION_COLORS)
    if not np.issubdtype(mask.dtype, np.integer) or (mask.size and (mask.min() < 0 or mask.max() >= n)):
        raise ValueError(f"create_segmentation_overlay: mask must hold integer classes in 0..{n - 1}, got "
                         f"{mask.dtype} {'' if not mask.size else f'{mask.min()}..{mask.max()}'}")
    blend = (1 - alpha) * image.astype(np.float64) + alpha * SEGMENTATION_COLORS[mask].astype(np.float64)
    return np.clip(np.rint(blend), 0, 255).astype(np.uint8)


def _resize_nearest(mask, height, width):
    # As int32 (PIL's 'I' mode), which PIL resizes whatever integer type the mask came as.
    Image = _pil()
    pil = Image.fromarray(np.ascontiguousarray(mask, dtype=np.int32))
    return np.asarray(pil.resize((width, height), Image.Resampling.NEAREST))


class DavisDataset:
    """The DAVIS 2017 480p validation videos and the course's frame and mask processing.

    ``DavisDataset()`` loads DAVIS with ``tensorflow_datasets`` (``pip install
    tensorflow-datasets``); ``DavisDataset(load=False)`` skips that, for ``process_frames``,
    ``process_masks`` and ``mask_frame_overlay``, which need no TensorFlow.
    """

    def __init__(self, load=True):
        self.davis = None
        if not load:
            return
        try:
            import tensorflow_datasets as tfds
        except ImportError as err:
            raise ImportError("DavisDataset reads DAVIS with TensorFlow Datasets: pip install "
                              "tensorflow-datasets (DavisDataset(load=False) processes frames and "
                              "masks without it)") from err
        self._tfds = tfds
        self.davis = tfds.load('davis/480p', split='validation', as_supervised=False)

    def get_sample(self, index):
        """The ``index``-th validation video: frames uint8 (T, H, W, 3), masks uint8 (T, H, W, 1)."""
        if self.davis is None:
            raise ValueError("get_sample: this DavisDataset was made with load=False; use DavisDataset()")
        if not 0 <= index < len(self.davis):
            raise ValueError(f"get_sample: index must be in 0..{len(self.davis) - 1}, got {index}")
        videos = iter(self._tfds.as_numpy(self.davis))
        for _ in range(index + 1):
            video = next(videos)
        frames, masks = video['video']['frames'], video['video']['segmentations']
        name = video['metadata']['video_name']
        print(f"video {name.decode() if isinstance(name, bytes) else name}  {len(frames)} frames")
        return frames, masks

    @torch.no_grad()
    def process_frames(self, frames, dino_model, device):
        """DINO patch tokens of each frame: T uint8 (H, W, 3) frames -> tensor (T, 3600, D).

        Each frame is resized to 480 x 480 (bilinear), normalised, and passed as (1, 3, 480, 480)
        to ``dino_model.get_intermediate_layers(x, n=1)[0]``; its CLS token is dropped.
        """
        Image = _pil()
        if len(frames) == 0:
            raise ValueError("process_frames: no frames given")
        tokens = []
        for frame in frames:
            frame = np.asarray(frame)
            _check_rgb(frame, "process_frames: each frame")
            small = Image.fromarray(frame).resize((FRAME_SIZE, FRAME_SIZE), Image.Resampling.BILINEAR)
            # DINO was trained on ImageNet, so frames get ImageNet's normalisation.
            x = (np.asarray(small, dtype=np.float32) / 255.0 - SQUEEZENET_MEAN) / SQUEEZENET_STD
            x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(device)
            tokens.append(dino_model.get_intermediate_layers(x, n=1)[0][0, 1:])
        return torch.stack(tokens)

    def process_masks(self, masks, device):
        """Masks on DINO's token grid: T (H, W) or (H, W, 1) masks -> long tensor (T, 3600) on ``device``."""
        if len(masks) == 0:
            raise ValueError("process_masks: no masks given")
        out = []
        for m in masks:
            m = np.asarray(m)
            if m.ndim == 3 and m.shape[2] == 1:
                m = m[:, :, 0]
            if m.ndim != 2:
                raise ValueError(f"process_masks: each mask must be (H, W) or (H, W, 1), got {m.shape}")
            out.append(torch.from_numpy(_resize_nearest(m, GRID, GRID).astype(np.int64)).flatten())
        return torch.stack(out).to(device)

    def mask_frame_overlay(self, processed_mask, frame):
        """Draw a (3600,) token-grid mask over a uint8 (H, W, 3) frame; uint8 (H, W, 3)."""
        mask = torch.as_tensor(processed_mask).detach().cpu().numpy()
        if mask.size != GRID * GRID:
            raise ValueError(f"mask_frame_overlay: processed_mask must hold {GRID * GRID} classes (a "
                             f"{GRID} x {GRID} grid), got shape {mask.shape}")
        H, W = np.asarray(frame).shape[:2]
        return create_segmentation_overlay(_resize_nearest(mask.reshape(GRID, GRID), H, W), frame)
