import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from deep_learning_suite import simclr  # noqa: E402
from deep_learning_suite import simclr_augment as aug  # noqa: E402
from deep_learning_suite.torch_models import ResNet18  # noqa: E402
from deep_learning_suite.trainer import TrainingDivergedError  # noqa: E402
from deep_learning_suite.utils import rel_error  # noqa: E402

from .test_data import write_cifar  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread):
    yield


def _pair(rng, N, D, dtype=torch.float64):
    return (torch.tensor(rng.standard_normal((N, D)), dtype=dtype),
            torch.tensor(rng.standard_normal((N, D)), dtype=dtype))


def _oracle_loss(left, right, tau):
    # NT-Xent as 2N-way classification: row i's logits are its similarities to every other
    # row (itself masked out), and the right class is its partner.
    N = left.shape[0]
    out = torch.cat([left, right])
    logits = F.cosine_similarity(out[:, None], out[None], dim=-1) / tau
    logits = logits.masked_fill(torch.eye(2 * N, dtype=torch.bool), float("-inf"))
    partner = torch.cat([torch.arange(N, 2 * N), torch.arange(N)])
    return F.cross_entropy(logits, partner)


# --------------------------------------------------------------------------- loss

def test_sim_is_cosine_similarity(rng):
    for _ in range(5):
        a, b = torch.tensor(rng.standard_normal((2, 9)))
        s = simclr.sim(a, b)
        assert s.ndim == 0
        assert torch.allclose(s, F.cosine_similarity(a, b, dim=0), rtol=1e-12, atol=1e-14)
    a = torch.tensor([3.0, 4.0])
    assert simclr.sim(a, 2 * a).item() == pytest.approx(1.0)
    assert simclr.sim(a, -a).item() == pytest.approx(-1.0)
    assert simclr.sim(a, torch.tensor([-4.0, 3.0])).item() == pytest.approx(0.0)
    assert simclr.sim(a, torch.zeros(2)).item() == 0  # no NaN for a zero vector


@pytest.mark.parametrize("N, D, tau", [(1, 3, 0.5), (2, 5, 0.1), (4, 8, 0.5), (7, 3, 1.0),
                                       (16, 32, 0.07), (5, 128, 2.0)])
def test_naive_vectorized_and_oracle_agree(rng, N, D, tau):
    left, right = _pair(rng, N, D)
    naive = simclr.simclr_loss_naive(left, right, tau)
    vec = simclr.simclr_loss_vectorized(left, right, tau, device="cpu")
    oracle = _oracle_loss(left, right, tau)
    assert naive.ndim == 0 and vec.ndim == 0 and vec.dtype == torch.float64
    assert rel_error(naive.item(), vec.item()) < 1e-10
    assert rel_error(oracle.item(), vec.item()) < 1e-10


def test_loss_closed_forms():
    tau = 0.5
    # Every embedding the same: all 2N - 1 candidates score alike, loss log(2N - 1).
    same = torch.ones(3, 4, dtype=torch.float64)
    for fn in (simclr.simclr_loss_naive, simclr.simclr_loss_vectorized):
        assert fn(same, 2 * same, tau).item() == pytest.approx(math.log(5), rel=1e-12)
    # Two orthogonal images seen identically: each row has its positive at similarity 1 and
    # two negatives at 0.
    e = torch.eye(2, 4, dtype=torch.float64)
    want = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))
    for fn in (simclr.simclr_loss_naive, simclr.simclr_loss_vectorized):
        assert fn(e, e.clone(), tau).item() == pytest.approx(want, rel=1e-12)
    # N = 1: the positive is the only candidate.
    assert simclr.simclr_loss_vectorized(torch.randn(1, 3), torch.randn(1, 3), tau).item() \
        == pytest.approx(0.0, abs=1e-6)


def test_loss_is_invariant_to_scale_and_symmetric_in_the_views(rng):
    left, right = _pair(rng, 6, 10)
    loss = simclr.simclr_loss_vectorized(left, right, 0.3)
    assert torch.allclose(simclr.simclr_loss_vectorized(3 * left, 0.5 * right, 0.3), loss)
    assert torch.allclose(simclr.simclr_loss_vectorized(right, left, 0.3), loss)
    perm = torch.from_numpy(rng.permutation(6))
    assert torch.allclose(simclr.simclr_loss_vectorized(left[perm], right[perm], 0.3), loss)


def test_vectorized_is_stable_at_tiny_temperature(rng):
    left, right = _pair(rng, 8, 16, dtype=torch.float32)
    loss = simclr.simclr_loss_vectorized(left, right, 1e-3)
    assert torch.isfinite(loss)
    assert rel_error(loss.item(), _oracle_loss(left.double(), right.double(), 1e-3).item()) < 1e-4


