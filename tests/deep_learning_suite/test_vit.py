import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite.classification_solver_vit import ClassificationSolverViT  # noqa: E402
from deep_learning_suite.trainer import TrainingDivergedError  # noqa: E402
from deep_learning_suite.transformer_layers import (  # noqa: E402
    PatchEmbedding,
    PositionalEncoding,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from deep_learning_suite.utils import rel_error  # noqa: E402
from deep_learning_suite.vit import VisionTransformer  # noqa: E402

SMALL = dict(img_size=8, patch_size=4, embed_dim=16, num_layers=2, num_heads=2, dim_feedforward=32,
             num_classes=3)


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread):
    yield


def _tinted_images(n, seed):
    # Two classes of noise images, told apart by their tint: class 0 has a brighter red
    # channel, class 1 a brighter green one.
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = 0.5 * torch.randn(n, 3, 8, 8, generator=g)
    images[labels == 0, 0] += 0.5
    images[labels == 1, 1] += 0.5
    return torch.utils.data.TensorDataset(images, labels)


def test_scores_have_one_row_per_image_and_eval_is_deterministic():
    torch.manual_seed(0)
    model = VisionTransformer(**SMALL)
    x = torch.randn(5, 3, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))             # dropout
    model.eval()
    scores = model(x)
    assert scores.shape == (5, 3) and torch.equal(scores, model(x))
    assert torch.allclose(model(x[:2]), scores[:2], atol=1e-6)   # images are scored independently


def test_forward_is_patches_plus_positions_through_torchs_encoder_then_mean_and_head():
    # An oracle written with torch's own layers: the patch projection as a strided convolution,
    # the sinusoid table, torch.nn.TransformerEncoder (post-norm, GELU), the mean, the head.
    torch.manual_seed(1)
    model = VisionTransformer(**SMALL).double().eval()
    with torch.no_grad():
        for p in model.parameters():      # away from the small init, so that a mix-up shows
            p.normal_()
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu", batch_first=True)
    ref = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).double().eval()
    with torch.no_grad():
        for mine, theirs in zip(model.transformer.layers, ref.layers):
            a = mine.self_attn
            theirs.self_attn.in_proj_weight.copy_(torch.cat([a.query.weight, a.key.weight, a.value.weight]))
            theirs.self_attn.in_proj_bias.copy_(torch.cat([a.query.bias, a.key.bias, a.value.bias]))
            theirs.self_attn.out_proj.load_state_dict(a.proj.state_dict())
            theirs.linear1.load_state_dict(mine.ffn.fc1.state_dict())
            theirs.linear2.load_state_dict(mine.ffn.fc2.state_dict())
            theirs.norm1.load_state_dict(mine.norm_self.state_dict())
            theirs.norm2.load_state_dict(mine.norm_ffn.state_dict())
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    proj = model.patch_embed.proj
    patches = torch.nn.functional.conv2d(x, proj.weight.reshape(16, 3, 4, 4), proj.bias, stride=4)
    tokens = patches.flatten(2).transpose(1, 2)                     # (3, 4 patches, 16)
    position = torch.arange(4, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, 16, 2, dtype=torch.float64) / 16)
    table = torch.stack([torch.sin(position * freq), torch.cos(position * freq)], dim=-1).flatten(1)
    tokens = tokens + table.float().double()                        # the buffer is float32
    want = model.head(ref(tokens).mean(dim=1))
    assert rel_error(model(x).detach().numpy(), want.detach().numpy()) < 1e-10


def _course_init(module):
    # The 2025 course's VisionTransformer._init_weights, as its file states it.
    if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, torch.nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)


def test_seeded_construction_draws_the_courses_weights():
    # The course makes patch_embed, positional_encoding, the encoder, then head, and only then
    # initialises everything (the head too): a seed gives its model, parameter for parameter.
    torch.manual_seed(2)
    model = VisionTransformer()
    torch.manual_seed(2)
    course = torch.nn.Module()
    course.patch_embed = PatchEmbedding(32, 8, 3, 128)
    course.positional_encoding = PositionalEncoding(128, dropout=0.1)
    course.transformer = TransformerEncoder(TransformerEncoderLayer(128, 4, 256, 0.1), num_layers=6)
    course.head = torch.nn.Linear(128, 10)
    course.apply(_course_init)
    mine, theirs = dict(model.named_parameters()), dict(course.named_parameters())
    assert list(mine) == list(theirs)
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name
    assert 0.015 < model.head.weight.std() < 0.025 and torch.all(model.head.bias == 0)


def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    model = VisionTransformer(**SMALL)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


def test_other_image_sizes_that_are_multiples_of_the_patch_size_are_scored():
    # Sinusoidal positions and mean pooling fit any number of patches.
    model = VisionTransformer(**SMALL).eval()
    assert model(torch.randn(2, 3, 12, 16)).shape == (2, 3)


