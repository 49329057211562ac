"""Denoising diffusion probabilistic models (Ho et al., 2020; CS231n assignment 3, DDPM notebook).

The forward process adds Gaussian noise in ``T`` steps with variances ``beta_t``; with
``alpha_t = 1 - beta_t`` and ``abar_t = prod_{s <= t} alpha_s`` it has the closed form

    x_t = sqrt(abar_t) * x_0 + sqrt(1 - abar_t) * eps,        eps ~ N(0, I)     (paper eq. 4)

A network ``model(x_t, t, model_kwargs)`` learns to undo it, predicting either ``eps``
(``objective="pred_noise"``) or ``x_0`` (``"pred_x_start"``); either one gives the other
through the formula above. Sampling walks back from pure noise with the posterior

    q(x_{t-1} | x_t, x_0) = N(c1_t * x_0 + c2_t * x_t, var_t)                    (eqs. 6, 7)
    c1_t = beta_t sqrt(abar_{t-1}) / (1 - abar_t),  c2_t = (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t)
    var_t = beta_t (1 - abar_{t-1}) / (1 - abar_t)

Shapes: images ``(B, C, H, W)`` with values in [0, 1] outside (``p_losses`` takes them,
``sample`` returns them) and in [-1, 1] inside; time steps ``t`` are a (B,) long tensor,
0-based (``t = 0`` is the paper's first step). ``ddim_sample`` (Song et al., 2021) draws from
the same trained network in far fewer steps.

Dtypes: the coefficient tables are float32 buffers (the course's checkpoint layout), and
``extract`` casts the coefficients it picks to the images' floating dtype, so float16 in gives
float16 out and float64 in computes and returns float64 (with the tables' float32 precision,
about 1e-7 relative). The data and the network must share one dtype: ``p_losses`` and the
samplers say so up front rather than failing inside the first layer.
"""

import math

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ._validate import check_int

OBJECTIVES = ("pred_noise", "pred_x_start")


def linear_beta_schedule(timesteps):
    """The paper's ``beta`` from 1e-4 to 0.02 over 1000 steps, stretched for other ``T``.

    Below 20 steps the stretched betas would pass 1 (a negative ``alpha``); they are capped at
    0.999, as the other schedules are.
    """
    scale = 1000 / timesteps
    return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64).clamp(max=0.999)


def _betas_from_alphas_cumprod(abar):
    betas = 1 - abar[1:] / abar[:-1]
    return betas.clamp(0, 0.999)  # the last steps of cosine/sigmoid would reach beta = 1


def cosine_beta_schedule(timesteps, s=0.008):
    """``abar(t) = cos^2(((t / T + s) / (1 + s)) * pi / 2)``, Nichol & Dhariwal (2021)."""
    t = torch.linspace(0, 1, timesteps + 1, dtype=torch.float64)
    abar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return _betas_from_alphas_cumprod(abar / abar[0])


def sigmoid_beta_schedule(timesteps, start=-3, end=3, tau=1):
    """``abar`` falling along a sigmoid on [start, end], Jabri et al. (2022); the course's default."""
    t = torch.linspace(0, 1, timesteps + 1, dtype=torch.float64)
    v_start = torch.tensor(start / tau, dtype=torch.float64).sigmoid()
    v_end = torch.tensor(end / tau, dtype=torch.float64).sigmoid()
    abar = (v_end - ((t * (end - start) + start) / tau).sigmoid()) / (v_end - v_start)
    return _betas_from_alphas_cumprod(abar / abar[0])


BETA_SCHEDULES = {"linear": linear_beta_schedule, "cosine": cosine_beta_schedule,
                  "sigmoid": sigmoid_beta_schedule}


def _step(what, name, t, minimum=0):
    """A timestep as a Python int: 2.5 is refused, where ``int()`` would quietly take step 2."""
    if torch.is_tensor(t) and t.numel() == 1 and not t.is_floating_point():
        t = t.item()
    return check_int(what, name, t, minimum)


def _check_timesteps(what, timesteps):
    """``timesteps`` as an int >= 2; NumPy integers (``np.int64(10)``) and 10.0 pass."""
    timesteps = check_int(what, "timesteps", timesteps, 1)
    if timesteps < 2:
        raise ValueError(f"{what}: timesteps must be >= 2 (a schedule needs a first and a last "
                         f"step), got {timesteps}")
    return timesteps


