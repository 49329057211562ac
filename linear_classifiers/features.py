"""Hand-made image features for the linear classifiers: HOG and a hue histogram.

The course's features notebook trains the linear SVM (and a two-layer net) on these
instead of raw pixels::

    feature_fns = [hog_feature, lambda img: color_histogram_hsv(img, nbin=10)]
    X_train_feats = extract_features(X_train, feature_fns, verbose=True)   # (N, F)

``hog_feature`` sees texture and shape and ignores colour; ``color_histogram_hsv``
sees colour and ignores where it is. Images are ``(H, W, 3)`` RGB in ``[0, 255]``
(``load_CIFAR10``'s layout) or ``(H, W)`` grey. NumPy only.
"""

import numpy as np

# ITU-R BT.601 luma weights.
_LUMA = np.array([0.299, 0.587, 0.114])


def _image(im, what):
    im = np.asarray(im)
    if im.ndim == 3 and im.shape[2] == 1:
        im = im[:, :, 0]
    if im.ndim not in (2, 3) or (im.ndim == 3 and im.shape[2] != 3):
        raise ValueError(f"{what}: an image must be (H, W) grey or (H, W, 3) RGB, got shape {im.shape}; "
                         f"for an (N, ...) batch use extract_features, and NCHW arrays need "
                         f".transpose(0, 2, 3, 1)")
    if not (np.issubdtype(im.dtype, np.number) and not np.issubdtype(im.dtype, np.complexfloating)):
        raise ValueError(f"{what}: image dtype must be numeric, got {im.dtype}")
    return im.astype(np.float64, copy=False)


def _check_finite(im, what, why):
    """Refuse NaN or infinite pixels, saying how many and ``why`` they cannot be used."""
    if not np.isfinite(im).all():
        raise ValueError(f"{what}: the image holds {np.count_nonzero(~np.isfinite(im))} "
                         f"NaN or infinite values, {why}")


def rgb2gray(rgb):
    """Luma ``0.299 R + 0.587 G + 0.114 B`` of an ``(..., 3)`` image."""
    return np.asarray(rgb, dtype=np.float64) @ _LUMA


def hog_feature(im, cell_size=8, orientations=9):
    """Histogram of oriented gradients: per cell, how much edge there is in each direction.

    The gradient is the centred difference ``[-1, 0, 1]`` along each axis of the grey
    image (zero on the border rows and columns). Its magnitude is split between the two
    orientation bins nearest to its unsigned direction (``[0, 180)`` degrees, bins of
    ``180 / orientations`` degrees, linear in the angle), and summed over each
    ``cell_size x cell_size`` cell; pixels beyond the last whole cell are left out.

    Parameters
    ----------
    im : ndarray, (H, W, 3) RGB or (H, W) grey
    cell_size : int, cell side in pixels
    orientations : int, number of direction bins

    Returns
    -------
    feature : ndarray, (H // cell_size * (W // cell_size) * orientations,) float64: the
        mean magnitude per pixel of each (cell row, cell column, bin), in that order.
        For a 32x32 image: 4 * 4 * 9 = 144 values.

    Raises
    ------
    ValueError
        For NaN or infinite pixels, whose gradients have no direction.
    """
    g = _image(im, "hog_feature")
    # A NaN gradient has no direction: its bin index would be a garbage integer.
    _check_finite(g, "hog_feature", "which have no gradient direction")
    g = rgb2gray(g) if g.ndim == 3 else g
    if not (isinstance(cell_size, (int, np.integer)) and cell_size >= 1):
        raise ValueError(f"hog_feature: cell_size must be a positive int, got {cell_size!r}")
    if not (isinstance(orientations, (int, np.integer)) and orientations >= 1):
        raise ValueError(f"hog_feature: orientations must be a positive int, got {orientations!r}")
    H, W = g.shape
    cy, cx = H // cell_size, W // cell_size
    if cy == 0 or cx == 0:
        raise ValueError(f"hog_feature: a {H}x{W} image holds no whole {cell_size}x{cell_size} cell; "
                         f"use a smaller cell_size")
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, 1:-1] = g[:, 2:] - g[:, :-2]
    gy[1:-1, :] = g[2:, :] - g[:-2, :]
    g_mag = np.hypot(gx, gy)[:cy * cell_size, :cx * cell_size]
    angle = np.rad2deg(np.arctan2(gy, gx))[:cy * cell_size, :cx * cell_size] % 180.0

    # Bin b is centred on (b + 0.5) * width; an angle between two centres is shared by both.
    position = angle / (180.0 / orientations) - 0.5
    lower = np.floor(position)
    upper_share = position - lower
    lower = lower.astype(np.intp) % orientations
    upper = (lower + 1) % orientations

    rows = np.arange(cy * cell_size) // cell_size
    cols = np.arange(cx * cell_size) // cell_size
    cell = (rows[:, None] * cx + cols[None, :]) * orientations
    size = cy * cx * orientations
    hist = (np.bincount((cell + lower).ravel(), (g_mag * (1 - upper_share)).ravel(), minlength=size)
            + np.bincount((cell + upper).ravel(), (g_mag * upper_share).ravel(), minlength=size))
    return hist / (cell_size * cell_size)