@pytest.mark.parametrize("make, message", [
    (lambda: VisionTransformer(img_size=30), "img_size 30 is not a multiple of patch_size 8"),
    (lambda: VisionTransformer(embed_dim=129, num_heads=3), "must be even"),
    (lambda: VisionTransformer(embed_dim=128, num_heads=3), "divisible by num_heads 3"),
    (lambda: VisionTransformer(num_classes=0), "num_classes must be a positive integer, got 0"),
    (lambda: VisionTransformer(num_layers=1.5), "num_layers must be a positive integer, got 1.5"),
    (lambda: VisionTransformer(dropout=1.5), "dropout probability"),
    (lambda: VisionTransformer(**SMALL)(torch.zeros(2, 3, 10, 8)), "multiples of the patch size 4"),
    (lambda: VisionTransformer(**SMALL)(torch.zeros(2, 8, 8, 3)), "channels-last images need"),
])
def test_bad_models_and_images_get_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def _solver(model=None, train=None, test=None, **options):
    torch.manual_seed(4)
    model = model if model is not None else VisionTransformer(**{**SMALL, "num_classes": 2, "dropout": 0.0})
    train = train if train is not None else _tinted_images(64, seed=0)
    test = test if test is not None else _tinted_images(32, seed=1)
    return ClassificationSolverViT(train_data=train, test_data=test, model=model,
                                   **{"verbose": False, "seed": 0, **options})


def test_a_short_run_learns_the_synthetic_images():
    solver = _solver(num_epochs=6, learning_rate=3e-3, batch_size=16)
    solver.train()
    r = solver.results
    assert [len(r[k]) for k in ("train_loss", "train_acc@1", "test_loss", "test_acc@1")] == [6] * 4
    assert r["train_loss"][-1] < 0.5 * r["train_loss"][0]
    assert r["test_acc@1"][-1] >= 0.9
    assert all(0 <= a <= 1 for a in r["train_acc@1"] + r["test_acc@1"])     # fractions, not percent
    assert r["best_test_acc"] == max(r["test_acc@1"]) and solver.epoch == 6
    assert not solver.model.training


def test_training_again_continues_the_record():
    solver = _solver(num_epochs=1)
    solver.train()
    solver.train()
    assert solver.epoch == 2 and len(solver.results["test_loss"]) == 2
    assert solver.results["best_test_acc"] == max(solver.results["test_acc@1"])


def test_the_courses_defaults_and_attributes():
    solver = _solver()
    assert (solver.learning_rate, solver.weight_decay, solver.batch_size, solver.num_epochs) == (1e-4, 0.0, 64, 2)
    assert isinstance(solver.optimizer, torch.optim.Adam)
    assert isinstance(solver.loss_criterion, torch.nn.CrossEntropyLoss)
    assert solver.epoch == 0 and solver.results == {"train_loss": [], "train_acc@1": [], "test_loss": [],
                                                    "test_acc@1": []}
    decayed = _solver(weight_decay=1e-4, learning_rate=2e-3)
    assert decayed.optimizer.param_groups[0]["weight_decay"] == 1e-4
    assert decayed.optimizer.param_groups[0]["lr"] == 2e-3


def test_a_seed_repeats_the_run():
    runs = []
    for _ in range(2):
        solver = _solver(num_epochs=2, learning_rate=1e-3, batch_size=8, seed=5)
        solver.train()
        runs.append(solver.results)
    assert runs[0] == runs[1]


def test_a_non_finite_loss_stops_training_before_the_step():
    model = VisionTransformer(**{**SMALL, "num_classes": 2})
    with torch.no_grad():
        model.head.bias[0] = float("nan")
    before = model.patch_embed.proj.weight.detach().clone()
    with pytest.raises(TrainingDivergedError, match="cross-entropy loss is nan in training epoch 1 of 2"):
        _solver(model=model).train()
    assert torch.equal(model.patch_embed.proj.weight, before)


@pytest.mark.parametrize("options, message", [
    (dict(lr=1e-3), r"unrecognized option\(s\) \['lr'\]"),
    (dict(learning_rate=0), "learning_rate must be a positive number, got 0"),
    (dict(learning_rate="1e-4"), "learning_rate must be a positive number"),
    (dict(weight_decay=-1e-4), "weight_decay must be a finite number >= 0"),
    (dict(batch_size=2.5), "batch_size must be a positive integer, got 2.5"),
    (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
    (dict(num_epochs=-1), "num_epochs must be a non-negative integer, got -1"),
    (dict(seed=1.5), "seed must be a non-negative integer"),
    (dict(train=torch.zeros(0, 3, 8, 8)), "train_data is empty"),
    (dict(test=[]), "test_data is empty"),
    (dict(train=iter([])), "train_data must be a dataset of \\(image, label\\) pairs"),
    (dict(model=lambda x: x), "model must be a torch.nn.Module, got function"),
])
def test_bad_solver_options_get_clear_errors(options, message):
    with pytest.raises(ValueError, match="ClassificationSolverViT: " + message):
        _solver(**options)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_the_gpu():
    solver = _solver(num_epochs=2, learning_rate=3e-3, batch_size=16)
    solver.train("cuda")
    assert next(solver.model.parameters()).is_cuda
    assert np.isfinite(solver.results["train_loss"]).all()