def get_beta_schedule(beta_schedule, timesteps):
    """``beta_schedule`` ('linear', 'cosine' or 'sigmoid') -> float64 betas of shape (timesteps,)."""
    if beta_schedule not in BETA_SCHEDULES:
        raise ValueError(f"unknown beta_schedule {beta_schedule!r}; choose one of {sorted(BETA_SCHEDULES)}")
    return BETA_SCHEDULES[beta_schedule](_check_timesteps("get_beta_schedule", timesteps))


def extract(a, t, x_shape, dtype=None):
    """``a[t]`` for a (T,) coefficient table and (B,) steps, shaped (B, 1, ..., 1) to broadcast
    against a tensor of shape ``x_shape``.

    ``dtype``, the dtype of that tensor: a floating one is given to the coefficients, so that the
    float32 tables neither promote float16 images to float32 nor hold float64 ones back (float32
    times float64 is float64 anyway). Integer dtypes are ignored: cast to them, the coefficients,
    all in [0, 1], would round to 0 or 1.
    """
    out = a.gather(-1, t).reshape(t.shape[0], *((1,) * (len(x_shape) - 1)))
    return out.to(dtype) if dtype is not None and dtype.is_floating_point else out


def _first_parameter(model):
    """The model's first parameter, or None for a model without any (a plain function)."""
    parameters = getattr(model, "parameters", None)
    return next(iter(parameters()), None) if callable(parameters) else None