def test_sim_matrix_and_positive_pairs(rng):
    left, right = _pair(rng, 5, 7)
    out = torch.cat([left, right])
    S = simclr.compute_sim_matrix(out)
    assert S.shape == (10, 10)
    assert torch.allclose(S, S.T, atol=1e-15)
    assert torch.allclose(S.diagonal(), torch.ones(10, dtype=torch.float64))
    assert torch.allclose(S, F.cosine_similarity(out[:, None], out[None], dim=-1))
    assert S.abs().max() <= 1 + 1e-12
    pos = simclr.sim_positive_pairs(left, right)
    assert pos.shape == (5, 1)
    assert torch.allclose(pos[:, 0], F.cosine_similarity(left, right, dim=1))
    assert torch.allclose(pos[:, 0], S.diagonal(5))


def test_vectorized_gradients_pass_gradcheck(rng):
    left, right = _pair(rng, 3, 4)
    left.requires_grad_(True)
    right.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: simclr.simclr_loss_vectorized(a, b, 0.5),
                                    (left, right), eps=1e-6, atol=1e-6)
    # The gradient of the naive loop is the same.
    simclr.simclr_loss_vectorized(left, right, 0.5).backward()
    g = left.grad.clone(), right.grad.clone()
    left.grad = right.grad = None
    simclr.simclr_loss_naive(left, right, 0.5).backward()
    assert torch.allclose(left.grad, g[0]) and torch.allclose(right.grad, g[1])


def test_loss_falls_as_the_views_align(rng):
    left, other = _pair(rng, 8, 16)
    losses = [simclr.simclr_loss_vectorized(left, (1 - a) * other + a * left, 0.5).item()
              for a in (0.0, 0.3, 0.6, 0.9, 1.0)]
    assert all(x > y for x, y in zip(losses, losses[1:])), losses


@pytest.mark.parametrize("left, right", [
    (torch.zeros(3, 4), torch.zeros(3, 5)),
    (torch.zeros(3, 4), torch.zeros(2, 4)),
    (torch.zeros(4), torch.zeros(4)),
    (torch.zeros(0, 4), torch.zeros(0, 4)),
    (np.zeros((3, 4)), np.zeros((3, 4))),
])
def test_bad_shapes_are_refused(left, right):
    for fn in (simclr.simclr_loss_naive, simclr.simclr_loss_vectorized):
        with pytest.raises(ValueError, match="out_left"):
            fn(left, right, 0.5)
    with pytest.raises(ValueError, match="out_left"):
        simclr.sim_positive_pairs(left, right)


@pytest.mark.parametrize("tau", [0, -0.5, float("nan"), float("inf")])
def test_bad_temperature_is_refused(tau):
    x = torch.randn(3, 4)
    for fn in (simclr.simclr_loss_naive, simclr.simclr_loss_vectorized):
        with pytest.raises(ValueError, match="tau"):
            fn(x, x, tau)


def test_sim_and_sim_matrix_refuse_bad_shapes():
    with pytest.raises(ValueError, match="1-D"):
        simclr.sim(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="1-D"):
        simclr.sim(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"\(M, D\)"):
        simclr.compute_sim_matrix(torch.zeros(3))


# --------------------------------------------------------------------------- augmentations

def _image(rng, size=32):
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_train_transform_shape_dtype_and_range(rng):
    img = _image(rng)
    x = aug.compute_train_transform()(img)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    lo = (0 - torch.tensor(aug.CIFAR10_MEAN)) / torch.tensor(aug.CIFAR10_STD)
    hi = (1 - torch.tensor(aug.CIFAR10_MEAN)) / torch.tensor(aug.CIFAR10_STD)
    assert (x >= lo[:, None, None] - 1e-5).all() and (x <= hi[:, None, None] + 1e-5).all()


def test_train_transform_accepts_pil_images_like_arrays(rng):
    Image = pytest.importorskip("PIL.Image")
    img = _image(rng)
    a, b = aug.compute_train_transform(seed=7), aug.compute_train_transform(seed=7)
    for _ in range(3):
        assert torch.equal(a(img), b(Image.fromarray(img)))


def test_train_transform_is_reproducible_and_random(rng):
    img = _image(rng)
    state = torch.random.get_rng_state()
    a, b = aug.compute_train_transform(seed=5), aug.compute_train_transform(seed=5)
    views_a, views_b = [a(img) for _ in range(6)], [b(img) for _ in range(6)]
    assert all(torch.equal(x, y) for x, y in zip(views_a, views_b))
    assert not any(torch.equal(views_a[i], views_a[j]) for i in range(6) for j in range(i))
    assert not torch.equal(aug.compute_train_transform(seed=6)(img), views_a[0])
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    a.reseed(5)
    assert torch.equal(a(img), views_a[0])


