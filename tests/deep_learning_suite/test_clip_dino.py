import sys
import types
from unittest import mock

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

Image = pytest.importorskip("PIL.Image")

from deep_learning_suite import clip_dino as cd  # noqa: E402
from deep_learning_suite.imagenet import SQUEEZENET_MEAN, SQUEEZENET_STD  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

COLOURS = ["a red thing", "a green thing", "a blue thing"]


def fake_tokenize(texts):
    """One token per text, its index in COLOURS: (N, 1) long, as CLIP's (N, 77)."""
    return torch.tensor([[COLOURS.index(t)] for t in texts])


class FakeCLIP:
    """Texts encode to one-hot colour axes, images to their mean RGB, so the most similar
    text of an image is its dominant channel."""

    def __init__(self):
        self.image_calls = 0
        self.text_devices = []

    def encode_image(self, batch):
        self.image_calls += 1
        assert batch.ndim == 4 and batch.shape[1] == 3
        return batch.mean(dim=(2, 3))

    def encode_text(self, tokens):
        self.text_devices.append(tokens.device)
        return F.one_hot(tokens[:, 0], 3).float() * 2.0  # the scale must not matter


def fake_preprocess(img):
    assert isinstance(img, Image.Image)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


def solid(rgb, size=(4, 5)):
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (*size, 3)).copy()


IMAGES = [solid((10, 200, 10)), solid((250, 0, 0)), solid((100, 100, 0)), solid((180, 20, 60))]


# --------------------------------------------------------------------------- similarity

@pytest.mark.parametrize("N,M,D", [(1, 1, 1), (3, 5, 4), (7, 2, 16)])
def test_similarity_is_pairwise_cosine(N, M, D):
    text, image = torch.randn(N, D, dtype=torch.float64), torch.randn(M, D, dtype=torch.float64)
    sim = cd.get_similarity_no_loop(text, image)
    assert sim.shape == (N, M)
    torch.testing.assert_close(sim, F.cosine_similarity(text[:, None, :], image[None, :, :], dim=-1))


@pytest.mark.parametrize("text_shape,image_shape", [((3,), (2, 3)), ((2, 3), (2, 4)), ((1, 2, 3), (2, 3))])
def test_similarity_rejects_bad_shapes(text_shape, image_shape):
    with pytest.raises(ValueError, match=r"same D, got \(.*\) and \(.*\)"):
        cd.get_similarity_no_loop(torch.zeros(text_shape), torch.zeros(image_shape))


# --------------------------------------------------------------------------- CLIP

def test_zero_shot_picks_the_dominant_colour(monkeypatch):
    monkeypatch.setattr(cd.clip, "tokenize", fake_tokenize)
    model = FakeCLIP()
    images = IMAGES + [solid((5, 30, 90))]
    pred = cd.clip_zero_shot_classifier(model, fake_preprocess, images, COLOURS, "cpu")
    assert pred == ["a green thing", "a red thing", "a red thing", "a red thing", "a blue thing"]
    assert model.image_calls == 1 and model.text_devices == [torch.device("cpu")]


def test_zero_shot_through_the_course_module_and_its_clip():
    import cs231n.clip_dino as course

    assert course.clip is cd.clip and "clip" not in course.__all__
    with mock.patch("cs231n.clip_dino.clip.tokenize", fake_tokenize):
        pred = course.clip_zero_shot_classifier(FakeCLIP(), fake_preprocess, IMAGES[:2], COLOURS[:2], "cpu")
    assert pred == ["a green thing", "a red thing"]


@pytest.mark.parametrize("images,texts,match", [
    ([], COLOURS, "images is empty"),
    (IMAGES, [], "non-empty list"),
    (IMAGES, "a red thing", "non-empty list"),
    ([IMAGES[0].astype(np.float32)], COLOURS, r"images\[0\] must be a uint8"),
    ([IMAGES[0][:, :, :2]], COLOURS, r"images\[0\] must be a uint8 \(H, W, 3\)"),
])
def test_zero_shot_rejects_bad_inputs(monkeypatch, images, texts, match):
    monkeypatch.setattr(cd.clip, "tokenize", fake_tokenize)
    with pytest.raises(ValueError, match=match):
        cd.clip_zero_shot_classifier(FakeCLIP(), fake_preprocess, images, texts, "cpu")


@pytest.mark.parametrize("query,k,want", [
    ("a red thing", 1, [1]),
    ("a red thing", 2, [1, 3]),
    ("a red thing", 4, [1, 3, 2, 0]),
    ("a green thing", 3, [0, 2, 3]),
])
def test_retriever_ranks_images_and_encodes_them_once(monkeypatch, query, k, want):
    monkeypatch.setattr(cd.clip, "tokenize", fake_tokenize)
    model = FakeCLIP()
    retriever = cd.CLIPImageRetriever(model, fake_preprocess, IMAGES, "cpu")
    torch.testing.assert_close(retriever.image_features.norm(dim=1), torch.ones(len(IMAGES)))
    assert retriever.retrieve(query, k=k) == want
    assert retriever.retrieve(query, k=k) == want
    assert model.image_calls == 1


