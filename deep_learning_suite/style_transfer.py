"""Neural style transfer (Gatys et al., 2016), in PyTorch (CS231n assignment 3).

The pieces of the course's StyleTransfer notebook: the content loss (squared distance of one
layer's features), Gram matrices and the style loss over several layers, the total-variation
loss, feature extraction through a CNN's layers, and ``style_transfer``, the loop that runs
Adam on the pixels of an image to mix one image's content with another's style.

Images are (1, 3, H, W) tensors, preprocessed as the CNN expects (ImageNet mean and std for
the course's SqueezeNet, ``deep_learning_suite.net_visualization.preprocess``); the CNN is an
``nn.Sequential`` whose children are the layers, such as ``squeezenet1_1(weights=path).features``
from ``deep_learning_suite.squeezenet``. Works in the dtype of the CNN's parameters. Needs PyTorch.
"""

import numbers

import torch
import torch.nn as nn

from .net_visualization import deprocess, preprocess

# Pixels of the preprocessed image stay in this range while the loop clamps: about +-1.5
# standard deviations around the ImageNet mean, where the CNN's features mean something.
CLAMP_RANGE = (-1.5, 1.5)


def _check_4d(name, x, layout="(N, C, H, W)"):
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D {layout}, got shape {tuple(x.shape)}")


def content_loss(content_weight, content_current, content_original):
    """Content loss: ``content_weight * sum((F - P)^2)`` over one layer's features.

    Parameters
    ----------
    content_weight : float
        How much the content term counts.
    content_current : Tensor (1, C_l, H_l, W_l)
        Features of the image being generated.
    content_original : Tensor (1, C_l, H_l, W_l)
        Features of the content image (the target).

    Returns
    -------
    loss : 0-dim Tensor
    """
    if not (torch.is_tensor(content_current) and torch.is_tensor(content_original)):
        raise TypeError("content_current and content_original must be torch.Tensors, got "
                        f"{type(content_current).__name__} and {type(content_original).__name__}")
    if content_current.shape != content_original.shape:
        raise ValueError(f"content_current has shape {tuple(content_current.shape)} but content_original "
                         f"has {tuple(content_original.shape)}: both must be the same layer's features")
    return content_weight * ((content_current - content_original) ** 2).sum()


def gram_matrix(features, normalize=True):
    """Gram matrices of the channels: ``G[n, c, d] = sum_{h, w} F[n, c, h, w] * F[n, d, h, w]``.

    Parameters
    ----------
    features : Tensor (N, C, H, W)
    normalize : bool
        Divide by ``H * W * C``, so that layers of different sizes weigh alike.

    Returns
    -------
    gram : Tensor (N, C, C)
    """
    _check_4d("features", features)
    N, C, H, W = features.shape
    flat = features.reshape(N, C, H * W)
    gram = torch.bmm(flat, flat.transpose(1, 2))
    if normalize:
        gram = gram / (H * W * C)
    return gram


def style_loss(feats, style_layers, style_targets, style_weights):
    """Style loss: ``sum_i style_weights[i] * sum((G_i - A_i)^2)``.

    ``G_i`` is the Gram matrix of ``feats[style_layers[i]]`` (the generated image's features),
    ``A_i = style_targets[i]`` that of the style image at the same layer.

    Parameters
    ----------
    feats : list of Tensor (1, C_l, H_l, W_l)
        Features at every layer, as from ``extract_features``.
    style_layers : sequence of int
        Indices into ``feats`` of the layers that carry style.
    style_targets : sequence of Tensor (1, C_l, C_l)
        Gram matrices of the style image, one per entry of ``style_layers``.
    style_weights : sequence of float
        Weight of each layer, one per entry of ``style_layers``.

    Returns
    -------
    loss : 0-dim Tensor
    """
    if not (len(style_layers) == len(style_targets) == len(style_weights)):
        raise ValueError(f"style_layers, style_targets and style_weights must have one entry per style "
                         f"layer, got lengths {len(style_layers)}, {len(style_targets)} and {len(style_weights)}")
    if len(feats) == 0:
        raise ValueError("feats is empty: pass the features of every layer, from extract_features")
    loss = feats[0].new_zeros(())
    for i, (layer, target, weight) in enumerate(zip(style_layers, style_targets, style_weights)):
        if not -len(feats) <= layer < len(feats):
            raise ValueError(f"style_layers[{i}] = {layer} is out of range for {len(feats)} layers of features")
        gram = gram_matrix(feats[layer])
        if gram.shape != target.shape:
            raise ValueError(f"style_targets[{i}] has shape {tuple(target.shape)} but the Gram matrix of layer "
                             f"{layer} has {tuple(gram.shape)}: targets must come from the same layers")
        loss = loss + weight * ((gram - target) ** 2).sum()
    return loss