def test_test_transform_is_to_tensor_and_normalize_exactly(rng):
    img = _image(rng, 8)
    x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
    mean, std = torch.tensor(aug.CIFAR10_MEAN), torch.tensor(aug.CIFAR10_STD)
    want = (x - mean[:, None, None]) / std[:, None, None]
    t = aug.compute_test_transform()
    assert torch.equal(t(img), want) and torch.equal(t(img), want)


def test_to_tensor_refuses_other_arrays():
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3))):
        with pytest.raises(ValueError, match="uint8"):
            aug.to_tensor(bad)


def test_grayscale_uses_luma_weights_and_keeps_three_channels():
    x = torch.zeros(3, 2, 2)
    x[0, 0, 0], x[1, 0, 1], x[2, 1, 0] = 1.0, 1.0, 1.0     # red, green, blue, black pixels
    g = aug.RandomGrayscale(p=1.0)(x)
    assert g.shape == (3, 2, 2) and torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
    assert torch.allclose(g[0], torch.tensor([[0.299, 0.587], [0.114, 0.0]]))
    assert aug.RandomGrayscale(p=0.0)(x) is x


def test_flip_mirrors_columns():
    x = torch.arange(24.0).reshape(3, 2, 4)
    assert torch.equal(aug.RandomHorizontalFlip(p=1.0)(x), x[:, :, [3, 2, 1, 0]])
    assert aug.RandomHorizontalFlip(p=0.0)(x) is x
    gen = torch.Generator().manual_seed(0)
    flips = [not torch.equal(aug.RandomHorizontalFlip()(x, gen), x) for _ in range(400)]
    assert 150 < sum(flips) < 250


def test_hsv_known_colours_and_round_trip():
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5],
                        [1.0, 0.0, 1.0]]).T[:, None, :]                 # (3, 1, 5)
    h, s, v = aug.rgb_to_hsv(rgb)[:, 0]
    assert torch.allclose(h, torch.tensor([0.0, 1 / 3, 2 / 3, 0.0, 5 / 6]))
    assert torch.allclose(s, torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0]))
    assert torch.allclose(v, torch.tensor([1.0, 1.0, 1.0, 0.5, 1.0]))
    x = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(aug.hsv_to_rgb(aug.rgb_to_hsv(x)), x, atol=1e-6)
    # A third of a turn takes red to green and green to blue.
    assert torch.allclose(aug.adjust_hue(rgb[:, :, :2], 1 / 3)[:, 0].T,
                          torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), atol=1e-6)
    with pytest.raises(ValueError, match="hue"):
        aug.adjust_hue(x, 0.7)


