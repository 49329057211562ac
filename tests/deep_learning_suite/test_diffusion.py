import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402

from deep_learning_suite.diffusion import (  # noqa: E402
    GaussianDiffusion, cosine_beta_schedule, extract, get_beta_schedule, linear_beta_schedule,
)
from deep_learning_suite.unet import Unet  # noqa: E402

SCHEDULES = ["linear", "cosine", "sigmoid"]


class Constant(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x, t, model_kwargs):
        return torch.full_like(x, self.value)


class Recorder(nn.Module):
    """Returns ``fn(x_t, t)`` and keeps the inputs it was given."""

    def __init__(self, fn):
        super().__init__()
        self.fn, self.calls = fn, []

    def forward(self, x, t, model_kwargs):
        self.calls.append((x, t, model_kwargs))
        return self.fn(x, t)


def diffusion(model=None, schedule="sigmoid", objective="pred_noise", T=100, size=4):
    return GaussianDiffusion(model, image_size=size, timesteps=T, objective=objective,
                             beta_schedule=schedule).double()


def test_linear_schedule_is_the_papers_for_1000_steps():
    betas = linear_beta_schedule(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)
    torch.testing.assert_close(betas[1:] - betas[:-1], torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64))


def test_cosine_schedule_follows_its_alpha_bar_formula():
    T, s = 50, 0.008
    abar = torch.cumprod(1 - cosine_beta_schedule(T, s), 0)
    t = torch.arange(1, T + 1, dtype=torch.float64)
    want = (torch.cos((t / T + s) / (1 + s) * math.pi / 2) / math.cos(s / (1 + s) * math.pi / 2)) ** 2
    # the last step's beta is capped at 0.999, so compare before it
    torch.testing.assert_close(abar[:-1], want[:-1])


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("T", [10, 1000])
def test_schedules_give_betas_in_range_and_alpha_bar_falling_towards_zero(schedule, T):
    betas = get_beta_schedule(schedule, T)
    assert betas.shape == (T,) and betas.dtype == torch.float64
    assert (betas > 0).all() and (betas <= 0.999).all()
    abar = torch.cumprod(1 - betas, 0)
    assert (abar[1:] < abar[:-1]).all() and abar[-1] < 0.01


@pytest.mark.parametrize("bad", [dict(beta_schedule="quadratic"), dict(timesteps=1), dict(timesteps=2.5),
                                 dict(objective="pred_v"), dict(image_size=0)])
def test_bad_settings_are_refused(bad):
    kwargs = {"image_size": 4, "timesteps": 10, **bad}
    with pytest.raises(ValueError):
        GaussianDiffusion(None, **kwargs)


def test_extract_picks_one_coefficient_per_image_shaped_to_broadcast():
    a = torch.arange(10.0)
    out = extract(a, torch.tensor([3, 0, 9]), (3, 2, 5, 5))
    assert out.shape == (3, 1, 1, 1) and out.flatten().tolist() == [3.0, 0.0, 9.0]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_noise_and_start_predictions_invert_q_sample(schedule):
    torch.manual_seed(0)
    d = diffusion(schedule=schedule)
    x, noise = torch.randn(3, 3, 4, 4, dtype=torch.float64), torch.randn(3, 3, 4, 4, dtype=torch.float64)
    t = torch.tensor([0, 30, 99])
    x_t = d.q_sample(x, t, noise)
    torch.testing.assert_close(d.predict_start_from_noise(x_t, t, noise), x)
    torch.testing.assert_close(d.predict_noise_from_start(x_t, t, x), noise)