def tv_loss(img, tv_weight):
    """Total-variation loss: ``tv_weight`` times the summed squares of the differences between
    vertically and horizontally neighbouring pixels (it favours smooth images).

    Parameters
    ----------
    img : Tensor (1, 3, H, W)
        Any (N, C, H, W) works: the sums run over all of it.
    tv_weight : float

    Returns
    -------
    loss : 0-dim Tensor
    """
    _check_4d("img", img, "(1, 3, H, W)")
    down = ((img[:, :, 1:, :] - img[:, :, :-1, :]) ** 2).sum()
    right = ((img[:, :, :, 1:] - img[:, :, :, :-1]) ** 2).sum()
    return tv_weight * (down + right)


def _layers(cnn):
    if not isinstance(cnn, nn.Module):
        raise TypeError(f"cnn must be a torch.nn.Module whose children are its layers, got {type(cnn).__name__}")
    # _modules, as the course does, rather than children(): children() skips a module that
    # appears twice (one ReLU reused), which would shift every later layer's index.
    layers = list(cnn._modules.values())
    if not layers:
        raise ValueError(f"cnn ({type(cnn).__name__}) has no child modules: pass an nn.Sequential of layers, "
                         "e.g. squeezenet1_1(weights=path).features")
    return layers


def _run(x, layers):
    feats = []
    for layer in layers:
        x = layer(x)
        feats.append(x)
    return feats


def extract_features(x, cnn):
    """Run ``x`` through the child modules of ``cnn`` in order and keep every output.

    Parameters
    ----------
    x : Tensor (N, C, H, W)
        Input images, preprocessed for ``cnn``.
    cnn : nn.Module
        Its direct children are the layers (e.g. SqueezeNet's ``features``).

    Returns
    -------
    feats : list of Tensor
        ``feats[i]`` is the output of the i-th child; one entry per child.
    """
    _check_4d("x", x)
    return _run(x, _layers(cnn))


def _dtype_device(cnn):
    param = next(cnn.parameters(), None)
    if param is None:
        return torch.get_default_dtype(), torch.device("cpu")
    return param.dtype, param.device


def features_from_img(imgpath, imgsize, cnn):
    """Load and preprocess an image, then extract its features.

    Parameters
    ----------
    imgpath : str or os.PathLike, PIL.Image.Image, or ndarray (H, W, 3) uint8
        The image, or the file it is in.
    imgsize : int
        Length of the shorter side after resizing (``preprocess``'s ``size``).
    cnn : nn.Module
        As for ``extract_features``.

    Returns
    -------
    feats : list of Tensor
        As from ``extract_features``.
    img_var : Tensor (1, 3, H, W)
        The preprocessed image, in the dtype and on the device of the cnn's first parameter.

    Raises
    ------
    ValueError
        The image is too small for the cnn's layers; the message gives the smallest size.
    """
    layers = _layers(cnn)
    img_var = _load(imgpath, imgsize, cnn)
    return _run_checked(img_var, layers, "the image", "imgsize"), img_var


def _load(imgpath, imgsize, cnn):
    dtype, device = _dtype_device(cnn)
    return preprocess(imgpath, size=imgsize).to(device=device, dtype=dtype)


def _passes(layers, x, height, width):
    # An empty batch carries the shapes through every layer at no cost, and conv and pool
    # layers still check their output sizes on it. Any failure only means "not this size".
    try:
        with torch.no_grad():
            _run(x.new_zeros((0, x.shape[1], height, width)), layers)
    except Exception:
        return False
    return True


