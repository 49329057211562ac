"""Looking inside a trained classifier (CS231n assignment 3, NetworkVisualization notebook).

Saliency maps (Simonyan et al., 2014), fooling images (Szegedy et al., 2014) and class
visualisation by gradient ascent on the image (Yosinski et al., 2015), for any PyTorch
classifier mapping (N, 3, H, W) images to (N, C) scores, such as ``squeezenet1_1``.

Images for the network are float tensors (1 or N, 3, H, W), normalised with
``SQUEEZENET_MEAN / SQUEEZENET_STD`` (``preprocess``); ``deprocess`` turns one back into a
uint8 (H, W, 3) array for ``plt.imshow``. The model's parameters are never updated here.
Like the course's ``compute_saliency_maps``, every function that runs the model first puts
it in eval mode (and leaves it there): the notebook builds SqueezeNet in train mode and never
calls ``.eval()`` itself, and its ``Dropout(0.5)`` would make each look at the scores a new
draw. ``requires_grad_(False)`` on the parameters saves work.
"""

import numbers
import random
import warnings

import numpy as np
import torch

from .imagenet import SQUEEZENET_MEAN, SQUEEZENET_STD, resize_shorter_side, to_pil_rgb


def preprocess(img, size=224):
    """Image (PIL, path, or uint8 (H, W, 3) array) -> float32 tensor (1, 3, H', W').

    The shorter side is resized to ``size`` (aspect kept, as torchvision's ``Resize(size)``),
    then each channel is normalised: ``(x / 255 - SQUEEZENET_MEAN) / SQUEEZENET_STD``.
    ``size=None`` keeps the image's size.
    """
    pil = to_pil_rgb(img)
    if size is not None:
        pil = resize_shorter_side(pil, size)
    x = (np.asarray(pil, dtype=np.float32) / 255.0 - SQUEEZENET_MEAN) / SQUEEZENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def rescale(x):
    """Stretch ``x`` linearly to span [0, 1] (a constant ``x`` becomes all zeros)."""
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else x - lo


