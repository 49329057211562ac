"""The conditional U-Net that denoises for ``diffusion.GaussianDiffusion`` (CS231n DDPM notebook).

``Unet(dim, condition_dim)(x, t, {'text_emb': emb})``: x (B, C, H, W), t (B,) time steps,
emb (B, condition_dim) or None -> (B, C, H, W). Each of the ``len(dim_mults)`` levels halves
H and W, so both must be divisible by ``2 ** len(dim_mults)``.

Layout, with ``dims = [dim] + [dim * m for m in dim_mults]``:

    init_conv   3x3, C -> dim
    downs[i]    ResnetBlock(d_i, d_i), ResnetBlock(d_i, d_i), Downsample(d_i -> d_{i+1})
    mid_block1, mid_block2   ResnetBlock(d_n, d_n)
    ups[i]      Upsample(d_{n-i} -> d_{n-i-1}), then two ResnetBlock(2 d, d) that each take
                the matching down block's output as a skip connection, last saved first
    final_conv  1x1, dim -> C

The time step (sinusoidal embedding, then an MLP) plus the condition (an MLP) make one
context vector of size ``4 * dim`` that scales and shifts the features inside every
ResnetBlock. Module names, and the order in which the layers draw their initial weights,
follow the course's ``cs231n/unet.py``, so its checkpoints load with ``load_state_dict``.

Classifier-free guidance (Ho & Salimans, 2022, eq. 6): with ``'cfg_scale': w`` in the kwargs the
output is ``(1 + w) * eps(x, cond) - w * eps(x, no condition)``; training drops the condition
of each example with probability ``uncond_prob`` so that one network learns both.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validate import check_int


def Upsample(dim, dim_out=None):
    """Double H and W (bilinear), then a 3x3 conv ``dim -> dim_out``."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"),
                         nn.Conv2d(dim, dim if dim_out is None else dim_out, 3, padding=1))


def Downsample(dim, dim_out=None):
    """Halve H and W with a 2x2 stride-2 conv ``dim -> dim_out``."""
    return nn.Conv2d(dim, dim if dim_out is None else dim_out, kernel_size=2, stride=2)


class RMSNorm(nn.Module):
    """Per-pixel RMS norm over channels: ``x / ||x||_C * sqrt(C) * g``, g of shape (1, C, 1, 1)."""

    def __init__(self, dim):
        super().__init__()
        self.scale = dim ** 0.5
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x):
        return F.normalize(x, dim=1) * self.g * self.scale


class SinusoidalPosEmb(nn.Module):
    """Time steps (B,) -> (B, dim): ``[sin(t w_k), cos(t w_k)]``, w_k = 10000^(-k / (dim/2 - 1)).

    Any dim builds, as the course's does (its DDPM notebook checks a ``Unet(dim=2)``'s layer
    sizes); ``forward`` needs an even dim >= 4. With dim / 2 = 1 the frequency formula divides
    by zero, and an odd dim gives dim - 1 values, one short of what the Unet's
    ``nn.Linear(dim, 4 * dim)`` after it takes.
    """

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        if self.dim < 4 or self.dim % 2:
            if self.dim // 2 == 1:
                problem = "its frequencies 10000^(-k / (dim/2 - 1)) divide by zero"
            else:   # odd: the Linear after it would be fed dim - 1 values
                problem = "it has dim // 2 sines and dim // 2 cosines, not dim values"
            raise ValueError(f"the sinusoidal time embedding cannot run with dim={self.dim}: {problem}. "
                             f"It needs an even dim >= 4; build the Unet with Unet(dim=4, ...) or more "
                             f"(dim=2 builds, for checking layer sizes, but cannot run)")
        half = self.dim // 2
        dtype = t.dtype if t.is_floating_point() else torch.get_default_dtype()
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=dtype) * (-math.log(10000) / (half - 1)))
        angles = t[:, None] * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class Block(nn.Module):
    """3x3 conv, RMS norm, an optional ``x * (scale + 1) + shift`` from the context, GELU."""

    def __init__(self, dim, dim_out):
        super().__init__()
        self.proj = nn.Conv2d(dim, dim_out, 3, padding=1)
        self.norm = RMSNorm(dim_out)
        self.act = nn.GELU()

    def forward(self, x, scale_shift=None):
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResnetBlock(nn.Module):
    """Two Blocks, the first modulated by the context (B, context_dim), plus a residual path
    (a 1x1 conv when the channel count changes)."""

    def __init__(self, dim, dim_out, context_dim):
        super().__init__()
        self.dim, self.dim_out, self.context_dim = dim, dim_out, context_dim
        self.mlp = (nn.Sequential(nn.GELU(), nn.Linear(context_dim, dim_out * 2))
                    if context_dim is not None else None)
        self.block1 = Block(dim, dim_out)
        self.block2 = Block(dim_out, dim_out)
        self.res_conv = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()
        self.dropout = nn.Dropout(0.1)

    def forward(self, x, context=None):
        scale_shift = None
        if self.mlp is not None and context is not None:
            scale_shift = self.mlp(context)[:, :, None, None].chunk(2, dim=1)
        h = self.block2(self.dropout(self.block1(x, scale_shift=scale_shift)))
        return h + self.res_conv(x)


