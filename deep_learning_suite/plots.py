"""Training plots saved as PNG: loss curve, accuracies, first-layer filters, confusion matrix;
image grids for the notebooks to show (``visualize_grid``, ``vis_grid``, ``vis_nn``); and
``image_from_url``, which fetches an image for a notebook to show.

matplotlib is imported inside each function (it is an optional dependency), and figures are
built with ``matplotlib.figure.Figure`` on the Agg canvas rather than through pyplot, so
nothing here opens a window or changes a notebook's backend.
"""

import numpy as np


def _figure(figsize):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'cs231n-toolkit[plot]'") from e
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_loss(loss_history, path, smooth=None):
    """Training loss per iteration, with a moving average (window ``smooth``, default ~1/50 of the run)."""
    loss = np.asarray(loss_history, dtype=np.float64)
    fig = _figure((7, 4))
    ax = fig.add_subplot()
    ax.plot(np.arange(1, loss.size + 1), loss, ".", ms=2, alpha=0.35, label="minibatch loss")
    k = smooth or max(1, loss.size // 50)
    if loss.size >= k > 1:
        avg = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k, loss.size + 1), avg, lw=2, label=f"moving average ({k})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("Training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_accuracy(train_acc_history, val_acc_history, path):
    """Train and validation accuracy at each check (the first point is after iteration 1)."""
    fig = _figure((7, 4))
    ax = fig.add_subplot()
    epochs = np.arange(len(train_acc_history))
    ax.plot(epochs, train_acc_history, "-o", label="train")
    ax.plot(epochs, val_acc_history, "-o", label="val")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("Classification accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def filter_grid(W, input_shape=None, padding=1):
    """Tile first-layer weights into one image with values in [0, 1].

    Parameters
    ----------
    W : ndarray
        Conv weights (F, C, HH, WW), or fully-connected weights (D, H) whose columns are
        reshaped to ``input_shape`` = (C, H, W) with C * H * W = D.
    input_shape : tuple, needed for 2-D ``W``
    padding : int, pixels between tiles

    Returns
    -------
    grid : ndarray (rows, cols) for one channel or (rows, cols, 3) for three; each filter
        is scaled to [0, 1] on its own, so weak filters stay visible.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim == 2:
        if input_shape is None or int(np.prod(input_shape)) != W.shape[0]:
            raise ValueError(f"W of shape {W.shape} needs input_shape (C, H, W) with "
                             f"C*H*W = {W.shape[0]}, got {input_shape}")
        W = W.T.reshape(W.shape[1], *input_shape)
    if W.ndim != 4:
        raise ValueError(f"W must be (F, C, HH, WW) or (D, H), got shape {W.shape}")
    F, C, HH, WW = W.shape
    if C not in (1, 3):
        W, C = W[:, :1], 1   # only the first input channel can be drawn faithfully
    lo = W.min(axis=(1, 2, 3), keepdims=True)
    hi = W.max(axis=(1, 2, 3), keepdims=True)
    W = (W - lo) / np.maximum(hi - lo, 1e-12)
    n = int(np.ceil(np.sqrt(F)))
    rows = int(np.ceil(F / n))
    grid = np.ones((rows * (HH + padding) - padding, n * (WW + padding) - padding, C))
    for i in range(F):
        r, c = divmod(i, n)
        grid[r * (HH + padding):r * (HH + padding) + HH,
             c * (WW + padding):c * (WW + padding) + WW] = W[i].transpose(1, 2, 0)
    return grid[..., 0] if C == 1 else grid


def _image_stack(what, Xs):
    """``Xs`` as a float64 (N, H, W, C) array with N >= 1, or a ValueError that says how to get one."""
    Xs = np.asarray(Xs, dtype=np.float64)
    if Xs.ndim != 4 or Xs.shape[0] == 0:
        raise ValueError(f"{what}: Xs must be (N, H, W, C) with N >= 1, got shape {Xs.shape}; "
                         f"conv weights (F, C, HH, WW) need .transpose(0, 2, 3, 1)")
    return Xs


def _rescale(X, ubound=1.0, axis=None):
    """``X`` scaled linearly to ``[0, ubound]`` over ``axis`` (all of it by default).

    A constant stretch becomes zeros rather than the 0 / 0 = NaN the course's code gives.
    """
    lo = X.min(axis=axis, keepdims=True)
    span = X.max(axis=axis, keepdims=True) - lo
    return ubound * (X - lo) / np.where(span > 0, span, 1.0)


def _tile(Xs, n_rows, n_cols, padding, fill=0.0, trailing=False):
    """Images ``Xs`` (N, H, W, C) placed row by row in an ``n_rows`` x ``n_cols`` grid.

    Neighbours are ``padding`` pixels apart; ``trailing`` also leaves ``padding`` pixels after
    the last row and column, as the course's ``vis_grid`` and ``vis_nn`` do. Every pixel no
    image covers holds ``fill``.
    """
    N, H, W, C = Xs.shape
    end = 0 if trailing else padding
    grid = np.full((n_rows * (H + padding) - end, n_cols * (W + padding) - end, C), fill, dtype=np.float64)
    for i in range(N):
        r, c = divmod(i, n_cols)
        grid[r * (H + padding):r * (H + padding) + H, c * (W + padding):c * (W + padding) + W] = Xs[i]
    return grid


def visualize_grid(Xs, ubound=255.0, padding=1):
    """Tile images into one square grid, as the course's ``vis_utils.visualize_grid`` does.

    Parameters
    ----------
    Xs : ndarray, (N, H, W, C), e.g. ``model.params['W1'].transpose(0, 2, 3, 1)``
    ubound : float, each image is scaled on its own to ``[0, ubound]``
    padding : int, blank (zero) pixels between neighbouring images

    Returns
    -------
    grid : ndarray, (G * H + (G - 1) * padding, G * W + (G - 1) * padding, C) with
        ``G = ceil(sqrt(N))``; images fill it row by row and leftover cells stay zero.
        A constant image becomes zeros.
    """
    Xs = _image_stack("visualize_grid", Xs)
    if not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"visualize_grid: padding must be an int >= 0, got {padding!r}")
    G = int(np.ceil(np.sqrt(Xs.shape[0])))
    return _tile(_rescale(Xs, ubound, axis=(1, 2, 3)), G, G, padding)


def vis_grid(Xs):
    """Tile images into one square grid scaled as a whole to [0, 1], as the course's
    ``vis_utils.vis_grid`` does.

    Unlike ``visualize_grid``, which scales each image on its own, one scale serves every
    image, so their brightnesses stay comparable.

    Parameters
    ----------
    Xs : ndarray, (N, H, W, C)

    Returns
    -------
    grid : ndarray of float64, (A * H + A, A * W + A, C) with ``A = ceil(sqrt(N))``. Image n
        sits in row ``n // A``, column ``n % A``, with a 1-pixel border after every row and
        column (the course's layout); the border and the leftover cells hold the smallest
        value of ``Xs``, so they come out 0. Constant ``Xs`` gives zeros.
    """
    Xs = _image_stack("vis_grid", Xs)
    A = int(np.ceil(np.sqrt(Xs.shape[0])))
    return _rescale(_tile(Xs, A, A, padding=1, fill=Xs.min(), trailing=True))


def vis_nn(rows):
    """Lay out rows of images, such as each query followed by its nearest neighbours, in one
    grid scaled as a whole to [0, 1], as the course's ``vis_utils.vis_nn`` does.

    Parameters
    ----------
    rows : sequence of N sequences of D images, each (H, W, C) and all of one shape (an
        (N, D, H, W, C) array will do)

    Returns
    -------
    grid : ndarray of float64, (N * H + N, D * W + D, C), ``rows[i][j]`` at row i, column j,
        with a 1-pixel border after every row and column. As in the course, the border is 1
        before the scaling (unlike ``vis_grid``'s, which is the smallest value), so it takes
        part in the scale when 1 lies outside the images' range. A grid of one value gives
        zeros (the course's gives NaN).
    """
    if len(rows) == 0:
        raise ValueError("vis_nn: rows must hold at least one row of images")
    lengths = [len(row) for row in rows]
    if len(set(lengths)) != 1:
        raise ValueError(f"vis_nn: rows must be rows of one length (D images each); their lengths are {lengths}")
    if lengths[0] == 0:
        raise ValueError("vis_nn: each row must hold at least one image")
    images = [np.asarray(x, dtype=np.float64) for row in rows for x in row]
    D, shape = lengths[0], images[0].shape
    if len(shape) != 3:
        raise ValueError(f"vis_nn: each image must be (H, W, C), got shape {shape}")
    for k, x in enumerate(images):
        if x.shape != shape:
            raise ValueError(f"vis_nn: the images must all be of one shape {shape}, but row {k // D}, "
                             f"image {k % D} is {x.shape}")
    Xs = np.stack(images)
    return _rescale(_tile(Xs, len(rows), D, padding=1, fill=1.0, trailing=True))


def plot_filters(W, path, input_shape=None, max_filters=100, title="First-layer weights"):
    """Save ``filter_grid(W)`` (at most ``max_filters`` filters) as an image."""
    W = np.asarray(W)
    W = W[:max_filters] if W.ndim == 4 else W[:, :max_filters]
    grid = filter_grid(W, input_shape)
    fig = _figure((6, 6))
    ax = fig.add_subplot()
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, interpolation="nearest")
    ax.set_title(f"{title} ({W.shape[0] if W.ndim == 4 else W.shape[1]} shown)")
    ax.axis("off")
    return _save(fig, path)


def _labels(y, name, num_classes):
    """``y`` as an int64 array after checking it holds whole numbers in ``[0, num_classes)``."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold integer class labels, not dtype {y.dtype}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"{name} must hold integer class labels; it has non-integer values")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name} must hold labels in [0, {num_classes}); its values run from "
                         f"{y.min()} to {y.max()}")
    return y


def confusion_matrix(y_true, y_pred, num_classes):
    """Counts ``M[i, j]`` of samples of true class i predicted as class j.

    ``y_true`` and ``y_pred`` are equal-length sequences of integer labels in
    ``[0, num_classes)`` (floats holding whole numbers are accepted); anything else, including
    a label out of range, raises ``ValueError`` instead of being counted in the wrong cell.
    """
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    num_classes = int(num_classes)
    y_true = _labels(y_true, "y_true", num_classes)
    y_pred = _labels(y_pred, "y_pred", num_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must match")
    if y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D sequences of labels, got shape {y_true.shape}")
    return np.bincount(y_true * num_classes + y_pred,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def plot_confusion(y_true, y_pred, path, class_names=None, title="Confusion matrix (test)"):
    """Row-normalised confusion matrix with counts written in each cell."""
    num_classes = len(class_names) if class_names else int(max(np.max(y_true), np.max(y_pred))) + 1
    names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
    M = confusion_matrix(y_true, y_pred, num_classes)
    frac = M / np.maximum(M.sum(axis=1, keepdims=True), 1)
    fig = _figure((7.5, 6.5))
    ax = fig.add_subplot()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(num_classes), names, rotation=45, ha="right")
    ax.set_yticks(range(num_classes), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(M) / max(M.sum(), 1)
    ax.set_title(f"{title}: accuracy {acc:.1%}")
    for i in range(num_classes):
        for j in range(num_classes):
            if M[i, j]:
                ax.text(j, i, str(M[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    return _save(fig, path)


def image_from_url(url, timeout=10, max_bytes=20 * 2**20):
    """Download an image and decode it, as the captioning notebooks do to show COCO images.

    Parameters
    ----------
    url : str
        http(s) or file URL of a JPEG, PNG or other format Pillow reads.
    timeout : float
        Seconds to wait for the server.
    max_bytes : int
        Larger downloads are refused (a photo is a few hundred kB).

    Returns
    -------
    ndarray of uint8, (H, W, 3) for colour or (H, W) for grey; or None when the image cannot be
    fetched or decoded. COCO's Flickr URLs are years old and many are gone, so, as in the
    course, a failure prints why and returns None, and a loop over captions carries on.
    """
    import io
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as f:
            raw = f.read(max_bytes + 1)
    except urllib.error.HTTPError as e:
        print("HTTP Error: ", e.code, url)
        return None
    except (urllib.error.URLError, OSError, ValueError) as e:
        print("URL Error: ", getattr(e, "reason", e), url)
        return None
    if len(raw) > max_bytes:
        print(f"Image Error: more than {max_bytes} bytes, not read: ", url)
        return None
    try:
        from PIL import Image           # installed with matplotlib, the plot extra
    except ImportError as e:
        raise ImportError("image_from_url needs Pillow: pip install 'cs231n-toolkit[plot]'") from e
    try:
        with Image.open(io.BytesIO(raw)) as img:
            return np.asarray(img.convert("RGB") if img.mode not in ("RGB", "L") else img)
    except (OSError, Image.DecompressionBombError) as e:
        print("Image Error: ", e, url)
        return None