def test_colour_adjustments_at_their_extremes(rng):
    x = aug.to_tensor(_image(rng, 6))
    assert torch.equal(aug.adjust_brightness(x, 0.0), torch.zeros_like(x))
    flat = aug.adjust_contrast(x, 0.0)
    assert torch.allclose(flat, aug.rgb_to_grayscale(x).mean().expand_as(x))
    assert torch.allclose(aug.adjust_saturation(x, 0.0), aug.rgb_to_grayscale(x))
    assert torch.allclose(aug.ColorJitter()(x), x, atol=1e-6)      # zero strengths: identity
    y = aug.ColorJitter(0.4, 0.4, 0.4, 0.1)(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and not torch.allclose(y, x)


def test_random_resized_crop_params_respect_scale_and_ratio():
    crop = aug.RandomResizedCrop(32)
    gen = torch.Generator().manual_seed(3)
    areas = []
    for _ in range(300):
        top, left, h, w = crop.get_params(32, 32, gen)
        assert 0 <= top and top + h <= 32 and 0 <= left and left + w <= 32 and h > 0 and w > 0
        assert 0.6 <= w / h <= 1.6                       # 3/4..4/3 up to rounding of small crops
        areas.append(h * w / 1024)
    assert min(areas) < 0.2 and max(areas) > 0.8
    # No draw can fit a wide ratio in a tall image: the centred fallback is used.
    tall = aug.RandomResizedCrop(8, scale=(0.9, 1.0), ratio=(3.0, 4.0))
    assert tall.get_params(40, 4, gen) == (19, 0, 1, 4)


def test_resized_crop_cuts_and_resizes():
    x = torch.rand(3, 10, 12)
    assert torch.equal(aug.resized_crop(x, 2, 3, 5, 4, (5, 4)), x[:, 2:7, 3:7])
    const = torch.full((3, 7, 7), 0.25)
    assert torch.allclose(aug.resized_crop(const, 1, 1, 3, 5, 32), torch.full((3, 32, 32), 0.25))
    # Upsampling a 2x2 crop by 2 (bilinear, half-pixel centres): the corners keep their values.
    up = aug.resized_crop(torch.tensor([[[0.0, 1.0], [2.0, 3.0]]]).expand(3, 2, 2), 0, 0, 2, 2, 4)
    assert torch.allclose(up[0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))


# --------------------------------------------------------------------------- dataset

def test_cifar10_pair_gives_two_views_of_one_image(rng):
    data = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    targets = np.arange(5) % 3
    ds = simclr.CIFAR10Pair(data, targets, aug.compute_train_transform())
    assert len(ds) == 5 and ds.targets == [0, 1, 2, 0, 1]
    x_i, x_j, target = ds[3]
    assert x_i.shape == x_j.shape == (3, 32, 32) and target == 0
    assert not torch.equal(x_i, x_j)
    # With the deterministic test transform both views are the image itself.
    plain = simclr.CIFAR10Pair(data, targets, aug.compute_test_transform())
    a, b, _ = plain[3]
    assert torch.equal(a, b) and torch.equal(a, aug.compute_test_transform()(data[3]))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].shape == (4, 3, 32, 32) and batch[2].tolist() == [0, 1, 2, 0]
    raw = simclr.CIFAR10Pair(data, targets)[1]
    assert raw[0] is data[1] or np.array_equal(raw[0], data[1])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_draws_fresh_views_in_every_worker_and_epoch(rng, num_workers):
    # Eight copies of one image: any two equal views mean a repeated random draw. Worker
    # processes get copies of the pipeline in one state, and each epoch copies the parent's
    # again; the views must still all differ, and be reproducible under fixed seeds.
    data = np.stack([_image(rng)] * 8)

    def two_epochs(seed):
        ds = simclr.CIFAR10Pair(data, list(range(8)), aug.compute_train_transform(seed=seed))
        loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=num_workers,
                                             generator=torch.Generator().manual_seed(0))
        return torch.stack([torch.cat([torch.cat(b[:2]) for b in loader]) for _ in range(2)])

    views = two_epochs(5)
    assert views.shape == (2, 16, 3, 32, 32)
    assert torch.unique(views.flatten(2).flatten(0, 1), dim=0).shape[0] == 32
    assert torch.equal(two_epochs(5), views)
    other = two_epochs(6)          # the pipeline's seed still matters inside workers
    assert not any(torch.equal(a, b) for a in other.flatten(0, 1) for b in views.flatten(0, 1))


def test_cifar10_pair_wraps_a_dataset_of_pairs(rng):
    items = [(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), i) for i in range(3)]
    ds = simclr.CIFAR10Pair(items, transform=aug.compute_test_transform())
    x_i, x_j, t = ds[2]
    assert len(ds) == 3 and t == 2 and torch.equal(x_i, aug.compute_test_transform()(items[2][0]))


def test_cifar10_pair_refuses_bad_arrays():
    with pytest.raises(ValueError, match="uint8"):
        simclr.CIFAR10Pair(np.zeros((2, 32, 32, 3)), [0, 1])
    with pytest.raises(ValueError, match="targets"):
        simclr.CIFAR10Pair(np.zeros((2, 32, 32, 3), np.uint8), [0, 1, 2])
    with pytest.raises(ValueError, match="targets"):
        simclr.CIFAR10Pair(np.zeros((2, 32, 32, 3), np.uint8))