def test_q_sample_has_the_marginal_of_eq_4():
    # x_t given x_0 is N(sqrt(abar_t) x_0, 1 - abar_t): check both moments on many draws
    torch.manual_seed(0)
    d = diffusion(schedule="linear")
    N, t = 20000, 40
    x0 = torch.full((N, 3, 4, 4), 0.7, dtype=torch.float64)
    x_t = d.q_sample(x0, torch.full((N,), t), torch.randn_like(x0))
    abar = torch.prod(1 - linear_beta_schedule(100)[:t + 1])
    assert x_t.mean().item() == pytest.approx(0.7 * abar.sqrt().item(), abs=3e-3)
    assert x_t.var().item() == pytest.approx(1 - abar.item(), rel=1e-2)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_posterior_is_the_product_of_the_two_gaussians(schedule):
    # q(x_{t-1} | x_t, x_0) ~ q(x_t | x_{t-1}) q(x_{t-1} | x_0): precision-weighted sum of the two
    torch.manual_seed(0)
    d = diffusion(schedule=schedule)
    betas = get_beta_schedule(schedule, 100)
    abar = torch.cumprod(1 - betas, 0)
    x0, x_t = torch.randn(3, 3, 4, 4, dtype=torch.float64), torch.randn(3, 3, 4, 4, dtype=torch.float64)
    t = torch.tensor([5, 50, 99])
    mean, std = d.q_posterior(x0, x_t, t)
    b, a, ab_prev = betas[t], 1 - betas[t], abar[t - 1]
    var = 1 / (a / b + 1 / (1 - ab_prev))
    want = var[:, None, None, None] * (a.sqrt()[:, None, None, None] / b[:, None, None, None] * x_t
                                       + ab_prev.sqrt()[:, None, None, None] / (1 - ab_prev)[:, None, None, None] * x0)
    # the buffers are float32 (as the course stores them), hence the tolerance
    torch.testing.assert_close(mean, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(std.flatten(), var.sqrt(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bad_t", [torch.tensor([0, 100, 3]), torch.tensor([-1, 0, 0]), torch.tensor([1, 2]),
                                   torch.tensor([1.0, 2.0, 3.0])])
def test_out_of_range_or_misshapen_steps_are_refused(bad_t):
    d = diffusion()
    x = torch.zeros(3, 3, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="t"):
        d.q_sample(x, bad_t, x)


@pytest.mark.parametrize("objective", ["pred_noise", "pred_x_start"])
def test_last_step_is_the_clamped_prediction_and_deterministic(objective):
    # a model that says "2" everywhere: x_0 is clamped to 1 whichever way the 2 is read
    d = diffusion(Constant(2.0), objective=objective)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    a, b = d.p_sample(x, 0), d.p_sample(x, 0)
    torch.testing.assert_close(a, b)
    assert a.abs().max() <= 1
    if objective == "pred_x_start":
        torch.testing.assert_close(a, torch.ones_like(a))


def test_p_sample_draws_around_the_posterior_mean():
    torch.manual_seed(0)
    x0 = torch.full((1, 3, 4, 4), 0.25, dtype=torch.float64)
    d = diffusion(Constant(0.25), objective="pred_x_start")
    x_t = torch.randn(1, 3, 4, 4, dtype=torch.float64).expand(4000, -1, -1, -1)
    t = 60
    draws = d.p_sample(x_t, t)
    mean, std = d.q_posterior(x0.expand_as(x_t), x_t, torch.full((4000,), t))
    torch.testing.assert_close(draws.mean(0), mean[0], atol=4 * std.max().item() / 4000 ** 0.5 * 3, rtol=0)
    assert draws.std(0).mean().item() == pytest.approx(std[0].item(), rel=0.05)
    with pytest.raises(ValueError, match="t must lie"):
        d.p_sample(x_t[:1], 100)


@pytest.mark.parametrize("objective", ["pred_noise", "pred_x_start"])
def test_an_oracle_model_has_zero_loss_and_others_the_weighted_mse(objective):
    torch.manual_seed(0)
    x01 = torch.rand(5, 3, 4, 4, dtype=torch.float64)   # the images, in [0, 1]
    x0 = x01 * 2 - 1
    d = diffusion(objective=objective)

    def oracle(x_t, t):
        return d.predict_noise_from_start(x_t, t, x0) if objective == "pred_noise" else x0

    d.model = Recorder(oracle)
    assert d.p_losses(x01).item() == pytest.approx(0, abs=1e-20)

    d.model = Recorder(lambda x_t, t: torch.zeros_like(x_t))
    loss = d.p_losses(x01, {"text_emb": None})
    (x_t, t, kwargs), = d.model.calls
    assert kwargs == {"text_emb": None}
    noise = d.predict_noise_from_start(x_t, t, x0)
    if objective == "pred_noise":
        want = (noise ** 2).mean()
    else:  # SNR-weighted x_0 error, which is the noise error of the same prediction
        abar = d.alphas_cumprod[t][:, None, None, None]
        want = (abar / (1 - abar) * x0 ** 2).mean()
        eps_of_zero = d.predict_noise_from_start(x_t, t, torch.zeros_like(x0))
        torch.testing.assert_close(want, ((eps_of_zero - noise) ** 2).mean(), rtol=1e-4, atol=0)
    # the stored weights are float32, as the course keeps them
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=0)