def deprocess(img, should_rescale=True):
    """Undo ``preprocess``: tensor (1, 3, H, W) or (3, H, W) -> uint8 ndarray (H, W, 3).

    ``should_rescale`` stretches the un-normalised image to [0, 1] first (class
    visualisations leave the image's range); values are then clipped to [0, 1].
    """
    x = torch.as_tensor(img).detach().to("cpu", torch.float32)
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"deprocess takes one image, got a batch of {x.shape[0]}; index it first")
        x = x[0]
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"deprocess expects a (1, 3, H, W) or (3, H, W) image, got {tuple(img.shape)}")
    x = x * torch.from_numpy(SQUEEZENET_STD)[:, None, None] + torch.from_numpy(SQUEEZENET_MEAN)[:, None, None]
    if should_rescale:
        x = rescale(x)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _gaussian_kernel(sigma, truncate=4.0):
    radius = int(truncate * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum(), radius


def _blur_axis(x, w, radius, axis):
    # 'symmetric' padding (d c b a | a b c d | d c b a) is scipy.ndimage's 'reflect' mode.
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    xp = np.pad(x, pad, mode="symmetric")
    n = x.shape[axis]
    out = np.zeros_like(x)
    for k, wk in enumerate(w):
        out += wk * np.take(xp, np.arange(k, k + n), axis=axis)
    return out


def blur_image(X, sigma=1):
    """Gaussian-blur images (N, C, H, W) over H and W, in place; returns ``X``.

    Same result as ``scipy.ndimage.gaussian_filter1d`` along each axis (truncated at 4 sigma,
    reflected at the borders). A little blur each few steps keeps class visualisations from
    filling with high-frequency noise.
    """
    if X.ndim != 4:
        raise ValueError(f"blur_image expects (N, C, H, W), got shape {tuple(X.shape)}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    w, radius = _gaussian_kernel(float(sigma))
    x = X.detach().cpu().numpy().astype(np.float64)
    x = _blur_axis(_blur_axis(x, w, radius, 2), w, radius, 3)
    X.detach().copy_(torch.from_numpy(x))
    return X


def jitter(X, ox, oy):
    """Shift images (N, C, H, W) by ``ox`` pixels right and ``oy`` down, wrapping around.

    ``jitter(jitter(X, ox, oy), -ox, -oy)`` is ``X`` again; random shifts between steps make
    class visualisations robust to translation, which makes them look more natural.
    """
    return torch.roll(X, shifts=(int(oy), int(ox)), dims=(2, 3))


def _check_images(X, what):
    if not isinstance(X, torch.Tensor) or X.ndim != 4 or not X.is_floating_point():
        raise ValueError(f"{what}: X must be a float tensor of shape (N, 3, H, W), got "
                         f"{getattr(X, 'dtype', type(X).__name__)} {tuple(getattr(X, 'shape', ()))}")


def _check_class(scores, target_y, what):
    C = scores.shape[1]
    if int(target_y) != target_y or not 0 <= int(target_y) < C:
        raise ValueError(f"{what}: target_y must be a class index in 0..{C - 1}, got {target_y!r}")
    return int(target_y)


def _as_model_input(X, model):
    """A detached copy of ``X`` in the dtype of ``model``'s floating parameters.

    As ``style_transfer`` and ``CaptioningTransformer`` do, the model decides the dtype:
    a float64 image given to a float32 network would otherwise stop at torch's raw "expected
    scalar type" error. A model without floating parameters takes ``X``'s dtype.
    """
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    return X.detach().to(dtype=X.dtype if param is None else param.dtype, copy=True)


def compute_saliency_maps(X, y, model):
    """Saliency: how much each pixel's change moves the correct class's score.

    Parameters
    ----------
    X : tensor, (N, 3, H, W)
    y : tensor of int64, (N,)
        Class index of each image, in 0..C-1.
    model : nn.Module
        Maps (N, 3, H, W) images to (N, C) scores.

    Returns
    -------
    tensor, (N, H, W)
        ``max over channels of |d scores[i, y[i]] / d X[i]|``, in the dtype of the model's
        parameters (``X`` is cast to it). ``X`` and the model's gradients are left untouched.
    """
    _check_images(X, "compute_saliency_maps")
    y = torch.as_tensor(y)
    if y.shape != (X.shape[0],) or y.is_floating_point():
        raise ValueError(f"compute_saliency_maps: y must be {X.shape[0]} integer labels, got "
                         f"{y.dtype} {tuple(y.shape)}")
    model.eval()
    X = _as_model_input(X, model).requires_grad_(True)
    scores = model(X)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= scores.shape[1]):
        raise ValueError(f"compute_saliency_maps: labels must be in 0..{scores.shape[1] - 1}, got "
                         f"{int(y.min())}..{int(y.max())}")
    correct = scores.gather(1, y.to(scores.device).long().view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(correct, X)
    return grad.abs().amax(dim=1)


def make_fooling_image(X, target_y, model, learning_rate=1.0, max_iter=100):
    """An image close to ``X`` that ``model`` classifies as ``target_y``.

    Gradient ascent on the target score, each step of length ``learning_rate`` in the
    gradient's direction (``dX = lr * g / ||g||_2``), stopping as soon as the prediction is
    ``target_y``.

    Parameters
    ----------
    X : tensor, (1, 3, H, W)
    target_y : int, a class index in 0..C-1
    model : nn.Module
    learning_rate : float
        Length (L2 norm over the whole image) of each step, in normalised pixel units;
        the gradient's own size does not matter.
    max_iter : int >= 0, the most gradient steps

    Returns
    -------
    tensor, (1, 3, H, W)
        The fooling image (a new tensor in the dtype of the model's parameters; ``X`` is
        untouched). Warns when ``max_iter`` steps were not enough.

    Raises
    ------
    ValueError
        ``X`` is not one float image, ``max_iter`` is not a non-negative int, or
        ``target_y`` is not one of the model's classes (checked on the first scores, so
        also when ``max_iter`` is 0).
    """
    _check_images(X, "make_fooling_image")
    if X.shape[0] != 1:
        raise ValueError(f"make_fooling_image works on one image, got a batch of {X.shape[0]}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 0:
        raise ValueError(f"make_fooling_image: max_iter must be a non-negative int, got {max_iter!r}")
    model.eval()    # the prediction that stops the loop must be the one the caller sees
    X_fooling = _as_model_input(X, model).requires_grad_(True)
    # max_iter steps need max_iter + 1 looks at the scores: one before each step and one
    # after the last. The first one validates target_y, whatever max_iter is.
    for step in range(max_iter + 1):
        scores = model(X_fooling)
        if step == 0:
            target_y = _check_class(scores, target_y, "make_fooling_image")
        pred = int(scores.argmax(dim=1))
        if pred == target_y or step == max_iter:
            break
        (g,) = torch.autograd.grad(scores[0, target_y], X_fooling)
        with torch.no_grad():
            X_fooling += learning_rate * g / g.norm().clamp_min(1e-12)
    if pred != target_y:
        warnings.warn(f"make_fooling_image: after {max_iter} steps the model still predicts class "
                      f"{pred}, not {target_y}; raise max_iter or learning_rate", RuntimeWarning)
    return X_fooling.detach()


def class_visualization_update_step(img, model, target_y, l2_reg, learning_rate):
    """One step of gradient ascent on ``s_y(img) - l2_reg * ||img||^2``, in place.

    img : tensor (1, 3, H, W), updated by ``learning_rate * g / ||g||_2``. It keeps its
    dtype: the model sees a copy in its parameters' dtype, and the step is added back.
    """
    _check_images(img, "class_visualization_update_step")
    model.eval()
    x = _as_model_input(img, model).requires_grad_(True)
    scores = model(x)
    target_y = _check_class(scores, target_y, "class_visualization_update_step")
    objective = scores[0, target_y] - l2_reg * (x * x).sum()
    (g,) = torch.autograd.grad(objective, x)
    img.detach().add_(learning_rate * g / g.norm().clamp_min(1e-12))
    return img


def _as_torch_dtype(dtype):
    """``torch.float32`` for itself and for the legacy ``torch.FloatTensor`` type object."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(getattr(dtype, "dtype", None), torch.dtype):   # torch.FloatTensor and kin
        return dtype.dtype
    raise ValueError(f"dtype must be a torch dtype (torch.float32) or a tensor type "
                     f"(torch.FloatTensor), got {dtype!r}")


def create_class_visualization(target_y, model, dtype=torch.float32, class_names=None, *,
                               l2_reg=1e-3, learning_rate=25, num_iterations=100, blur_every=10,
                               max_jitter=16, show_every=None, image_size=224, seed=None):
    """Synthesise an image the model scores highly as ``target_y``, starting from noise.

    Each iteration: a random jitter of up to ``max_jitter`` pixels, one
    ``class_visualization_update_step``, the jitter undone, pixels clamped to the range a
    real image normalises to, and every ``blur_every`` steps a Gaussian blur (sigma 0.5).

    Parameters
    ----------
    target_y : int
        The class index to maximise, in 0..C-1 (checked on the first scores).
    model : nn.Module
    dtype : torch dtype, or a tensor type such as ``torch.FloatTensor``
        The image's dtype; the course's notebooks pass ``dtype = torch.FloatTensor``. The
        model is always run in its own parameters' dtype, on a cast copy of the image.
    class_names : dict or list, optional
        Indexed by ``target_y`` for the titles of the figures; None titles them
        ``class <target_y>``. Whether figures are drawn at all is ``show_every``'s choice.
    l2_reg : float
        Weight of the penalty ``l2_reg * ||img||^2`` subtracted from the class score.
    learning_rate : float
        Length (L2 norm over the whole image) of each gradient step, in normalised pixel
        units; see ``class_visualization_update_step``.
    num_iterations : int
        Number of iterations (0 returns the starting noise, deprocessed).
    blur_every : int or None
        Blur after iterations 0, ``blur_every``, ``2 * blur_every``, ...; 0 or None never blurs.
    max_jitter : int >= 0
        Each iteration shifts the image by 0..``max_jitter`` pixels right and down
        (independently, wrapping around) before the step, and back after it.
    show_every : int or None
        Draw the image with matplotlib after the first iteration, after every
        ``show_every``-th and after the last; None or 0 draws nothing.
    image_size : int
        Height and width of the square image (224 for SqueezeNet).
    seed : int, optional
        Seeds the noise and the jitter (otherwise the global generators are used).

    Returns
    -------
    ndarray of uint8, (image_size, image_size, 3)
        The visualisation, ``deprocess``-ed.
    """
    dtype = _as_torch_dtype(dtype)
    first = next(model.parameters(), None)
    device = first.device if first is not None else "cpu"
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    rng = random.Random(seed) if seed is not None else random
    img = torch.randn(1, 3, image_size, image_size, generator=gen).to(device, dtype)
    lo = torch.as_tensor(-SQUEEZENET_MEAN / SQUEEZENET_STD, dtype=dtype, device=device).view(1, 3, 1, 1)
    hi = torch.as_tensor((1.0 - SQUEEZENET_MEAN) / SQUEEZENET_STD, dtype=dtype, device=device).view(1, 3, 1, 1)
    for t in range(num_iterations):
        ox, oy = rng.randint(0, max_jitter), rng.randint(0, max_jitter)
        img = jitter(img, ox, oy)
        class_visualization_update_step(img, model, target_y, l2_reg, learning_rate)
        img = torch.maximum(torch.minimum(jitter(img, -ox, -oy), hi), lo)
        if blur_every and t % blur_every == 0:
            blur_image(img, sigma=0.5)
        if show_every and (t == 0 or (t + 1) % show_every == 0 or t == num_iterations - 1):
            _show(img, target_y, class_names, t, num_iterations)
    return deprocess(img)


def _show(img, target_y, class_names, t, num_iterations):
    import matplotlib.pyplot as plt

    name = class_names[target_y] if class_names is not None else f"class {target_y}"
    plt.imshow(deprocess(img))
    plt.title(f"{name}\nIteration {t + 1} / {num_iterations}")
    plt.gcf().set_size_inches(4, 4)
    plt.axis("off")
    plt.show()