class GaussianDiffusion(nn.Module):
    """DDPM training loss and ancestral sampling around a denoising network.

    Parameters
    ----------
    model : nn.Module or None
        Called as ``model(x_t, t, model_kwargs)`` with x_t (B, C, H, W) and t (B,), returning
        (B, C, H, W): the noise or the clean image, as ``objective`` says (``Unet`` of
        ``unet.py``). None is allowed for the parts that need no network.
    image_size : int
        H = W of the images ``sample`` draws and ``p_losses`` takes.
    timesteps : int
        Number of diffusion steps T.
    objective : {'pred_noise', 'pred_x_start'}
    beta_schedule : {'sigmoid', 'linear', 'cosine'}
    channels : int
        C of the images (3, as the course has it).

    The coefficient tables are float32 buffers, so ``.to(device)`` and ``.double()`` move them
    with the module.
    """

    def __init__(self, model, *, image_size, timesteps=1000, objective="pred_noise",
                 beta_schedule="sigmoid", channels=3):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES} (predict the noise or the clean "
                             f"image), got {objective!r}")
        image_size = check_int("GaussianDiffusion", "image_size", image_size, 1)
        channels = check_int("GaussianDiffusion", "channels", channels, 1)
        timesteps = _check_timesteps("GaussianDiffusion", timesteps)
        self.model = model
        self.channels = channels
        self.image_size = image_size
        self.objective = objective

        betas = get_beta_schedule(beta_schedule, timesteps)
        self.num_timesteps = int(betas.shape[0])
        alphas = 1 - betas
        abar = torch.cumprod(alphas, dim=0)
        abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])

        def buffer(name, value):  # computed in float64, stored like the model's weights
            self.register_buffer(name, value.float())

        buffer("betas", betas)
        buffer("alphas", alphas)
        buffer("alphas_cumprod", abar)
        buffer("sqrt_alphas_cumprod", abar.sqrt())
        buffer("sqrt_one_minus_alphas_cumprod", (1 - abar).sqrt())
        buffer("posterior_mean_coef1", betas * abar_prev.sqrt() / (1 - abar))
        buffer("posterior_mean_coef2", (1 - abar_prev) * alphas.sqrt() / (1 - abar))
        buffer("posterior_std", (betas * (1 - abar_prev) / (1 - abar)).clamp(min=1e-20).sqrt())
        # With weight SNR_t = abar / (1 - abar), |x_0 - x_0'|^2 weighs as |eps - eps'|^2 does,
        # so both objectives minimise the same (eq. 14) loss.
        snr = abar / (1 - abar)
        buffer("loss_weight", torch.ones_like(snr) if objective == "pred_noise" else snr)

    # -- between x_0, x_t and the noise --------------------------------------------------------

    def normalize(self, img):
        """[0, 1] -> [-1, 1]."""
        return img * 2 - 1

    def unnormalize(self, img):
        """[-1, 1] -> [0, 1]."""
        return (img + 1) * 0.5

    def _check_steps(self, t, x):
        if not torch.is_tensor(t) or t.dtype not in (torch.int32, torch.int64) or t.shape != (x.shape[0],):
            raise ValueError(f"t must be a long tensor of shape ({x.shape[0]},), one step per image; "
                             f"got {t!r}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise ValueError(f"time steps must lie in [0, {self.num_timesteps - 1}], got {t.tolist()}")
        return t.long()

    @staticmethod
    def _check_same_shape(name, a, ref_name, ref):
        # broadcasting would quietly reuse one noise channel (or image) for all of them
        if not torch.is_tensor(a) or a.shape != ref.shape:
            got = tuple(a.shape) if torch.is_tensor(a) else type(a).__name__
            raise ValueError(f"{name} must have the shape of {ref_name}, {tuple(ref.shape)}, one value "
                             f"per value of {ref_name}; got {got} (draw noise with "
                             f"torch.randn_like({ref_name}))")

    def q_sample(self, x_start, t, noise):
        """Draw x_t from q(x_t | x_0) (eq. 4): ``sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise``.

        Parameters
        ----------
        x_start, noise : (B, *) tensors of the same shape
        t : (B,) long tensor

        Returns
        -------
        x_t : (B, *) tensor, of x_start's dtype when that is a floating one
        """
        t = self._check_steps(t, x_start)
        self._check_same_shape("noise", noise, "x_start", x_start)
        return self._q_sample(x_start, t, noise)

    def _q_sample(self, x_start, t, noise):
        shape, dtype = x_start.shape, x_start.dtype
        return (extract(self.sqrt_alphas_cumprod, t, shape, dtype) * x_start
                + extract(self.sqrt_one_minus_alphas_cumprod, t, shape, dtype) * noise)

    def predict_start_from_noise(self, x_t, t, noise):
        """x_0 from x_t and the noise: eq. 4 solved for x_0. Shapes and dtype as ``q_sample``."""
        t = self._check_steps(t, x_t)
        self._check_same_shape("noise", noise, "x_t", x_t)
        shape, dtype = x_t.shape, x_t.dtype
        return ((x_t - extract(self.sqrt_one_minus_alphas_cumprod, t, shape, dtype) * noise)
                / extract(self.sqrt_alphas_cumprod, t, shape, dtype))

    def predict_noise_from_start(self, x_t, t, x_start):
        """The noise from x_t and x_0: eq. 4 solved for the noise. Shapes and dtype as ``q_sample``."""
        t = self._check_steps(t, x_t)
        self._check_same_shape("x_start", x_start, "x_t", x_t)
        shape, dtype = x_t.shape, x_t.dtype
        return ((x_t - extract(self.sqrt_alphas_cumprod, t, shape, dtype) * x_start)
                / extract(self.sqrt_one_minus_alphas_cumprod, t, shape, dtype))

    def q_posterior(self, x_start, x_t, t):
        """Mean and standard deviation of q(x_{t-1} | x_t, x_0) (eqs. 6, 7), each (B, *) /
        broadcastable (B, 1, ..., 1), in x_t's dtype."""
        t = self._check_steps(t, x_t)
        shape, dtype = x_t.shape, x_t.dtype
        mean = (extract(self.posterior_mean_coef1, t, shape, dtype) * x_start
                + extract(self.posterior_mean_coef2, t, shape, dtype) * x_t)
        return mean, extract(self.posterior_std, t, shape, dtype)

    # -- sampling --------------------------------------------------------------------------------

    def _require_model(self):
        if self.model is None:
            raise ValueError("this GaussianDiffusion has no model; pass one, e.g. "
                             "GaussianDiffusion(Unet(64, condition_dim), image_size=32)")

    def _check_model_dtype(self, dtype, what, fix):
        """Refuse data of ``dtype`` for a model whose parameters have another floating dtype.

        Without this a float64 batch for a float32 network fails in its first layer with torch's
        "Input type (double) and bias type (float)". Under autocast mixed dtypes are intended;
        a model without parameters (a plain function) has no dtype to compare.
        """
        p = _first_parameter(self.model)
        if p is None or not p.is_floating_point() or p.dtype == dtype or torch.is_autocast_enabled(p.device.type):
            return
        raise ValueError(f"{what} is {dtype} but the model's parameters are {p.dtype}; they must "
                         f"share one dtype: {fix}")

    def _run_model(self, x_t, t, model_kwargs):
        """``model(x_t, t, model_kwargs)``, which must have x_t's shape (B, C, H, W)."""
        out = self.model(x_t, t, {} if model_kwargs is None else model_kwargs)
        # the loss would broadcast a (B, 1, H, W) output against the (B, C, H, W) target
        if not torch.is_tensor(out) or out.shape != x_t.shape:
            got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
            raise ValueError(f"the model returned shape {got} for input {tuple(x_t.shape)}; "
                             "it must return one value per input value")
        return out

    def model_predictions(self, x_t, t, model_kwargs=None):
        """The network's output turned into ``(pred_noise, pred_x_start)``, both (B, *)."""
        self._require_model()
        self._check_model_dtype(x_t.dtype, "x_t", "convert x_t (x_t.to(dtype)) or the model (model.to(x_t.dtype))")
        out = self._run_model(x_t, t, model_kwargs)
        if self.objective == "pred_noise":
            return out, self.predict_start_from_noise(x_t, t, out)
        return self.predict_noise_from_start(x_t, t, out), out

    @torch.no_grad()
    def p_sample(self, x_t, t: int, model_kwargs=None):
        """One reverse step: draw x_{t-1} from p(x_{t-1} | x_t) for every image of the batch.

        The predicted x_0 is clamped to [-1, 1], the images' range, which keeps the walk stable;
        at ``t = 0`` the posterior mean itself is returned (the paper's ``z = 0`` at its step 1).

        Parameters
        ----------
        x_t : (B, C, H, W) tensor
        t : int, in [0, num_timesteps)
        model_kwargs : dict, passed to the model (e.g. ``{'text_emb': (B, D) tensor}``)

        Returns
        -------
        x_{t-1} : (B, C, H, W) tensor
        """
        t = _step("p_sample", "t", t)
        if not t < self.num_timesteps:
            raise ValueError(f"t must lie in [0, {self.num_timesteps - 1}], got {t}")
        steps = torch.full((x_t.shape[0],), t, device=x_t.device, dtype=torch.long)
        _, x_start = self.model_predictions(x_t, steps, model_kwargs)
        mean, std = self.q_posterior(x_start.clamp(-1, 1), x_t, steps)
        return mean if int(t) == 0 else mean + std * torch.randn_like(x_t)

    @torch.no_grad()
    def sample(self, batch_size=16, return_all_timesteps=False, model_kwargs=None):
        """Images drawn by walking back all ``num_timesteps`` steps from N(0, I).

        As in the course, the model is not switched to eval mode: call ``model.eval()`` first,
        or the Unet's dropout stays on while sampling.

        Returns
        -------
        (batch_size, C, S, S) tensor in [0, 1], or (batch_size, T + 1, C, S, S) with every
        intermediate x_t (pure noise first) when ``return_all_timesteps``.
        """
        return self._walk(batch_size, list(reversed(range(self.num_timesteps))), "sampling loop time step",
                          lambda img, t: self.p_sample(img, t, model_kwargs), return_all_timesteps)

    def _walk(self, batch_size, steps, desc, step, keep_all):
        """From N(0, I), apply ``step(img, s)`` for each s of ``steps``; the result in [0, 1]."""
        self._require_model()
        # the noise is drawn in the buffers' dtype, which .double() / .half() set with the model's
        self._check_model_dtype(self.betas.dtype, "the starting noise (drawn in the dtype of this "
                                "GaussianDiffusion's buffers)",
                                "move both together with diffusion.to(dtype), e.g. diffusion.double()")
        shape = (batch_size, self.channels, self.image_size, self.image_size)
        img = torch.randn(shape, device=self.betas.device, dtype=self.betas.dtype)
        imgs = [img] if keep_all else None   # T + 1 batches are only held when asked for
        for s in tqdm(steps, desc=desc):
            img = step(img, s)
            if keep_all:
                imgs.append(img)
        return self.unnormalize(torch.stack(imgs, dim=1) if keep_all else img)

    @torch.no_grad()
    def ddim_step(self, x_t, t: int, t_prev: int, eta=0.0, model_kwargs=None):
        """One DDIM step (Song et al., 2021, eq. 12) from step ``t`` down to ``t_prev < t``.

        ``x_prev = sqrt(abar_prev) x_0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z`` with
        ``sigma = eta * sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))``: eta = 0
        is deterministic, and eta = 1 with ``t_prev = t - 1`` is the DDPM step of ``p_sample``.
        ``t_prev = -1`` means the end: the clamped prediction of x_0 is returned.
        """
        t, t_prev = _step("ddim_step", "t", t), _step("ddim_step", "t_prev", t_prev, -1)
        if not t < self.num_timesteps or not t_prev < t:
            raise ValueError(f"need 0 <= t < {self.num_timesteps} and -1 <= t_prev < t, got t={t}, t_prev={t_prev}")
        if eta < 0:
            raise ValueError(f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM's noise), got {eta}")
        steps = torch.full((x_t.shape[0],), int(t), device=x_t.device, dtype=torch.long)
        _, x_start = self.model_predictions(x_t, steps, model_kwargs)
        x_start = x_start.clamp(-1, 1)
        if int(t_prev) < 0:
            return x_start
        eps = self.predict_noise_from_start(x_t, steps, x_start)   # consistent with the clamped x_0
        t, t_prev = int(t), int(t_prev)
        # 1 - abar, and 1 - abar_t / abar_prev from the betas, not as differences of numbers near
        # 1, which float32 would round away at small t
        one_minus = self.sqrt_one_minus_alphas_cumprod ** 2
        drop = -torch.expm1(torch.log1p(-self.betas[t_prev + 1:t + 1]).sum())
        sigma = eta * (one_minus[t_prev] / one_minus[t] * drop).sqrt()
        x_prev = (self.sqrt_alphas_cumprod[t_prev] * x_start
                  + (one_minus[t_prev] - sigma ** 2).clamp(min=0).sqrt() * eps)
        return x_prev + sigma * torch.randn_like(x_t) if eta > 0 else x_prev

    @torch.no_grad()
    def ddim_sample(self, batch_size=16, sampling_steps=50, eta=0.0, return_all_timesteps=False,
                    model_kwargs=None):
        """Images drawn in ``sampling_steps`` DDIM steps, evenly spaced over the T steps the model
        was trained with: far fewer network calls than ``sample``, from the same trained model.
        Like ``sample``, it leaves the model in the mode it is in (call ``model.eval()`` first).

        Returns
        -------
        (batch_size, C, S, S) tensor in [0, 1], or (batch_size, sampling_steps + 1, C, S, S).
        """
        sampling_steps = _step("ddim_sample", "sampling_steps", sampling_steps, 1)
        if not sampling_steps <= self.num_timesteps:
            raise ValueError(f"sampling_steps must be in 1..{self.num_timesteps}, got {sampling_steps}")
        times = torch.linspace(self.num_timesteps - 1, 0, sampling_steps).round().long().tolist() + [-1]
        return self._walk(batch_size, list(zip(times[:-1], times[1:])), "DDIM sampling",
                          lambda img, ts: self.ddim_step(img, *ts, eta, model_kwargs), return_all_timesteps)

    # -- training --------------------------------------------------------------------------------

    def p_losses(self, x_start, model_kwargs=None):
        """The training loss (eq. 14): weighted MSE of the network's prediction at a random step.

        Parameters
        ----------
        x_start : (B, C, image_size, image_size) tensor of images in [0, 1]
        model_kwargs : dict, passed to the model

        Returns
        -------
        loss : scalar tensor
        """
        self._require_model()
        want = (self.channels, self.image_size, self.image_size)
        if x_start.ndim != 4 or tuple(x_start.shape[1:]) != want:
            raise ValueError(f"x_start must be (B, {', '.join(map(str, want))}) images, got "
                             f"{tuple(x_start.shape)}")
        self._check_model_dtype(x_start.dtype, "x_start",
                                "convert the images (x_start.float(), or x_start.to(dtype)) or the model "
                                "(model.to(x_start.dtype))")
        b = x_start.shape[0]
        t = torch.randint(0, self.num_timesteps, (b,), device=x_start.device)
        x_start = self.normalize(x_start)
        noise = torch.randn_like(x_start)
        target = noise if self.objective == "pred_noise" else x_start
        x_t = self._q_sample(x_start, t, noise)  # t is in range: no check, which would sync a GPU
        out = self._run_model(x_t, t, model_kwargs)
        return (extract(self.loss_weight, t, target.shape, target.dtype) * (out - target) ** 2).mean()

    def forward(self, x_start, model_kwargs=None):
        """Same as ``p_losses``."""
        return self.p_losses(x_start, model_kwargs)