def test_from_cifar10_uses_the_toolkit_loader(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py", n=4)
    train = simclr.CIFAR10Pair.from_cifar10(tmp_path, train=True)   # the parent, as the course
    test = simclr.CIFAR10Pair.from_cifar10(tmp_path / "cifar-10-batches-py", train=False)
    assert len(train) == 20 and len(test) == 4
    first = batches["data_batch_1"]
    img, _, target = train[0]
    assert np.array_equal(img, first[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert target == first[b"labels"][0] and test.targets == batches["test_batch"][b"labels"]


def test_cifar10_pair_takes_torchvisions_cifar10_arguments(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py", n=4)
    t = aug.compute_test_transform()
    train = simclr.CIFAR10Pair(root=str(tmp_path), train=True, transform=t, download=True)
    test = simclr.CIFAR10Pair(root=tmp_path, train=False, transform=t, download=False)
    assert len(train) == 20 and len(test) == 4 and train.train and not test.train
    assert train.classes[0] == "airplane" and len(test.classes) == 10
    assert train.data.shape == (20, 32, 32, 3) and train.data.dtype == np.uint8
    assert test.targets == batches["test_batch"][b"labels"]
    x_i, x_j, target = test[1]
    img = batches["test_batch"][b"data"][1].reshape(3, 32, 32).transpose(1, 2, 0)
    assert torch.equal(x_i, t(img)) and torch.equal(x_j, t(img))
    assert target == batches["test_batch"][b"labels"][1]
    # Positionally as torchvision: (root, train, transform, target_transform, download).
    pos = simclr.CIFAR10Pair(str(tmp_path), False, None, lambda y: y + 100)
    raw_i, raw_j, shifted = pos[1]
    assert np.array_equal(raw_i, img) and shifted == target + 100 and len(pos) == 4
    assert len(simclr.CIFAR10Pair(tmp_path / "cifar-10-batches-py")) == 20  # train by default
    # from_cifar10 goes the same way and gives the same attributes.
    same = simclr.CIFAR10Pair.from_cifar10(tmp_path, train=False)
    assert np.array_equal(same.data, test.data) and same.classes == test.classes
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=4)))
    assert batch[0].shape == (4, 3, 32, 32) and batch[2].shape == (4,)


def test_cifar10_pair_root_errors(tmp_path):
    from deep_learning_suite.data import DatasetNotFoundError
    with pytest.raises(DatasetNotFoundError):
        simclr.CIFAR10Pair(root=tmp_path / "empty", train=True, download=False)
    data = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="root"):
        simclr.CIFAR10Pair(data, [0, 1], root=tmp_path)
    with pytest.raises(ValueError, match="root"):
        simclr.CIFAR10Pair(data, [0, 1], train=True)
    with pytest.raises(ValueError, match="root"):
        simclr.CIFAR10Pair()
    with pytest.raises(ValueError, match="train"):
        simclr.CIFAR10Pair(str(tmp_path), "yes")


# --------------------------------------------------------------------------- model and loops

def course_state_dict_shapes(feature_dim=128):
    """The course's ``Model(feature_dim).state_dict()`` as ordered (key, shape) pairs, derived
    from torchvision's ResNet-50 rules (not from torchvision): ``f`` is resnet50's children
    without maxpool and fc, i.e. conv1 (3x3 here), bn1, relu, layer1..4, avgpool at indices
    0..7; layer i has [3, 4, 6, 3][i] Bottlenecks of width [64, 128, 256, 512][i]: conv1/bn1
    1x1, conv2/bn2 3x3, conv3/bn3 1x1 to 4x the width, and the first block a downsample
    Sequential(conv 1x1, BN). Then ``g``: Linear(2048, 512, no bias), BatchNorm1d(512), ReLU,
    Linear(512, feature_dim)."""
    shapes = []

    def conv(name, c_out, c_in, k):
        shapes.append((f"{name}.weight", (c_out, c_in, k, k)))

    def bn(name, c):
        shapes.extend((f"{name}.{p}", (c,)) for p in ("weight", "bias", "running_mean",
                                                      "running_var"))
        shapes.append((f"{name}.num_batches_tracked", ()))

    conv("f.0", 64, 3, 3)
    bn("f.1", 64)
    c_in = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for b in range(blocks):
            name = f"f.{3 + stage}.{b}"
            conv(f"{name}.conv1", planes, c_in, 1)
            bn(f"{name}.bn1", planes)
            conv(f"{name}.conv2", planes, planes, 3)
            bn(f"{name}.bn2", planes)
            conv(f"{name}.conv3", 4 * planes, planes, 1)
            bn(f"{name}.bn3", 4 * planes)
            if b == 0:
                conv(f"{name}.downsample.0", 4 * planes, c_in, 1)
                bn(f"{name}.downsample.1", 4 * planes)
            c_in = 4 * planes
    shapes.append(("g.0.weight", (512, 2048)))
    bn("g.1", 512)
    shapes += [("g.3.weight", (feature_dim, 512)), ("g.3.bias", (feature_dim,))]
    return shapes