def test_retriever_default_k_and_bad_k(monkeypatch):
    monkeypatch.setattr(cd.clip, "tokenize", fake_tokenize)
    retriever = cd.CLIPImageRetriever(FakeCLIP(), fake_preprocess, IMAGES, "cpu")
    assert retriever.retrieve("a blue thing") == [3, 0]
    for k in (0, 5, 1.5):
        with pytest.raises(ValueError, match=r"k must be an integer in 1\.\.4"):
            retriever.retrieve("a blue thing", k=k)


def test_missing_clip_says_how_to_install_it():
    if not isinstance(cd.clip, types.SimpleNamespace):
        pytest.skip("OpenAI CLIP is installed here")
    with pytest.raises(ImportError, match=r"pip install git\+https://github.com/openai/CLIP.git"):
        cd.clip_zero_shot_classifier(FakeCLIP(), fake_preprocess, IMAGES, COLOURS, "cpu")


# --------------------------------------------------------------------------- DINO segmentation

def separable(N=150, D=8, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (N,), generator=g)
    X = 4.0 * torch.eye(C, D)[y] + 0.3 * torch.randn(N, D, generator=g)
    return X, y


@pytest.mark.parametrize("C", [2, 3, 5])
def test_segmentation_fits_a_separable_problem(C):
    torch.manual_seed(0)
    X, y = separable(D=8, C=C)
    seg = cd.DINOSegmentation("cpu", num_classes=C, inp_dim=8)
    assert isinstance(seg.model, nn.Module) and isinstance(seg.optimizer, torch.optim.Adam)
    losses = seg.train(X, y, num_iters=100)
    assert len(losses) == 100 and losses[-1] < 0.1 * losses[0]
    X_test, y_test = separable(N=60, D=8, C=C, seed=1)
    pred = seg.inference(X_test)
    assert pred.dtype == torch.long and pred.shape == (60,)
    torch.testing.assert_close(pred, y_test, rtol=0, atol=0)


def test_segmentation_rejects_bad_labels_and_features():
    seg = cd.DINOSegmentation("cpu", num_classes=3, inp_dim=8)
    X = torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2, got 0\.\.3"):
        seg.train(X, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2, got -1\.\.1"):
        seg.train(X, torch.tensor([0, 1, -1, 1]))
    with pytest.raises(ValueError, match="4 integer labels"):
        seg.train(X, torch.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="4 integer labels"):
        seg.train(X, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"float \(N, 8\)"):
        seg.train(torch.randn(4, 7), torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match=r"float \(N, 8\)"):
        seg.inference(torch.randn(8))


@pytest.mark.parametrize("as_tensor", [False, True])
def test_iou_of_a_hand_worked_example(as_tensor):
    pred = np.array([[0, 0, 1], [1, 2, 2]])
    gt = np.array([[0, 1, 1], [1, 2, 0]])
    if as_tensor:
        pred, gt = torch.from_numpy(pred), torch.from_numpy(gt)
    # class 0: 1 of 3, class 1: 2 of 3, class 2: 1 of 2
    assert cd.compute_iou(pred, gt, 3) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3, abs=1e-7)


def test_iou_perfect_disjoint_and_absent_classes(rng):
    gt = rng.integers(0, 4, (6, 7))
    gt.flat[:4] = np.arange(4)
    assert cd.compute_iou(gt.copy(), gt, 4) == pytest.approx(1.0, abs=1e-7)
    assert cd.compute_iou(np.zeros((3, 3), int), np.ones((3, 3), int), 2) == 0.0
    # a class in neither counts 0, as in the course
    assert cd.compute_iou(gt, gt, 5) == pytest.approx(4 / 5, abs=1e-7)
    with pytest.raises(ValueError, match="one shape"):
        cd.compute_iou(gt, gt[:, :3], 4)


# --------------------------------------------------------------------------- overlay

def palette():
    mask = np.arange(10).reshape(2, 5)
    return cd.create_segmentation_overlay(mask, np.zeros((2, 5, 3), np.uint8), alpha=1.0).reshape(10, 3)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_overlay_is_the_weighted_blend(rng, alpha):
    mask = rng.integers(0, 10, (5, 7))
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = cd.create_segmentation_overlay(mask, image, alpha=alpha)
    want = np.clip(np.rint((1 - alpha) * image.astype(float) + alpha * palette()[mask].astype(float)), 0, 255)
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, want.astype(np.uint8))
    if alpha == 0:
        np.testing.assert_array_equal(out, image)