def rgb_to_hsv(rgb):
    """Hue, saturation and value of RGB values in ``[0, 1]``, each in ``[0, 1]``.

    Hue is the angle on the colour wheel divided by 360 degrees: red 0, green 1/3,
    blue 2/3; 0 for greys, which have no hue (as ``matplotlib.colors.rgb_to_hsv``).
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"rgb_to_hsv: the last axis must hold R, G, B, got shape {rgb.shape}")
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    delta = v - rgb.min(axis=-1)
    safe = np.where(delta > 0, delta, 1.0)
    h = np.where(v == r, ((g - b) / safe) % 6.0,
                 np.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) / 6.0
    h = np.where(delta > 0, h, 0.0)
    s = np.where(v > 0, delta / np.where(v > 0, v, 1.0), 0.0)
    return np.stack([h, s, v], axis=-1)


def color_histogram_hsv(im, nbin=10, xmin=0, xmax=255, normalized=True):
    """Histogram of the hue of an RGB image.

    As in the course: the hue (in ``[0, 1)``) is scaled by ``xmax`` and binned into
    ``nbin`` equal bins spanning ``[xmin, xmax]``. With the defaults every pixel is counted.
    With ``xmin > 0`` the hues below ``xmin`` (reds and every grey, whose hue is 0) fall
    outside the bins and are not counted, exactly as the course's ``np.histogram`` drops
    them; with ``xmin < 0`` the bins below 0 stay empty.

    Parameters
    ----------
    im : ndarray, (H, W, 3) RGB with finite values in ``[xmin, xmax]``
    nbin : int, number of equal-width hue bins
    xmin, xmax : finite numbers, the range of the pixel values and of the bins
    normalized : bool, return the fraction of the counted pixels per bin (the course's
        ``density * bin width``), which sums to 1, instead of counts. When no pixel is
        counted (``xmin > 0`` and every hue below it, or an image with no pixels) the
        fractions are undefined and all zeros are returned, not the 0 / 0 = NaN of
        ``density=True``.

    Returns
    -------
    hist : ndarray, (nbin,) float64

    Raises
    ------
    ValueError
        For NaN or infinite pixels, which have no hue (they would be counted as hue 0).
    """
    im = _image(im, "color_histogram_hsv")
    if im.ndim != 3:
        raise ValueError(f"color_histogram_hsv: needs an (H, W, 3) RGB image, got shape {im.shape}; "
                         f"a grey image has no hue")
    if not (isinstance(nbin, (int, np.integer)) and nbin >= 1):
        raise ValueError(f"color_histogram_hsv: nbin must be a positive int, got {nbin!r}")
    for name, v in (("xmin", xmin), ("xmax", xmax)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not np.isfinite(v):
            raise ValueError(f"color_histogram_hsv: {name} must be a finite number, got {v!r}")
    if not xmax > xmin:
        raise ValueError(f"color_histogram_hsv: xmax must exceed xmin, got xmin={xmin}, xmax={xmax}")
    # rgb_to_hsv maps NaN to hue 0 (its comparisons are all False), so a NaN image would
    # pass as a red or grey one.
    _check_finite(im, "color_histogram_hsv", "which have no hue")
    hue = rgb_to_hsv((im - xmin) / (xmax - xmin))[..., 0] * xmax
    hist, _ = np.histogram(hue, bins=np.linspace(xmin, xmax, nbin + 1))
    hist = hist.astype(np.float64)
    if not normalized:
        return hist
    counted = hist.sum()
    # Divided by the pixels counted, not all pixels: the same for the defaults, where
    # every hue lies in the bins, and the course's sum of 1 when xmin > 0 drops some.
    return hist / counted if counted else hist


def extract_features(imgs, feature_fns, verbose=False):
    """Apply each feature function to each image and stack the results.

    Parameters
    ----------
    imgs : ndarray, (N, H, W, C) or (N, H, W), one image per row
    feature_fns : list of callables, each ``f(image) -> 1-D array`` of a fixed length
    verbose : bool, print progress every 1000 images

    Returns
    -------
    features : ndarray, (N, F1 + F2 + ...) float64; row i is the concatenation of
        ``f(imgs[i])`` over ``feature_fns``, in order.
    """
    imgs = np.asarray(imgs)
    if imgs.ndim not in (3, 4):
        raise ValueError(f"extract_features: imgs must be (N, H, W, C) or (N, H, W), got shape {imgs.shape}")
    feature_fns = list(feature_fns)
    if not feature_fns or not all(callable(f) for f in feature_fns):
        raise ValueError("extract_features: feature_fns must be a non-empty list of functions image -> features")
    N = imgs.shape[0]
    if N == 0:
        return np.zeros((0, 0))
    first = [np.ravel(f(imgs[0])) for f in feature_fns]
    bounds = np.cumsum([0] + [len(v) for v in first])
    features = np.empty((N, bounds[-1]))
    for j, v in enumerate(first):
        features[0, bounds[j]:bounds[j + 1]] = v
    for i in range(1, N):
        for j, f in enumerate(feature_fns):
            v = np.ravel(f(imgs[i]))
            if len(v) != bounds[j + 1] - bounds[j]:
                raise ValueError(f"extract_features: feature function {j} returned {len(v)} values for "
                                 f"image {i} but {bounds[j + 1] - bounds[j]} for image 0; every image "
                                 f"must give the same number")
            features[i, bounds[j]:bounds[j + 1]] = v
        if verbose and (i + 1) % 1000 == 0:
            print(f"Done extracting features for {i + 1} / {N} images")
    return features