def course_state_dict(feature_dim=128, seed=0):
    """A state dict with the course's names and shapes and random values (BN variances > 0)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in course_state_dict_shapes(feature_dim):
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            sd[key] = 0.5 + torch.rand(shape, generator=g)
        else:
            sd[key] = 0.1 * torch.randn(shape, generator=g)
    return sd


@pytest.fixture(scope="module")
def resnet50_model():
    torch.manual_seed(0)
    return simclr.Model()


def test_default_model_has_the_course_state_dict_keys_and_shapes(resnet50_model):
    got = [(k, tuple(v.shape)) for k, v in resnet50_model.state_dict().items()]
    want = course_state_dict_shapes(128)
    assert got == want
    assert resnet50_model.width == 2048 and resnet50_model.arch == "resnet50"
    # torchvision's resnet50 has 25,557,032 parameters: less fc (2048 * 1000 + 1000) and the
    # 7x7 conv1 (64 * 3 * 49), plus the 3x3 one (64 * 3 * 9).
    assert sum(p.numel() for p in resnet50_model.f.parameters()) == \
        25_557_032 - 2_049_000 - 9408 + 1728
    other = [(k, tuple(v.shape)) for k, v in simclr.Model(feature_dim=16).state_dict().items()]
    assert other == course_state_dict_shapes(16)


def test_resnet50_layout_strides_and_init(resnet50_model):
    f = resnet50_model.f
    kinds = [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] + [nn.Sequential] * 4 + [nn.AdaptiveAvgPool2d]
    assert [type(m) for m in f] == kinds
    assert not any(isinstance(m, (nn.MaxPool2d, nn.Linear)) for m in f.modules())
    assert (f[0].kernel_size, f[0].stride, f[0].padding) == ((3, 3), (1, 1), (1, 1))
    for i, stage in enumerate(f[3:7]):
        first = stage[0]
        stride = (1, 1) if i == 0 else (2, 2)
        assert first.conv1.stride == (1, 1) and first.conv2.stride == stride   # v1.5
        assert first.downsample[0].stride == stride and first.downsample[0].kernel_size == (1, 1)
        assert all(block.downsample is None for block in stage[1:])
        for block in stage:
            assert torch.equal(block.bn3.weight, torch.ones_like(block.bn3.weight))  # no zero-init
            assert torch.equal(block.bn1.bias, torch.zeros_like(block.bn1.bias))
    # kaiming_normal_(fan_out): std sqrt(2 / (c_out * k * k)).
    w = f[6][1].conv2.weight
    assert w.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.05)
    assert abs(w.mean().item()) < 1e-3


def _reference_forward(sd, x):
    """The course's encoder in eval mode, written with F.* from the state dict alone."""
    def bn(h, name):
        return F.batch_norm(h, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                            sd[f"{name}.weight"], sd[f"{name}.bias"], training=False, eps=1e-5)
    h = F.relu(bn(F.conv2d(x, sd["f.0.weight"], padding=1), "f.1"))
    for stage, blocks in enumerate((3, 4, 6, 3)):
        for b in range(blocks):
            name = f"f.{3 + stage}.{b}"
            stride = 2 if stage > 0 and b == 0 else 1
            out = F.relu(bn(F.conv2d(h, sd[f"{name}.conv1.weight"]), f"{name}.bn1"))
            out = F.relu(bn(F.conv2d(out, sd[f"{name}.conv2.weight"], stride=stride, padding=1),
                            f"{name}.bn2"))
            out = bn(F.conv2d(out, sd[f"{name}.conv3.weight"]), f"{name}.bn3")
            if b == 0:
                h = bn(F.conv2d(h, sd[f"{name}.downsample.0.weight"], stride=stride),
                       f"{name}.downsample.1")
            h = F.relu(out + h)
    feature = h.mean(dim=(2, 3))
    z = F.relu(F.batch_norm(feature @ sd["g.0.weight"].T, sd["g.1.running_mean"],
                            sd["g.1.running_var"], sd["g.1.weight"], sd["g.1.bias"],
                            training=False))
    out = z @ sd["g.3.weight"].T + sd["g.3.bias"]
    return F.normalize(feature, dim=-1), F.normalize(out, dim=-1), h