def test_overlay_colours_are_fixed_distinct_and_leave_the_global_rng_alone():
    np.random.seed(0)
    first = palette()
    state = np.random.get_state()
    np.random.seed(1)
    np.testing.assert_array_equal(palette(), first)
    np.testing.assert_array_equal(first, cd.SEGMENTATION_COLORS)
    assert len({tuple(c) for c in first}) == 10
    np.random.set_state(state)
    palette()
    after = np.random.get_state()
    assert after[0] == state[0] and after[2:] == state[2:]
    np.testing.assert_array_equal(after[1], state[1])


def test_overlay_colours_are_the_courses():
    # The course draws its palette with np.random.seed(42); np.random.randint(0, 256, (10, 3),
    # dtype=np.uint8), so overlays look the same as the notebook's.
    state = np.random.get_state()
    try:
        np.random.seed(42)
        course = np.random.randint(0, 256, (10, 3), dtype=np.uint8)
    finally:
        np.random.set_state(state)
    np.testing.assert_array_equal(cd.SEGMENTATION_COLORS, course)
    np.testing.assert_array_equal(palette(), course)


@pytest.mark.parametrize("mask,image,alpha,match", [
    (np.zeros((4, 5), int), np.zeros((4, 6, 3), np.uint8), 0.5, "differ"),
    (np.zeros((4, 5), int), np.zeros((4, 5, 3), np.float32), 0.5, "uint8"),
    (np.zeros((4, 5), int), np.zeros((4, 5), np.uint8), 0.5, r"uint8 \(H, W, 3\)"),
    (np.zeros((4, 5), int), np.zeros((4, 5, 3), np.uint8), 1.5, r"alpha must be in \[0, 1\]"),
    (np.zeros((4, 5), int), np.zeros((4, 5, 3), np.uint8), -0.1, r"alpha must be in \[0, 1\]"),
    (np.full((4, 5), 10), np.zeros((4, 5, 3), np.uint8), 0.5, r"classes in 0\.\.9"),
    (np.full((4, 5), -1), np.zeros((4, 5, 3), np.uint8), 0.5, r"classes in 0\.\.9"),
    (np.zeros((4, 5)), np.zeros((4, 5, 3), np.uint8), 0.5, "integer classes"),
])
def test_overlay_rejects_bad_inputs(mask, image, alpha, match):
    with pytest.raises(ValueError, match=match):
        cd.create_segmentation_overlay(mask, image, alpha=alpha)


# --------------------------------------------------------------------------- DAVIS

class FakeDINO:
    """Records its inputs; token 0 is CLS (-1), patch token p of call t holds 1000 t + p."""

    D = 4

    def __init__(self):
        self.inputs = []

    def get_intermediate_layers(self, x, n=1):
        assert n == 1
        self.inputs.append(x.clone())
        t = len(self.inputs) - 1
        patches = 1000.0 * t + torch.arange(3600.0)[:, None].expand(3600, self.D)
        return [torch.cat([torch.full((1, self.D), -1.0), patches])[None]]


def test_process_frames_normalises_and_drops_cls():
    frames = np.stack([solid((10, 128, 250), size=(30, 40)), solid((0, 255, 64), size=(30, 40))])
    dino = FakeDINO()
    out = cd.DavisDataset(load=False).process_frames(frames, dino, "cpu")
    assert out.shape == (2, 3600, FakeDINO.D)
    assert (out != -1).all()
    torch.testing.assert_close(out[1, :, 0], 1000.0 + torch.arange(3600.0))
    for x, rgb in zip(dino.inputs, [(10, 128, 250), (0, 255, 64)]):
        assert x.shape == (1, 3, 480, 480) and x.dtype == torch.float32
        want = (np.array(rgb) / 255.0 - SQUEEZENET_MEAN) / SQUEEZENET_STD
        torch.testing.assert_close(x[0].amin(dim=(1, 2)), torch.tensor(want, dtype=torch.float32))
        torch.testing.assert_close(x[0].amax(dim=(1, 2)), torch.tensor(want, dtype=torch.float32))


def test_process_frames_resizes_bilinearly(rng):
    frame = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    dino = FakeDINO()
    cd.DavisDataset(load=False).process_frames([frame], dino, "cpu")
    small = np.asarray(Image.fromarray(frame).resize((480, 480), Image.Resampling.BILINEAR)) / 255.0
    want = torch.tensor(((small - SQUEEZENET_MEAN) / SQUEEZENET_STD).transpose(2, 0, 1), dtype=torch.float32)
    torch.testing.assert_close(dino.inputs[0][0], want)
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
        cd.DavisDataset(load=False).process_frames([frame.astype(np.float32)], dino, "cpu")