def _run_checked(img, layers, what, size_arg):
    """``_run(img, layers)``, with a clear ValueError when ``img`` is too small for them.

    Each conv and pool shrinks the image, and once a layer's output would be under one pixel
    torch raises "Output size is too small" from deep inside the network. Only when the run
    fails (so a valid image costs nothing extra and the cnn sees exactly what it did) this
    finds the smallest square size that passes, by a binary search over empty batches (the
    layers' output sizes grow with the input's), and says which argument to raise. When a
    much larger image fails too, the problem is not the size and torch's error is kept.
    """
    try:
        return _run(img, layers)
    except RuntimeError as err:
        H, W = img.shape[2:]
        hi = max(512, 2 * max(H, W))
        if _passes(layers, img, H, W) or not _passes(layers, img, hi, hi):
            raise
        lo = 1                               # invariant: size hi passes, sizes below lo fail
        while lo < hi:
            mid = (lo + hi) // 2
            if _passes(layers, img, mid, mid):
                hi = mid
            else:
                lo = mid + 1
        raise ValueError(f"{what} is {H} x {W} pixels, too small for the cnn's first {len(layers)} "
                         f"layers, which shrink it below one pixel: they need at least {hi} x {hi}. "
                         f"Pass a larger {size_arg} (at least {hi}) or use shallower layers") from err


def _layer_index(name, index, num_layers):
    if not isinstance(index, numbers.Integral) or isinstance(index, bool):
        raise TypeError(f"{name} must be an int layer index, got {type(index).__name__}")
    if not -num_layers <= index < num_layers:
        raise ValueError(f"{name} = {index} is out of range for a cnn with {num_layers} layers "
                         f"(valid: 0 to {num_layers - 1})")
    # Non-negative, so that the deepest layer needed is a max().
    return int(index) % num_layers


def _image_and_features(image, size, name, size_name, cnn, layers):
    """A tensor is used as is (cast to the cnn's dtype and device); anything else is loaded.

    Either way an image too small for ``layers`` gets a ValueError naming ``size_name``.
    """
    if not torch.is_tensor(image):
        img = _load(image, size, cnn)
        return img, _run_checked(img, layers, name, size_name)
    _check_4d(name, image, "(1, 3, H, W)")
    if image.shape[:2] != (1, 3):
        raise ValueError(f"{name} must be one preprocessed RGB image (1, 3, H, W), got shape {tuple(image.shape)}")
    dtype, device = _dtype_device(cnn)
    img = image.detach().to(device=device, dtype=dtype)
    return img, _run_checked(img, layers, f"{name} (a tensor, used at its own size)", "image tensor")


def _show(img, t):
    import matplotlib.pyplot as plt

    print(f"Iteration {t}")
    plt.figure()
    plt.axis("off")
    plt.imshow(deprocess(img.detach().cpu().float()))
    plt.show()