def test_p_losses_refuses_images_of_the_wrong_shape_and_a_missing_model():
    d = diffusion(Constant(0.0))
    with pytest.raises(ValueError, match=r"\(B, 3, 4, 4\)"):
        d.p_losses(torch.rand(2, 3, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="no model"):
        diffusion().p_losses(torch.rand(2, 3, 4, 4, dtype=torch.float64))


def test_model_output_of_another_shape_is_refused():
    class Wrong(nn.Module):
        def forward(self, x, t, model_kwargs):
            return x[:, :1]
    with pytest.raises(ValueError, match="returned shape"):
        diffusion(Wrong()).p_sample(torch.zeros(2, 3, 4, 4, dtype=torch.float64), 5)


@pytest.mark.parametrize("all_steps", [False, True])
def test_sample_shapes_and_range(all_steps):
    torch.manual_seed(0)
    d = diffusion(Constant(0.3), objective="pred_x_start", T=10)
    out = d.sample(batch_size=2, return_all_timesteps=all_steps)
    final = out[:, -1] if all_steps else out
    assert out.shape == ((2, 11, 3, 4, 4) if all_steps else (2, 3, 4, 4))
    torch.testing.assert_close(final, torch.full_like(final, 0.65))   # (0.3 + 1) / 2


@pytest.mark.parametrize("training", [True, False])
def test_sampling_leaves_the_models_mode_alone(training):
    # As in the course: sample and ddim_sample run the model in the mode it is in, so
    # model.eval() before sampling is the caller's call (it turns the Unet's dropout off).
    modes = []
    model = Recorder(lambda x, t: (modes.append(model.training), torch.zeros_like(x))[1])
    model.train(training)
    d = diffusion(model, T=4)
    d.sample(batch_size=1)
    d.ddim_sample(batch_size=1, sampling_steps=2)
    assert modes == [training] * 6 and model.training is training


def test_training_a_small_unet_lowers_the_loss():
    torch.manual_seed(0)
    target = torch.zeros(8, 3, 8, 8)
    target[:, 0, :4] = 1.0      # red top half
    target[:, 2, 4:] = 1.0      # blue bottom half
    model = Unet(8, 4, dim_mults=(1, 2), uncond_prob=0.0)
    d = GaussianDiffusion(model, image_size=8, timesteps=20, beta_schedule="linear")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = d.p_losses(target, {"text_emb": None})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def two_image_denoiser(d, a, b):
    """The Bayes-optimal model for data {a, b}, equally likely: given x_t, the best guess of x_0
    is the posterior mean w_a a + w_b b, w from the Gaussian likelihoods of eq. 4."""
    def best(x_t, t):
        s = d.sqrt_alphas_cumprod[t][:, None]
        var = d.sqrt_one_minus_alphas_cumprod[t][:, None] ** 2
        flat = x_t.flatten(1)
        logits = torch.stack([-((flat - s * c.flatten()) ** 2).sum(1) for c in (a, b)], 1) / (2 * var)
        w = logits.softmax(1)
        x0 = (w[:, :1] * a.flatten() + w[:, 1:] * b.flatten()).view_as(x_t)
        return x0 if d.objective == "pred_x_start" else d.predict_noise_from_start(x_t, t, x0)
    return Recorder(best)


def lands_on_a_or_b_half_the_time(out, a, b):
    out = out * 2 - 1     # back to [-1, 1], where a and b live
    dist_a = (out - a).flatten(1).abs().max(1).values
    dist_b = (out - b).flatten(1).abs().max(1).values
    assert torch.minimum(dist_a, dist_b).max() < 1e-3
    assert 0.4 < (dist_a < dist_b).double().mean().item() < 0.6


@pytest.mark.parametrize("objective", ["pred_noise", "pred_x_start"])
def test_sampling_with_the_bayes_optimal_denoiser_reproduces_a_two_image_dataset(objective):
    # A correct sampler driven by the best denoiser must land on a or b, about half the time each.
    torch.manual_seed(0)
    a = torch.full((3, 4, 4), 0.8, dtype=torch.float64)
    d = diffusion(objective=objective, schedule="cosine")
    d.model = two_image_denoiser(d, a, -a)
    lands_on_a_or_b_half_the_time(d.sample(batch_size=400), a, -a)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_in_few_steps_with_the_bayes_optimal_denoiser_reproduces_the_dataset(eta):
    torch.manual_seed(0)
    a = torch.full((3, 4, 4), 0.8, dtype=torch.float64)
    d = diffusion(objective="pred_noise", schedule="cosine")
    d.model = two_image_denoiser(d, a, -a)
    out = d.ddim_sample(batch_size=400, sampling_steps=10, eta=eta)
    assert len(d.model.calls) == 10
    assert sorted({int(t[0]) for _, t, _ in d.model.calls}) == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
    lands_on_a_or_b_half_the_time(out, a, -a)


def test_ddim_with_eta_1_and_every_step_is_the_ddpm_step():
    d = diffusion(Constant(0.3), objective="pred_x_start")
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    for t in (1, 40, 99):
        torch.manual_seed(t)
        want = d.p_sample(x, t)
        torch.manual_seed(t)
        torch.testing.assert_close(d.ddim_step(x, t, t - 1, eta=1.0), want, rtol=1e-5, atol=1e-6)


def test_ddim_with_eta_0_is_deterministic_and_checks_its_arguments():
    d = diffusion(Constant(0.3), objective="pred_noise")
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(d.ddim_step(x, 50, 20), d.ddim_step(x, 50, 20))
    torch.testing.assert_close(d.ddim_step(x, 50, -1), d.predict_start_from_noise(
        x, torch.tensor([50, 50]), torch.full_like(x, 0.3)).clamp(-1, 1))
    for t, t_prev, eta in [(50, 50, 0.0), (100, 3, 0.0), (5, -2, 0.0), (5, 1, -0.5)]:
        with pytest.raises(ValueError):
            d.ddim_step(x, t, t_prev, eta)
    with pytest.raises(ValueError, match="sampling_steps"):
        d.ddim_sample(batch_size=1, sampling_steps=101)
    assert d.ddim_sample(batch_size=2, sampling_steps=4, return_all_timesteps=True).shape == (2, 5, 3, 4, 4)


# -- checks added after the audit: shapes, dtypes and integer settings -----------------------------

class Linear(nn.Module):
    """A model with float32 parameters: its dtype is the one the data must have."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x, t, model_kwargs):
        return x * self.w


@pytest.mark.parametrize("objective", ["pred_noise", "pred_x_start"])
@pytest.mark.parametrize("wrong", [lambda x: x[:, :1], lambda x: x[:1], lambda x: x[..., :1]])
def test_p_losses_refuses_a_model_output_that_would_broadcast(objective, wrong):
    d = diffusion(Recorder(lambda x, t: wrong(x)), objective=objective)
    with pytest.raises(ValueError, match="returned shape"):
        d.p_losses(torch.rand(2, 3, 4, 4, dtype=torch.float64))


@pytest.mark.parametrize("noise_shape", [(2, 1, 4, 4), (1, 3, 4, 4), (2, 3, 4, 1), (3, 4, 4)])
@pytest.mark.parametrize("method", ["q_sample", "predict_start_from_noise", "predict_noise_from_start"])
def test_a_second_tensor_that_would_broadcast_is_refused(noise_shape, method):
    d = diffusion()
    x = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"must have the shape of x_\w+, \(2, 3, 4, 4\)"):
        getattr(d, method)(x, torch.tensor([1, 2]), torch.zeros(noise_shape, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_results_keep_the_inputs_dtype_with_the_float32_buffers(dtype):
    d = GaussianDiffusion(None, image_size=4, timesteps=100)   # float32 buffers, as the course's
    assert d.betas.dtype == torch.float32
    x, noise, t = torch.rand(2, 3, 4, 4, dtype=dtype), torch.randn(2, 3, 4, 4, dtype=dtype), torch.tensor([3, 70])
    x_t = d.q_sample(x, t, noise)
    outs = [x_t, d.predict_start_from_noise(x_t, t, noise), d.predict_noise_from_start(x_t, t, x),
            *d.q_posterior(x, x_t, t)]
    assert [o.dtype for o in outs] == [dtype] * 5
    # and the values are those of the float64 computation, to the input's precision
    want = d.double().q_sample(x.double(), t, noise.double())
    tol = {torch.float16: 2e-3, torch.bfloat16: 2e-2}.get(dtype, 1e-6)
    torch.testing.assert_close(x_t.double(), want, rtol=tol, atol=tol)


def test_extract_casts_to_floating_dtypes_only():
    a, t = torch.tensor([0.25, 0.5]), torch.tensor([1, 0])
    assert extract(a, t, (2, 3), torch.float16).dtype == torch.float16
    assert extract(a, t, (2, 3), torch.float64).dtype == torch.float64
    # cast to an integer dtype the coefficients would round to 0
    assert extract(a, t, (2, 3), torch.int64).flatten().tolist() == [0.5, 0.25]
    assert extract(a, t, (2, 3)).dtype == torch.float32


@pytest.mark.parametrize("kwargs", [dict(timesteps=np.int64(10)), dict(timesteps=np.int32(10)),
                                    dict(image_size=np.int64(4)), dict(channels=np.int64(1)),
                                    dict(timesteps=10.0)])
def test_numpy_integer_settings_are_accepted(kwargs):
    d = GaussianDiffusion(Constant(0.0), **{"image_size": 4, "timesteps": 10, **kwargs})
    assert d.num_timesteps == 10 and d.image_size == 4 and type(d.image_size) is int
    assert type(d.channels) is int and d.sample(batch_size=1).shape == (1, d.channels, 4, 4)


@pytest.mark.parametrize("bad, match", [
    (dict(timesteps=True), "timesteps must be a positive integer"),
    (dict(timesteps=np.float64(2.5)), "timesteps must be a positive integer"),
    (dict(timesteps="10"), "timesteps must be a positive integer"),
    (dict(timesteps=np.int64(1)), "timesteps must be >= 2"),
    (dict(image_size=True), "image_size must be a positive integer"),
    (dict(image_size=4.5), "image_size must be a positive integer"),
    (dict(channels=0), "channels must be a positive integer"),
])
def test_non_integer_settings_are_refused_with_their_name(bad, match):
    with pytest.raises(ValueError, match=match):
        GaussianDiffusion(None, **{"image_size": 4, "timesteps": 10, **bad})


@pytest.mark.parametrize("data, model", [(torch.float64, torch.float32), (torch.float32, torch.float64)])
def test_p_losses_and_p_sample_refuse_data_of_another_dtype_than_the_model(data, model):
    d = GaussianDiffusion(Linear().to(model), image_size=4, timesteps=10)
    x = torch.rand(2, 3, 4, 4, dtype=data)
    with pytest.raises(ValueError, match=rf"x_start is {data} but the model's parameters are {model}"):
        d.p_losses(x)
    with pytest.raises(ValueError, match=rf"x_t is {data} but the model's parameters are {model}"):
        d.p_sample(x, 3)


def test_sampling_with_a_model_of_another_dtype_than_the_buffers_says_to_move_both():
    d = GaussianDiffusion(Linear().double(), image_size=4, timesteps=10)   # buffers stay float32
    for draw in (d.sample, lambda **kw: d.ddim_sample(sampling_steps=5, **kw)):
        with pytest.raises(ValueError, match=r"float32 but the model's parameters are torch.float64.*double\(\)"):
            draw(batch_size=1)
    d.double()
    assert d.sample(batch_size=1).dtype == torch.float64


def test_matching_dtypes_and_parameterless_models_pass_the_dtype_check():
    d = GaussianDiffusion(Linear().double(), image_size=4, timesteps=10).double()
    assert d.p_losses(torch.rand(2, 3, 4, 4, dtype=torch.float64)).dtype == torch.float64
    # no parameters, no dtype to compare: float64 data on float32 buffers still computes
    d = GaussianDiffusion(Constant(0.1), image_size=4, timesteps=10)
    assert d.p_losses(torch.rand(2, 3, 4, 4, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("call, match", [
    (lambda d, x: d.p_sample(x, 2.5), r"p_sample: t must be a non-negative integer, got 2\.5"),
    (lambda d, x: d.ddim_step(x, 3, 1.5), r"ddim_step: t_prev must be .*integer, got 1\.5"),
    (lambda d, x: d.ddim_sample(batch_size=1, sampling_steps=2.5),
     r"ddim_sample: sampling_steps must be a positive integer, got 2\.5"),
])
def test_fractional_steps_are_refused_not_truncated(call, match):
    # int(2.5) would silently run step 2.
    d = GaussianDiffusion(Constant(0.0), image_size=4, timesteps=5)
    with pytest.raises(ValueError, match=match):
        call(d, torch.zeros(1, 3, 4, 4))


def test_integer_steps_still_work_as_python_numpy_and_tensor_scalars():
    d = GaussianDiffusion(Constant(0.0), image_size=4, timesteps=5)
    x = torch.zeros(1, 3, 4, 4)
    torch.manual_seed(0)
    a = d.p_sample(x, 3)
    torch.manual_seed(0)
    b = d.p_sample(x, np.int64(3))
    torch.manual_seed(0)
    c = d.p_sample(x, torch.tensor(3))
    assert torch.equal(a, b) and torch.equal(a, c)