@pytest.mark.parametrize("trailing_axis", [False, True])
def test_process_masks_is_a_nearest_resize_to_the_token_grid(rng, trailing_axis):
    labels = rng.integers(0, 5, (3, 60, 60)).astype(np.uint8)
    masks = labels.repeat(2, axis=1).repeat(2, axis=2)  # (3, 120, 120) of 2 x 2 blocks
    if trailing_axis:
        masks = masks[..., None]
    out = cd.DavisDataset(load=False).process_masks(masks, "cpu")
    assert out.dtype == torch.long and out.shape == (3, 3600)
    np.testing.assert_array_equal(out.numpy(), labels.reshape(3, 3600))


@pytest.mark.parametrize("shape", [(97, 131), (45, 200), (60, 60)])
def test_process_masks_matches_pillows_nearest(rng, shape):
    mask = rng.integers(0, 7, shape).astype(np.uint8)
    out = cd.DavisDataset(load=False).process_masks([mask], "cpu")
    want = np.asarray(Image.fromarray(mask).resize((60, 60), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(out[0].numpy().reshape(60, 60), want)


def test_mask_frame_overlay(rng):
    davis = cd.DavisDataset(load=False)
    labels = rng.integers(0, 3, (60, 60))
    frame = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    processed = davis.process_masks([labels.repeat(2, 0).repeat(2, 1)], "cpu")[0]
    out = davis.mask_frame_overlay(processed, frame)
    np.testing.assert_array_equal(out, cd.create_segmentation_overlay(labels.repeat(2, 0).repeat(2, 1), frame))
    assert davis.mask_frame_overlay(processed, frame[:75, :90]).shape == (75, 90, 3)
    with pytest.raises(ValueError, match="3600"):
        davis.mask_frame_overlay(processed[:100], frame)


def test_davis_without_tensorflow_datasets_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ImportError, match="pip install tensorflow-datasets"):
        cd.DavisDataset()
    with pytest.raises(ValueError, match="load=False"):
        cd.DavisDataset(load=False).get_sample(0)


def test_get_sample_reads_the_index_th_validation_video(monkeypatch, capsys):
    videos = [{"video": {"frames": np.full((t + 1, 4, 4, 3), t, np.uint8),
                         "segmentations": np.full((t + 1, 4, 4, 1), t, np.uint8)},
               "metadata": {"video_name": name}} for t, name in enumerate([b"bear", b"bike", b"dog"])]
    calls = []
    fake = types.ModuleType("tensorflow_datasets")
    fake.load = lambda name, split, as_supervised: calls.append((name, split, as_supervised)) or videos
    fake.as_numpy = lambda ds: ds
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    davis = cd.DavisDataset()
    assert calls == [("davis/480p", "validation", False)]
    frames, masks = davis.get_sample(1)
    assert frames.shape == (2, 4, 4, 3) and (frames == 1).all() and masks.shape == (2, 4, 4, 1)
    assert "bike" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"index must be in 0\.\.2"):
        davis.get_sample(3)


class _WideTextCLIP(FakeCLIP):
    """Text features of width 5 against image features of width 3: two CLIP models mixed."""

    def encode_text(self, tokens):
        return torch.ones(tokens.shape[0], 5)


@pytest.mark.parametrize("use", ["retrieve", "zero_shot"])
def test_mismatched_text_and_image_widths_get_one_clear_error(monkeypatch, use):
    monkeypatch.setattr(cd.clip, "tokenize", fake_tokenize)
    with pytest.raises(ValueError, match=r"same D, got \(1, 5\) and \(4, 3\).*same CLIP model"
                       if use == "retrieve" else r"same D, got \(3, 5\) and \(4, 3\)"):
        if use == "retrieve":
            cd.CLIPImageRetriever(_WideTextCLIP(), fake_preprocess, IMAGES, "cpu").retrieve(COLOURS[0])
        else:
            cd.clip_zero_shot_classifier(_WideTextCLIP(), fake_preprocess, IMAGES, COLOURS, "cpu")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_segmentation_stops_on_a_non_finite_loss_before_stepping(bad):
    from deep_learning_suite.trainer import TrainingDivergedError
    torch.manual_seed(0)
    seg = cd.DINOSegmentation("cpu", 3, inp_dim=4)
    before = [p.detach().clone() for p in seg.model.parameters()]
    X = torch.randn(10, 4)
    X[3, 1] = bad
    with pytest.raises(TrainingDivergedError, match=r"iteration 1 of 5.*features are finite"):
        seg.train(X, torch.zeros(10, dtype=torch.long), num_iters=5)
    assert all(torch.equal(a, b) for a, b in zip(before, seg.model.parameters()))


@pytest.mark.parametrize("num_classes", [0, -2, 2.5, True, None])
def test_iou_refuses_a_bad_number_of_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        cd.compute_iou(np.zeros((3, 3), int), np.zeros((3, 3), int), num_classes)
