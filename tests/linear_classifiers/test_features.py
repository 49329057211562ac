import numpy as np
import pytest

from deep_learning_suite.data import load_sample
from linear_classifiers import LinearSVM
from linear_classifiers.features import (
    color_histogram_hsv,
    extract_features,
    hog_feature,
    rgb2gray,
    rgb_to_hsv,
)


def hog_by_loops(g, cell, bins):
    """The definition, pixel by pixel: centred differences, unsigned angle, two nearest bins."""
    H, W = g.shape
    cy, cx = H // cell, W // cell
    hist = np.zeros((cy, cx, bins))
    width = 180.0 / bins
    for y in range(cy * cell):
        for x in range(cx * cell):
            dx = g[y, x + 1] - g[y, x - 1] if 0 < x < W - 1 else 0.0
            dy = g[y + 1, x] - g[y - 1, x] if 0 < y < H - 1 else 0.0
            mag = np.hypot(dx, dy)
            angle = np.degrees(np.arctan2(dy, dx)) % 180.0
            pos = angle / width - 0.5
            lo = int(np.floor(pos))
            share = pos - lo
            hist[y // cell, x // cell, lo % bins] += mag * (1 - share)
            hist[y // cell, x // cell, (lo + 1) % bins] += mag * share
    return hist.ravel() / cell ** 2


@pytest.mark.parametrize("shape, cell, bins", [((32, 32), 8, 9), ((28, 28), 4, 9), ((17, 23), 5, 6),
                                               ((16, 16), 16, 4)])
def test_hog_matches_the_definition(rng, shape, cell, bins):
    g = rng.uniform(0, 255, size=shape)
    feature = hog_feature(g, cell_size=cell, orientations=bins)
    assert feature.shape == ((shape[0] // cell) * (shape[1] // cell) * bins,)
    assert np.allclose(feature, hog_by_loops(g, cell, bins), rtol=1e-12, atol=1e-12)


def test_hog_puts_stripes_in_their_direction():
    vertical = np.zeros((32, 32))
    vertical[:, ::4] = 255       # intensity changes along x: gradient angle 0 (= 180)
    per_bin = hog_feature(vertical).reshape(-1, 9).sum(axis=0)
    assert per_bin[0] == pytest.approx(per_bin[8]) and per_bin[0] > 0   # 0 degrees sits between them
    assert np.all(per_bin[1:8] == 0)
    horizontal = vertical.T      # changes along y: 90 degrees, the centre of bin 4
    per_bin = hog_feature(horizontal).reshape(-1, 9).sum(axis=0)
    assert per_bin[4] > 0 and np.all(np.delete(per_bin, 4) == 0)


def test_hog_of_rgb_is_hog_of_its_luma(rng):
    rgb = rng.uniform(0, 255, size=(32, 32, 3))
    assert np.allclose(hog_feature(rgb), hog_feature(rgb2gray(rgb)))
    assert hog_feature(rgb).shape == (144,)    # the course's size for a CIFAR-10 image
    assert np.all(hog_feature(np.full((32, 32, 3), 90.0)) == 0)
    assert np.array_equal(hog_feature(rgb[:, :, :1]), hog_feature(rgb[:, :, 0]))


@pytest.mark.parametrize("color, grey", [((255, 0, 0), 0.299 * 255), ((0, 255, 0), 0.587 * 255),
                                         ((0, 0, 255), 0.114 * 255), ((255, 255, 255), 255.0),
                                         ((90, 90, 90), 90.0), ((0, 0, 0), 0.0)])
def test_rgb2gray_weights_the_channels_as_bt601_luma(color, grey):
    # ITU-R BT.601 luma (PIL's "L", torchvision's rgb_to_grayscale). The course's features.py
    # has 0.144 for blue, a typo whose weights sum to 1.03 and would brighten white to 262.65;
    # with these a grey pixel keeps its level.
    im = np.empty((2, 3, 3))
    im[:] = color
    assert np.allclose(rgb2gray(im), np.full((2, 3), grey), rtol=1e-14, atol=0)
    assert rgb2gray(np.array(color, dtype=np.uint8)) == pytest.approx(grey, rel=1e-14)   # any (..., 3)


@pytest.mark.parametrize("im, kwargs, msg", [
    (np.zeros((3, 32, 32, 3)), {}, r"extract_features"),
    (np.zeros((3, 32, 32)), {}, r"\(H, W\) grey or \(H, W, 3\) RGB"),
    (np.zeros((6, 6)), {}, r"no whole 8x8 cell; use a smaller cell_size"),
    (np.zeros((8, 8)), {"cell_size": 0}, r"cell_size must be a positive int"),
    (np.zeros((8, 8)), {"orientations": 2.5}, r"orientations must be a positive int"),
    (np.array([["a"]]), {}, r"dtype must be numeric"),
])
def test_hog_rejects_bad_input(im, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        hog_feature(im, **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 3)])
def test_hog_rejects_non_finite_pixels(bad, shape):
    im = np.full(shape, 100.0)
    im[(5, 5) + (0,) * (im.ndim - 2)] = bad                 # was garbage bins and a cast warning
    with pytest.raises(ValueError, match="hog_feature: the image holds 1 NaN or infinite values"):
        hog_feature(im)


def test_rgb_to_hsv_matches_matplotlib(rng):
    colors = pytest.importorskip("matplotlib.colors")
    rgb = rng.random((500, 3))
    rgb[:20] = rng.random((20, 1))                  # greys: no hue, no saturation
    rgb[20:40, 1] = rgb[20:40, 0]                   # ties for the largest channel
    rgb[40] = 0
    rgb[41] = [1, 0, 0]
    assert np.allclose(rgb_to_hsv(rgb), colors.rgb_to_hsv(rgb), rtol=0, atol=1e-12)
    assert rgb_to_hsv(rgb.reshape(25, 20, 3)).shape == (25, 20, 3)
    with pytest.raises(ValueError, match="last axis must hold R, G, B"):
        rgb_to_hsv(rng.random((4, 2)))


@pytest.mark.parametrize("color, bin_index", [((255, 0, 0), 0), ((0, 255, 0), 3), ((0, 0, 255), 6),
                                              ((255, 0, 255), 8)])
def test_color_histogram_bins_pure_hues(color, bin_index):
    im = np.empty((4, 5, 3))
    im[:] = color
    hist = color_histogram_hsv(im, nbin=10)
    expected = np.zeros(10)
    expected[bin_index] = 1.0
    assert np.array_equal(hist, expected)


def test_color_histogram_fractions_and_counts(rng):
    im = rng.uniform(0, 255, size=(32, 32, 3))
    hist = color_histogram_hsv(im, nbin=7)
    assert hist.shape == (7,) and hist.sum() == pytest.approx(1.0)
    counts = color_histogram_hsv(im, nbin=7, normalized=False)
    assert counts.sum() == 32 * 32 and np.allclose(counts / counts.sum(), hist)
    hue = rgb_to_hsv(im / 255.0)[..., 0]
    assert counts[0] == np.sum(hue < 1 / 7)
    with pytest.raises(ValueError, match="a grey image has no hue"):
        color_histogram_hsv(im[:, :, 0])
    with pytest.raises(ValueError, match="xmax must exceed xmin"):
        color_histogram_hsv(im, xmin=5, xmax=5)


def test_extract_features_stacks_every_function_per_image(rng, capsys):
    imgs = rng.uniform(0, 255, size=(1001, 16, 16, 3))
    fns = [hog_feature, lambda img: color_histogram_hsv(img, nbin=5)]
    feats = extract_features(imgs, fns, verbose=True)
    assert feats.shape == (1001, 2 * 2 * 9 + 5)
    for i in (0, 1, 500, 1000):
        assert np.array_equal(feats[i], np.concatenate([hog_feature(imgs[i]), color_histogram_hsv(imgs[i], 5)]))
    assert "Done extracting features for 1000 / 1001 images" in capsys.readouterr().out
    assert extract_features(imgs[:0], fns).shape == (0, 0)


def test_extract_features_rejects_bad_input(rng):
    imgs = rng.uniform(0, 255, size=(3, 16, 16))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\) or \(N, H, W\)"):
        extract_features(imgs[0, 0], [hog_feature])
    with pytest.raises(ValueError, match="non-empty list of functions"):
        extract_features(imgs, [])
    calls = iter([3, 3, 4])
    with pytest.raises(ValueError, match="returned 4 values for image 2 but 3 for image 0"):
        extract_features(imgs, [lambda img: np.zeros(next(calls))])


def test_svm_on_hog_features_beats_raw_pixels():
    # What the features notebook shows on CIFAR-10, here on the shipped Fashion-MNIST
    # sample: the same linear SVM, the same training, HOG (4-pixel cells) instead of pixels.
    s = load_sample()

    def fit_and_score(train, test):
        mean, std = train.mean(axis=0), train.std(axis=0) + 1e-8
        Xtr = np.hstack([(train - mean) / std, np.ones((len(train), 1))])
        Xte = np.hstack([(test - mean) / std, np.ones((len(test), 1))])
        svm = LinearSVM()
        svm.train(Xtr, s["y_train"], learning_rate=1e-2, reg=1e-3, num_iters=1000, batch_size=200, seed=0)
        return np.mean(svm.predict(Xte) == s["y_test"])

    hog = [lambda img: hog_feature(img, cell_size=4)]
    hog_acc = fit_and_score(extract_features(s["X_train"], hog), extract_features(s["X_test"], hog))
    raw_acc = fit_and_score(s["X_train"].reshape(len(s["X_train"]), -1) / 255.0,
                            s["X_test"].reshape(len(s["X_test"]), -1) / 255.0)
    assert hog_acc > 0.85
    assert hog_acc > raw_acc + 0.01


def course_color_histogram_hsv(im, nbin=10, xmin=0, xmax=255, normalized=True):
    """The course's color_histogram_hsv, verbatim but for our rgb_to_hsv (matplotlib's)."""
    bins = np.linspace(xmin, xmax, nbin + 1)
    hsv = rgb_to_hsv(im / xmax) * xmax
    imhist, bin_edges = np.histogram(hsv[:, :, 0], bins=bins, density=normalized)
    return imhist * np.diff(bin_edges)


@pytest.mark.parametrize("nbin", [10, 7, 1])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_color_histogram_defaults_give_the_course_numbers(rng, nbin, dtype):
    im = rng.integers(0, 256, size=(32, 32, 3)).astype(dtype)
    im[:4] = 128                                            # some greys: hue 0
    ours = color_histogram_hsv(im, nbin=nbin)
    assert np.allclose(ours, course_color_histogram_hsv(im.astype(np.float64), nbin=nbin), rtol=0, atol=1e-15)
    assert np.array_equal(ours, color_histogram_hsv(im, nbin=nbin, normalized=False) / im[..., 0].size)


@pytest.mark.parametrize("im, kwargs", [
    (np.full((4, 4, 3), 128.0), {"xmin": 1}),               # grey: hue 0 < xmin, nothing counted
    (np.tile([200.0, 10.0, 10.0], (4, 4, 1)), {"xmin": 50}),  # red, hue 0
    (np.zeros((0, 5, 3)), {}),                               # no pixels at all
])
def test_color_histogram_with_nothing_counted_is_zeros_not_nan(im, kwargs):
    with np.errstate(all="raise"):
        hist = color_histogram_hsv(im, **kwargs)
    assert np.array_equal(hist, np.zeros(10))
    assert np.array_equal(color_histogram_hsv(im, normalized=False, **kwargs), np.zeros(10))


def test_color_histogram_with_xmin_sums_to_one_over_the_counted_hues(rng):
    # As the course's density * width: the hues below xmin are dropped and the rest sum to 1.
    im = rng.uniform(1, 255, size=(16, 16, 3))
    im[:8] = [200, 10, 10]                                   # half the image red, hue 0 < xmin
    hist = color_histogram_hsv(im, xmin=1)
    counts = color_histogram_hsv(im, xmin=1, normalized=False)
    assert counts.sum() < 16 * 16 and hist.sum() == pytest.approx(1.0)
    assert np.allclose(hist, counts / counts.sum())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_color_histogram_rejects_non_finite_pixels(bad, dtype):
    im = np.full((4, 4, 3), 100.0, dtype)
    im[1, 2, 0] = bad                                        # NaN used to count as hue 0
    with pytest.raises(ValueError, match="holds 1 NaN or infinite values, which have no hue"):
        color_histogram_hsv(im)


@pytest.mark.parametrize("kwargs, match", [({"xmax": np.nan}, "xmax must be a finite number"),
                                           ({"xmax": np.inf}, "xmax must be a finite number"),
                                           ({"xmin": "0"}, "xmin must be a finite number")])
def test_color_histogram_rejects_a_bad_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        color_histogram_hsv(np.full((4, 4, 3), 100.0), **kwargs)