def test_course_named_weights_load_strictly_and_compute_the_course_network():
    model = simclr.Model(feature_dim=16)
    sd = course_state_dict(16)
    result = model.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert all(torch.equal(v, sd[k]) for k, v in model.state_dict().items())
    model.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        pooled = model.f(x)
        feature, out = model(x)
        want_feature, want_out, before_pool = _reference_forward(sd, x)
    assert pooled.shape == (2, 2048, 1, 1) and before_pool.shape == (2, 2048, 4, 4)
    assert feature.shape == (2, 2048) and out.shape == (2, 16)
    assert torch.allclose(feature.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(feature, want_feature, atol=1e-5)
    assert torch.allclose(out, want_out, atol=1e-5)


def test_resnet18_option_keeps_the_toolkit_encoder():
    torch.manual_seed(0)
    model = simclr.Model(feature_dim=16, arch="resnet18").eval()
    assert model.width == 512
    x = torch.randn(3, 3, 16, 16)
    feature, out = model(x)
    assert feature.shape == (3, 512) and out.shape == (3, 16)
    assert torch.allclose(feature.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    assert not any(isinstance(m, nn.Linear) for m in model.f.modules())
    assert sum(p.numel() for p in model.g.parameters()) == 512 * 512 + 2 * 512 + 512 * 16 + 16
    # f is the ResNet-18 up to its classifier.
    resnet = ResNet18().eval()
    resnet.stem.load_state_dict(model.f[0].state_dict())
    resnet.blocks.load_state_dict(model.f[1].state_dict())
    with torch.no_grad():
        want = F.normalize(resnet.blocks(resnet.stem(x)).mean(dim=(2, 3)), dim=-1)
    assert torch.allclose(feature, want, atol=1e-6)
    with pytest.raises(ValueError, match="arch"):
        simclr.Model(arch="resnet34")


def _pair_loader(n, batch_size, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    data = torch.utils.data.TensorDataset(x, x + 0.1 * torch.randn(x.shape, generator=g),
                                          torch.arange(n) % 2)
    return torch.utils.data.DataLoader(data, batch_size=batch_size)


def test_train_runs_an_epoch_and_updates_the_model():
    torch.manual_seed(0)
    model = simclr.Model(feature_dim=8, arch="resnet18")
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = simclr.train(model, _pair_loader(16, 8), opt, 1, 1, batch_size=8, device="cpu",
                        progress=False)
    assert isinstance(loss, float) and math.isfinite(loss) and 0 < loss
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_train_steps_the_course_resnet50_on_a_tiny_batch():
    torch.manual_seed(0)
    model = simclr.Model(feature_dim=8)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    loss = simclr.train(model, _pair_loader(4, 4, size=32), opt, 1, 1, batch_size=4,
                        device="cpu", progress=False)
    assert math.isfinite(loss) and 0 < loss
    after = model.state_dict()
    for key in ("f.0.weight", "f.6.2.conv3.weight", "g.3.bias"):
        assert not torch.equal(before[key], after[key]), key
    assert after["f.1.num_batches_tracked"].item() == 2          # two views, one batch each


class _Projector(nn.Module):
    """A stand-in SimCLR net: (N, d) inputs -> (unit feature, unit projection)."""

    def __init__(self, d=4, scale=1.0):
        super().__init__()
        self.lin = nn.Linear(d, d)
        self.scale = scale

    def forward(self, x):
        out = self.lin(x) * self.scale
        return F.normalize(x, dim=-1), F.normalize(out, dim=-1)


def test_train_weights_the_mean_by_true_batch_sizes():
    torch.manual_seed(0)
    model = _Projector()
    x_i, x_j = torch.randn(5, 4), torch.randn(5, 4)
    loader = [(x_i[:3], x_j[:3], None), (x_i[3:], x_j[3:], None)]   # a short last batch
    mean = simclr.train(model, loader, torch.optim.SGD(model.parameters(), lr=0.0), 1, 1,
                        batch_size=3, temperature=0.5, device="cpu", progress=False)
    with torch.no_grad():
        losses = [simclr.simclr_loss_vectorized(model(a)[1], model(b)[1], 0.5).item()
                  for a, b, _ in loader]
    assert mean == pytest.approx((3 * losses[0] + 2 * losses[1]) / 5, rel=1e-6)


def test_train_stops_on_a_nan_loss_before_stepping():
    model = _Projector(scale=float("nan"))
    before = [p.detach().clone() for p in model.parameters()]
    loader = [(torch.randn(4, 4), torch.randn(4, 4), None)]
    with pytest.raises(TrainingDivergedError, match="nan"):
        simclr.train(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), 1, 1,
                     device="cpu", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def _class_data(n_per_class, c, d, noise, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(c).repeat_interleave(n_per_class)
    x = torch.eye(c, d)[y] + noise * torch.randn(len(y), d, generator=g)
    return x, y


def test_train_val_trains_and_evaluates_a_classifier():
    torch.manual_seed(0)
    x, y = _class_data(10, 3, 6, 0.1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8,
                                         shuffle=True)
    net = nn.Linear(6, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    first = simclr.train_val(net, loader, opt, 1, 20, device="cpu", progress=False)
    for epoch in range(2, 21):
        last = simclr.train_val(net, loader, opt, epoch, 20, device="cpu", progress=False)
    assert last[0] < first[0] and all(0 <= a <= 100 for a in first[1:] + last[1:])
    assert last[2] == 100.0                         # 3 classes: top-5 is top-3
    before = [p.detach().clone() for p in net.parameters()]
    loss, top1, top5 = simclr.train_val(net, loader, None, 1, 1, device="cpu", progress=False)
    assert top1 == 100.0 and loss > 0 and not net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_train_val_counts_top1_and_top5_hits():
    # Fixed logits: ranks of the target class are 1, 2, 6 and 5 of 7.
    logits = torch.tensor([[7., 6, 5, 4, 3, 2, 1]]).repeat(4, 1)
    target = torch.tensor([0, 1, 5, 4])
    net = nn.Identity()
    _, top1, top5 = simclr.train_val(net, [(logits, target)], None, 1, 1, device="cpu",
                                     progress=False)
    assert top1 == 25.0 and top5 == 75.0


def _knn_oracle(bank, bank_labels, feats, c, k, temperature):
    preds = []
    for f in feats:
        s = bank @ f
        idx = torch.argsort(s, descending=True)[:k]
        votes = torch.zeros(c, dtype=s.dtype)
        for i in idx:
            votes[bank_labels[i]] += torch.exp(s[i] / temperature)
        preds.append(int(votes.argmax()))
    return torch.tensor(preds)


def test_knn_monitor_is_perfect_on_separable_features_and_clips_k():
    x, y = _class_data(4, 3, 5, 0.05)
    pairs = torch.utils.data.TensorDataset(x, x, y)
    memory = torch.utils.data.DataLoader(pairs, batch_size=5, shuffle=True)  # labels travel
    top1, top5 = simclr.test(_Projector(5), memory, torch.utils.data.DataLoader(pairs, 5), 1, 1,
                             c=3, k=200, device="cpu", progress=False)
    assert top1 == 100.0 and top5 == 100.0


def test_knn_monitor_matches_a_per_image_vote(rng):
    bank_x = torch.tensor(rng.standard_normal((30, 6)), dtype=torch.float32)
    bank_y = torch.tensor(rng.integers(0, 4, 30))
    test_x = torch.tensor(rng.standard_normal((12, 6)), dtype=torch.float32)
    test_y = torch.tensor(rng.integers(0, 4, 12))
    net = _Projector(6)
    top1, top5 = simclr.test(net, [(bank_x, bank_y)], [(test_x[:7], test_y[:7]), (test_x[7:], test_y[7:])],
                             1, 1, c=4, temperature=0.3, k=5, device="cpu", progress=False)
    pred = _knn_oracle(F.normalize(bank_x, dim=-1), bank_y, F.normalize(test_x, dim=-1), 4, 5, 0.3)
    assert top1 == pytest.approx((pred == test_y).float().mean().item() * 100)
    assert 0 <= top1 <= 100 and top5 == 100.0


def test_knn_monitor_refuses_bad_arguments():
    loader = [(torch.randn(3, 4), torch.tensor([0, 1, 5]))]
    with pytest.raises(ValueError, match="labels"):
        simclr.test(_Projector(), loader, loader, 1, 1, c=3, device="cpu", progress=False)
    with pytest.raises(ValueError, match="k >= 1"):
        simclr.test(_Projector(), loader, loader, 1, 1, c=6, k=0, device="cpu", progress=False)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_train_val_stops_on_a_non_finite_loss(training, bad):
    # The second batch holds a non-finite image: training stops before that step (the first
    # batch's step is taken), evaluation refuses to report a meaningless mean.
    torch.manual_seed(0)
    x, y = torch.randn(4, 4), torch.tensor([0, 1, 2, 0])
    x_bad = x.clone()
    x_bad[1, 2] = bad
    net, reference = nn.Linear(4, 3), nn.Linear(4, 3)
    reference.load_state_dict(net.state_dict())
    optimizer = (lambda m: torch.optim.SGD(m.parameters(), lr=0.1)) if training else (lambda m: None)
    simclr.train_val(reference, [(x, y)], optimizer(reference), 3, 5, device="cpu", progress=False)
    mode = "training" if training else "evaluation"
    with pytest.raises(TrainingDivergedError, match=rf"{mode} epoch 3 of 5 at batch 2 \(after 4 images\)"):
        simclr.train_val(net, [(x, y), (x_bad, y)], optimizer(net), 3, 5, device="cpu", progress=False)
    # Only the first batch's step was taken (none in evaluation): no NaN reached the weights.
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), reference.parameters()))


@pytest.mark.parametrize("labels, c", [([0, 12], 10), ([-1, 0], 10), ([0, 3], 3)])
def test_knn_monitor_refuses_test_labels_out_of_range(labels, c):
    bank = [(torch.randn(3, 4), torch.tensor([0, 1, 2]))]
    test = [(torch.randn(2, 4), torch.tensor(labels))]
    with pytest.raises(ValueError, match=rf"test labels must be in 0\.\.{c - 1}.*batch 1"):
        simclr.test(_Projector(), bank, test, 1, 1, c=c, device="cpu", progress=False)


@pytest.mark.parametrize("train, files", [(True, [f"data_batch_{i}" for i in range(1, 6)]),
                                          (False, ["test_batch"])])
def test_cifar10_pair_reads_only_the_half_it_holds(tmp_path, monkeypatch, train, files):
    # The notebook builds three datasets; each used to read all six batch files.
    from deep_learning_suite import data
    write_cifar(tmp_path / "cifar-10-batches-py", n=4)
    read, real = [], data.load_CIFAR_batch
    monkeypatch.setattr(data, "load_CIFAR_batch", lambda f: read.append(Path(f).name) or real(f))
    ds = simclr.CIFAR10Pair(root=tmp_path, train=train)
    assert read == files and len(ds) == 4 * len(files)