class Unet(nn.Module):
    """Conditional U-Net denoiser.

    Parameters
    ----------
    dim : int
        Channels after the first conv; level i has ``dim * dim_mults[i]`` after its downsample.
        Any positive dim builds, as in the course (whose notebook checks the layer sizes of
        ``Unet(dim=2, ...)``), but ``forward`` needs an even dim >= 4: the sinusoidal time
        embedding has dim / 2 sines and dim / 2 cosines at frequencies 10000^(-k / (dim/2 - 1)).
    condition_dim : int
        Size D >= 1 of the condition vector ``model_kwargs['text_emb']`` (B, D).
    dim_mults : sequence of positive int, at least one
    channels : int
        C >= 1 of the images.
    uncond_prob : float
        Probability, in training mode, of replacing an example's condition by zeros.

    All the sizes may be Python or NumPy integers (or whole floats such as 8.0); anything else
    is refused here, not as a zero-channel layer that fails, or silently does nothing, later.
    """

    def __init__(self, dim, condition_dim, dim_mults=(1, 2, 4, 8), channels=3, uncond_prob=0.2):
        super().__init__()
        if not 0 <= uncond_prob <= 1:
            raise ValueError(f"uncond_prob is a probability, got {uncond_prob}")
        # dims the time embedding cannot take (odd, or < 4) are refused at forward, not here
        dim = check_int("Unet", "dim", dim, 1)
        # an unconditional model still has a condition_dim: pass text_emb=None to leave it out
        condition_dim = check_int("Unet", "condition_dim", condition_dim, 1)
        channels = check_int("Unet", "channels", channels, 1)
        if isinstance(dim_mults, (str, bytes)) or not hasattr(dim_mults, "__len__"):
            raise ValueError(f"Unet: dim_mults must be a sequence of positive integers, one per level, "
                             f"e.g. (1, 2, 4, 8); got {dim_mults!r}")
        if not len(dim_mults):
            raise ValueError("dim_mults needs at least one level")
        # a 0 would build a level of zero channels, which turns every later feature into zeros
        dim_mults = tuple(check_int("Unet", f"dim_mults[{i}]", m, 1) for i, m in enumerate(dim_mults))
        self.channels = channels
        self.condition_dim = condition_dim
        self.uncond_prob = uncond_prob
        self.num_levels = len(dim_mults)

        # Layers are built in the course's order: it fixes which random initial weights each gets.
        self.init_conv = nn.Conv2d(channels, dim, 3, padding=1)
        dims = [dim] + [dim * m for m in dim_mults]
        in_out = list(zip(dims[:-1], dims[1:]))
        context_dim = dim * 4
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(dim), nn.Linear(dim, context_dim), nn.GELU(),
                                      nn.Linear(context_dim, context_dim))
        self.condition_mlp = nn.Sequential(nn.Linear(condition_dim, context_dim), nn.GELU(),
                                           nn.Linear(context_dim, context_dim))
        self.downs = nn.ModuleList([
            nn.ModuleList([ResnetBlock(d_in, d_in, context_dim), ResnetBlock(d_in, d_in, context_dim),
                           Downsample(d_in, d_out)])
            for d_in, d_out in in_out])
        self.mid_block1 = ResnetBlock(dims[-1], dims[-1], context_dim=context_dim)
        self.mid_block2 = ResnetBlock(dims[-1], dims[-1], context_dim=context_dim)
        self.ups = nn.ModuleList([
            nn.ModuleList([Upsample(d_in, d_out), ResnetBlock(2 * d_out, d_out, context_dim),
                           ResnetBlock(2 * d_out, d_out, context_dim)])
            for d_out, d_in in reversed(in_out)])
        self.final_conv = nn.Conv2d(dim, channels, 1)

    def _check(self, x, time, cond):
        # torch's own "Input type (double) and bias type (float)" names neither x nor a fix;
        # under autocast, mixed dtypes are what is asked for
        w = self.init_conv.weight
        if not torch.is_autocast_enabled(x.device.type):
            for name, a in (("x", x), ("text_emb", cond)):
                if a is not None and a.dtype != w.dtype:
                    fix = f"convert the input ({name}.to({w.dtype}), e.g. {name}.float())"
                    if a.is_floating_point():
                        fix += f" or the model (model.to({a.dtype}), e.g. model.double())"
                    raise ValueError(f"{name} is {a.dtype} but the Unet's parameters are {w.dtype}; they must "
                                     f"share one dtype: {fix}")
        k = 2 ** self.num_levels
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[2] % k or x.shape[3] % k:
            raise ValueError(f"x must be (B, {self.channels}, H, W) with H and W divisible by {k} "
                             f"(one halving per level of dim_mults), got {tuple(x.shape)}")
        if time.shape != (x.shape[0],):
            raise ValueError(f"time must hold one step per image, shape ({x.shape[0]},), got {tuple(time.shape)}")
        if cond is not None and cond.shape != (x.shape[0], self.condition_dim):
            raise ValueError(f"text_emb must be (B, condition_dim) = ({x.shape[0]}, {self.condition_dim}) "
                             f"or None, got {tuple(cond.shape)}")

    def cfg_forward(self, x, time, model_kwargs=None):
        """Classifier-free guidance: ``(1 + w) * forward(cond) - w * forward(text_emb=None)``,
        ``w = model_kwargs['cfg_scale']``; the caller's dict is left as it was."""
        kwargs = dict(model_kwargs or {})
        scale = kwargs.pop("cfg_scale")
        cond = self.forward(x, time, kwargs)
        uncond = self.forward(x, time, {**kwargs, "text_emb": None})
        return (1 + scale) * cond - scale * uncond

    def forward(self, x, time, model_kwargs=None):
        """Predict the noise (or clean image) of x at steps ``time``.

        Parameters
        ----------
        x : (B, C, H, W) tensor
        time : (B,) tensor of time steps
        model_kwargs : dict
            ``'text_emb'``: (B, condition_dim) tensor or None (no condition); optional
            ``'cfg_scale'``: float, classifier-free guidance weight.

        Returns
        -------
        (B, C, H, W) tensor
        """
        model_kwargs = {} if model_kwargs is None else model_kwargs
        if "cfg_scale" in model_kwargs:
            return self.cfg_forward(x, time, model_kwargs)
        cond = model_kwargs.get("text_emb")
        self._check(x, time, cond)

        context = self.time_mlp(time.to(x.dtype))  # a float64 model gets float64 embeddings
        if cond is None:
            cond = x.new_zeros(x.shape[0], self.condition_dim)
        if self.training:
            # drawn on the CPU generator, as the course does, so seeded runs agree across devices
            keep = (torch.rand(cond.shape[0]) > self.uncond_prob).to(cond)
            cond = cond * keep[:, None]
        context = context + self.condition_mlp(cond)

        x = self.init_conv(x)
        skips = []
        for block1, block2, downsample in self.downs:
            x = block1(x, context)
            skips.append(x)
            x = block2(x, context)
            skips.append(x)
            x = downsample(x)
        x = self.mid_block2(self.mid_block1(x, context), context)
        for upsample, block1, block2 in self.ups:
            x = upsample(x)
            x = block1(torch.cat([x, skips.pop()], dim=1), context)
            x = block2(torch.cat([x, skips.pop()], dim=1), context)
        return self.final_conv(x)