def style_transfer(content_image, style_image, image_size, style_size, content_layer, content_weight,
                   style_layers, style_weights, tv_weight, init_random=False, cnn=None,
                   num_iterations=200, decay_lr_at=180, initial_lr=3.0, decayed_lr=0.1, clamp_until=190,
                   show_every=None, seed=None):
    """Generate an image with the content of one image and the style of another.

    Adam descends ``content_loss + style_loss + tv_loss`` on the pixels of the image, starting
    from the content image (or noise). The cnn is frozen (``requires_grad`` off) and put in
    eval mode, in place.

    Parameters
    ----------
    content_image, style_image : path, PIL image, ndarray (H, W, 3) uint8, or Tensor (1, 3, H, W)
        A tensor is taken as already preprocessed and used as is (cast to the cnn's dtype and
        device; ``image_size`` / ``style_size`` are then ignored); anything else goes through
        ``features_from_img``.
    image_size, style_size : int
        Shorter side of the content and style images after resizing.
    content_layer : int
        Index of the layer whose features carry content.
    content_weight : float
    style_layers : sequence of int
        Indices of the layers whose Gram matrices carry style.
    style_weights : sequence of float
        One weight per entry of ``style_layers``.
    tv_weight : float
    init_random : bool
        Start from uniform noise in [0, 1) instead of the content image.
    cnn : nn.Module
        Required: the feature extractor, e.g. ``squeezenet1_1(weights=path).features``.
    num_iterations : int
        Adam steps (the course: 200).
    decay_lr_at : int
        At this iteration Adam restarts with ``decayed_lr``, fresh moment estimates included,
        as in the course; ``initial_lr`` before it.
    clamp_until : int
        While ``t < clamp_until`` the image is clamped to [-1.5, 1.5] before iteration ``t``;
        the returned image counts as ``t = num_iterations``.
    show_every : int, optional
        Print and draw the image (matplotlib) every this many iterations and at the end.
        Default: draw nothing.
    seed : int, optional
        Seeds the noise of ``init_random`` with a private generator, leaving the global one
        untouched; default: the global generator (``torch.manual_seed``) draws it.

    Returns
    -------
    img : Tensor (1, 3, H, W)
        The generated image, detached, preprocessed scale (``deprocess`` shows it).
    losses : list of float
        The total loss at each iteration, before its step.

    Raises
    ------
    ValueError
        Bad arguments, or an image too small for the layers used (up to the deepest of
        ``content_layer`` and ``style_layers``); both images are run, so this is raised,
        before the first iteration, with the smallest ``image_size`` / ``style_size`` that works.
    """
    if cnn is None:
        raise ValueError("style_transfer needs a cnn to extract features: pass e.g. cnn=squeezenet1_1("
                         "weights=path).features from deep_learning_suite.squeezenet")
    layers = _layers(cnn)
    content_layer = _layer_index("content_layer", content_layer, len(layers))
    if len(style_layers) != len(style_weights):
        raise ValueError(f"style_layers and style_weights must have one entry per style layer, got lengths "
                         f"{len(style_layers)} and {len(style_weights)}")
    style_layers = [_layer_index(f"style_layers[{i}]", s, len(layers)) for i, s in enumerate(style_layers)]
    for name, value in (("num_iterations", num_iterations), ("decay_lr_at", decay_lr_at),
                        ("clamp_until", clamp_until)):
        if not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if show_every is not None and (not isinstance(show_every, numbers.Integral) or show_every < 1):
        raise ValueError(f"show_every must be a positive int or None, got {show_every!r}")

    cnn.eval()
    for p in cnn.parameters():
        p.requires_grad_(False)
    # Layers past the deepest one used only cost time.
    layers = layers[:max([content_layer, *style_layers]) + 1]

    with torch.no_grad():
        content_img, feats = _image_and_features(content_image, image_size, "content_image", "image_size",
                                                 cnn, layers)
        content_target = feats[content_layer].clone()
        _, feats = _image_and_features(style_image, style_size, "style_image", "style_size", cnn, layers)
        style_targets = [gram_matrix(feats[i]).clone() for i in style_layers]

    if init_random:
        generator = None
        if seed is not None:
            generator = torch.Generator(device=content_img.device).manual_seed(seed)
        img = torch.rand(content_img.shape, generator=generator, dtype=content_img.dtype,
                         device=content_img.device)
    else:
        img = content_img.clone()
    img.requires_grad_(True)

    optimizer = torch.optim.Adam([img], lr=initial_lr)
    losses = []
    for t in range(num_iterations):
        if t < clamp_until:
            with torch.no_grad():
                img.clamp_(*CLAMP_RANGE)
        optimizer.zero_grad()
        feats = _run(img, layers)
        loss = (content_loss(content_weight, feats[content_layer], content_target)
                + style_loss(feats, style_layers, style_targets, style_weights)
                + tv_loss(img, tv_weight))
        loss.backward()
        if t == decay_lr_at:
            optimizer = torch.optim.Adam([img], lr=decayed_lr)
        optimizer.step()
        losses.append(loss.item())
        if show_every is not None and t % show_every == 0:
            _show(img, t)

    img = img.detach()
    if num_iterations < clamp_until:
        img = img.clamp(*CLAMP_RANGE)
    if show_every is not None:
        _show(img, num_iterations)
    return img, losses
