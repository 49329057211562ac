import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite.transformer_layers import (  # noqa: E402
    FeedForwardNetwork,
    MultiHeadAttention,
    PatchEmbedding,
    PositionalEncoding,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from deep_learning_suite.utils import rel_error  # noqa: E402


@pytest.fixture(autouse=True)
def float64_and_one_thread(torch_one_thread):
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("S, E", [(5, 6), (1, 2), (40, 16)])
def test_positional_encoding_is_the_sinusoid_table(S, E):
    pe = PositionalEncoding(E, dropout=0.0, max_len=64)
    x = torch.zeros(2, S, E)
    out = pe(x).numpy()
    ref = np.zeros((S, E))
    for t in range(S):
        for j in range(0, E, 2):
            ref[t, j] = math.sin(t / 10000 ** (j / E))
            ref[t, j + 1] = math.cos(t / 10000 ** (j / E))
    assert rel_error(out[0], ref) < 1e-6 and np.array_equal(out[0], out[1])


def test_positional_encoding_matches_the_notebook_where_dropout_kept_the_value():
    # The Transformer_Captioning notebook's check runs in training mode, so its numbers hold a
    # dropout mask drawn by the course's PyTorch build: here one element (index 4 of the first
    # row) was dropped there. The others are (data + pe) / (1 - p), to the 4 printed decimals.
    torch.manual_seed(231)
    data = torch.randn(1, 2, 6, dtype=torch.float32)
    pe = PositionalEncoding(6).eval()
    out = pe(data).numpy() / 0.9
    expected = np.asarray([[[-1.2340, 1.1127, 1.6978, -0.0865, -0.0000, 1.2728],
                            [0.9028, -0.4781, 0.5535, 0.8133, 1.2644, 1.7034]]])
    kept = expected != 0
    assert np.abs(out[kept] - expected[kept]).max() < 1e-4


def test_positional_encoding_table_is_a_saved_buffer():
    # A buffer, as the course registers it: in the state_dict (its keys are the course's) and
    # moved by .to(device) with the module, but not a trained parameter.
    pe = PositionalEncoding(6, max_len=10)
    assert list(pe.state_dict()) == ["pe"] and pe.state_dict()["pe"].shape == (1, 10, 6)
    assert list(pe.parameters()) == []


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_positional_encoding_keeps_the_input_dtype(dtype):
    # The float32 table is cast to the input's dtype: half-precision activations stay half.
    pe = PositionalEncoding(4, dropout=0.0, max_len=8)
    out = pe(torch.zeros(1, 3, 4, dtype=dtype))
    assert out.dtype == dtype
    ref = [[math.sin(t), math.cos(t), math.sin(t / 100), math.cos(t / 100)] for t in range(3)]
    tol = {torch.float16: 1e-3, torch.bfloat16: 1e-2}.get(dtype, 1e-6)
    np.testing.assert_allclose(out[0].double().numpy(), ref, atol=tol)


def test_positional_encoding_covers_max_len_positions():
    pe = PositionalEncoding(4, dropout=0.0, max_len=3)
    assert torch.equal(pe(torch.zeros(1, 3, 4)), pe.pe.double())
    with pytest.raises(ValueError, match=r"needs S <= max_len = 3"):
        pe(torch.zeros(1, 4, 4))


def test_positional_encoding_dropout_zeroes_and_rescales():
    torch.manual_seed(0)
    pe = PositionalEncoding(8, dropout=0.5)
    x = torch.randn(4, 10, 8)
    train, ref = pe(x), pe.eval()(x)
    dropped = train == 0
    assert 0.3 < dropped.double().mean() < 0.7
    assert torch.allclose(train[~dropped], 2 * ref[~dropped])


def _torch_mha(attn, E, H):
    ref = torch.nn.MultiheadAttention(E, H, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([attn.query.weight, attn.key.weight, attn.value.weight]))
        ref.in_proj_bias.copy_(torch.cat([attn.query.bias, attn.key.bias, attn.value.bias]))
        ref.out_proj.weight.copy_(attn.proj.weight)
        ref.out_proj.bias.copy_(attn.proj.bias)
    return ref.eval()


@pytest.mark.parametrize("N, S, T, E, H", [(2, 3, 5, 8, 2), (1, 4, 4, 12, 3), (3, 1, 2, 4, 1)])
@pytest.mark.parametrize("masked", [False, True])
def test_multihead_attention_matches_torch(N, S, T, E, H, masked):
    # Key and value are different tensors, so that a layer reading one for the other shows.
    torch.manual_seed(1)
    attn = MultiHeadAttention(E, H).eval()
    ref = _torch_mha(attn, E, H)
    q, k, v = (torch.randn(N, L, E, requires_grad=True) for L in (S, T, T))
    mask = None
    if masked:      # every query keeps at least one key (a fully masked row has no softmax)
        mask = torch.rand(S, T) < 0.6
        mask[:, 0] = True
    out = attn(q, k, v, attn_mask=mask)
    want, _ = ref(q, k, v, attn_mask=None if mask is None else ~mask, need_weights=False)
    assert rel_error(out.detach().numpy(), want.detach().numpy()) < 1e-10
    g = torch.randn(N, S, E)
    mine = torch.autograd.grad(out, [q, k, v], g)
    theirs = torch.autograd.grad(want, [q, k, v], g)
    for a, b in zip(mine, theirs):      # masked keys: exactly 0 here, round-off in torch
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-14)


def _dropout_mask(seed, shape, p):
    # nn.Dropout's draw for a tensor of `shape` after torch.manual_seed(seed): the same
    # Bernoulli mask, already scaled by 1 / (1 - p), as a layer drawing nothing else gets.
    torch.manual_seed(seed)
    return torch.nn.functional.dropout(torch.ones(shape), p, training=True)


def test_attention_dropout_drops_softmax_weights_in_training_mode():
    # Y = proj(concat_h (dropout(softmax(Q_h K_h^T / sqrt(d))) V_h)), head by head: dropout
    # on the attention weights after the softmax, at the p given (its only random draw).
    N, S, T, E, H, p = 2, 3, 4, 6, 2, 0.5
    d = E // H
    torch.manual_seed(10)
    attn = MultiHeadAttention(E, H, dropout=p)
    q, k, v = torch.randn(N, S, E), torch.randn(N, T, E), torch.randn(N, T, E)
    torch.manual_seed(11)
    out = attn(q, k, v)
    mask = _dropout_mask(11, (N, H, S, T), p)
    assert (mask == 0).any() and (mask != 0).any()
    Q, K, V = attn.query(q), attn.key(k), attn.value(v)
    heads = []
    for h in range(H):
        cols = slice(h * d, (h + 1) * d)
        weights = torch.softmax(Q[..., cols] @ K[..., cols].transpose(1, 2) / math.sqrt(d), dim=-1)
        heads.append((weights * mask[:, h]) @ V[..., cols])
    assert torch.allclose(out, attn.proj(torch.cat(heads, dim=-1)), atol=1e-12)


def test_feed_forward_dropout_is_on_the_hidden_activations():
    # fc2(dropout(gelu(fc1(x)))): the mask falls between the GELU and fc2.
    p = 0.5
    torch.manual_seed(12)
    ffn = FeedForwardNetwork(6, 10, dropout=p)
    x = torch.randn(3, 4, 6)
    torch.manual_seed(13)
    out = ffn(x)
    mask = _dropout_mask(13, (3, 4, 10), p)
    hidden = torch.nn.functional.gelu(x @ ffn.fc1.weight.T + ffn.fc1.bias)
    assert torch.allclose(out, (hidden * mask) @ ffn.fc2.weight.T + ffn.fc2.bias, atol=1e-12)


@pytest.mark.parametrize("make, count", [
    (lambda p: TransformerDecoderLayer(8, 2, 16, dropout=p), 6),   # 2 attentions, ffn, 3 sublayers
    (lambda p: TransformerEncoderLayer(8, 2, 16, dropout=p), 4),
    (lambda p: TransformerDecoder(TransformerDecoderLayer(8, 2, 16, dropout=p), 2), 12),
    (lambda p: MultiHeadAttention(8, 2, dropout=p), 1),
    (lambda p: FeedForwardNetwork(8, 16, dropout=p), 1),
    (lambda p: PositionalEncoding(8, dropout=p), 1),
])
def test_every_dropout_uses_the_rate_given(make, count):
    rates = [m.p for m in make(0.3).modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.3] * count


def test_the_courses_defaults():
    # dropout 0.1 everywhere, a 5000-position table, a 2048-wide feed-forward block
    for module in (PositionalEncoding(8), MultiHeadAttention(8, 2), FeedForwardNetwork(8, 16),
                   TransformerDecoderLayer(8, 2), TransformerEncoderLayer(8, 2)):
        assert {m.p for m in module.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}
    assert PositionalEncoding(8).pe.shape == (1, 5000, 8)
    assert TransformerDecoderLayer(8, 2).ffn.fc1.out_features == 2048
    assert TransformerEncoderLayer(8, 2).ffn.fc1.out_features == 2048
    embed = PatchEmbedding(8, 4)
    assert (embed.in_channels, embed.embed_dim) == (3, 128)


def _sublayers(layer, memory=None, mask=None):
    # (name, sublayer, norm) in the order a post-norm layer applies them.
    out = [("self", lambda t: layer.self_attn(t, t, t, attn_mask=mask), layer.norm_self)]
    if memory is not None:
        out.append(("cross", lambda t: layer.cross_attn(t, memory, memory), layer.norm_cross))
    return out + [("ffn", layer.ffn, layer.norm_ffn)]


@pytest.mark.parametrize("kind, dropped", [("decoder", "self"), ("decoder", "cross"), ("decoder", "ffn"),
                                           ("encoder", "self"), ("encoder", "ffn")])
def test_each_sublayer_output_is_dropped_before_its_residual(kind, dropped):
    # x = norm(x + dropout(sublayer(x))): with that one dropout at p = 1 (and every other at 0)
    # in training mode, the sublayer adds nothing and x = norm(x) there.
    torch.manual_seed(14)
    x, memory = torch.randn(2, 4, 8), torch.randn(2, 3, 8)
    causal = torch.tril(torch.ones(4, 4))
    if kind == "decoder":
        layer = TransformerDecoderLayer(8, 2, 16)
        run, subs = (lambda: layer(x, memory, tgt_mask=causal)), _sublayers(layer, memory, causal)
    else:
        layer = TransformerEncoderLayer(8, 2, 16)
        run, subs = (lambda: layer(x, src_mask=causal)), _sublayers(layer, mask=causal)
    for m in layer.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    getattr(layer, f"dropout_{dropped}").p = 1.0
    out = run()
    want = x
    for name, sublayer, norm in subs:
        want = norm(want if name == dropped else want + sublayer(want))
    assert torch.allclose(out, want, atol=1e-12)
    layer.eval()
    assert not torch.allclose(run(), out)       # in evaluation mode the sublayer counts again


def test_masked_keys_get_no_weight():
    torch.manual_seed(2)
    attn = MultiHeadAttention(4, 2).eval()
    q, kv = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    mask = torch.tril(torch.ones(3, 3))
    out = attn(q, kv, kv, attn_mask=mask)
    changed = kv.clone()
    changed[:, 2] += 10                      # only the last query may see the last key
    out2 = attn(q, changed, changed, attn_mask=mask)
    assert torch.allclose(out[:, :2], out2[:, :2]) and not torch.allclose(out[:, 2], out2[:, 2])


def _copy_mha(dst, src):
    with torch.no_grad():
        dst.in_proj_weight.copy_(torch.cat([src.query.weight, src.key.weight, src.value.weight]))
        dst.in_proj_bias.copy_(torch.cat([src.query.bias, src.key.bias, src.value.bias]))
        dst.out_proj.weight.copy_(src.proj.weight)
        dst.out_proj.bias.copy_(src.proj.bias)


def _copy_block(theirs, mine):
    # torch's names for the course's: linear1/linear2 are the feed-forward block's fc1/fc2, and
    # norm1, norm2 (, norm3) follow the sublayers in order.
    with torch.no_grad():
        mine.ffn.fc1.weight.normal_()         # away from the defaults, so a swap would show
        _copy_mha(theirs.self_attn, mine.self_attn)
        theirs.linear1.load_state_dict(mine.ffn.fc1.state_dict())
        theirs.linear2.load_state_dict(mine.ffn.fc2.state_dict())
        if hasattr(mine, "cross_attn"):
            _copy_mha(theirs.multihead_attn, mine.cross_attn)
            norms = ("norm_self", "norm_cross", "norm_ffn")
        else:
            norms = ("norm_self", "norm_ffn")
        for i, name in enumerate(norms, start=1):
            getattr(mine, name).weight.normal_()
            getattr(theirs, f"norm{i}").load_state_dict(getattr(mine, name).state_dict())


@pytest.mark.parametrize("num_layers", [1, 2])
def test_decoder_matches_torch_decoder_with_gelu(num_layers):
    # The 2025 course's feed-forward block is GELU (the 2023/2024 decoder's was ReLU): torch's
    # decoder with activation="gelu" is the same function, forward and backward.
    torch.manual_seed(3)
    E, H, F = 8, 2, 16
    layer = TransformerDecoderLayer(E, H, dim_feedforward=F)
    decoder = TransformerDecoder(layer, num_layers).eval()
    assert decoder.layers[0] is not decoder.layers[-1] or num_layers == 1
    ref_layer = torch.nn.TransformerDecoderLayer(E, H, dim_feedforward=F, batch_first=True, activation="gelu")
    ref = torch.nn.TransformerDecoder(ref_layer, num_layers).eval()
    for mine, theirs in zip(decoder.layers, ref.layers):
        _copy_block(theirs, mine)
    tgt = torch.randn(2, 5, E, requires_grad=True)
    memory = torch.randn(2, 3, E, requires_grad=True)
    causal = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    out = decoder(tgt, memory, tgt_mask=causal)
    want = ref(tgt, memory, tgt_mask=~causal)
    assert rel_error(out.detach().numpy(), want.detach().numpy()) < 1e-10
    g = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, [tgt, memory], g), torch.autograd.grad(want, [tgt, memory], g)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("masked", [False, True])
def test_encoder_matches_torch_encoder_with_gelu(num_layers, masked):
    torch.manual_seed(5)
    E, H, F = 12, 3, 20
    encoder = TransformerEncoder(TransformerEncoderLayer(E, H, dim_feedforward=F), num_layers).eval()
    ref_layer = torch.nn.TransformerEncoderLayer(E, H, dim_feedforward=F, batch_first=True, activation="gelu")
    ref = torch.nn.TransformerEncoder(ref_layer, num_layers, enable_nested_tensor=False).eval()
    for mine, theirs in zip(encoder.layers, ref.layers):
        _copy_block(theirs, mine)
    src = torch.randn(2, 6, E, requires_grad=True)
    mask = None
    if masked:
        mask = torch.rand(6, 6) < 0.5
        mask[:, 0] = True
    out = encoder(src, src_mask=mask)
    want = ref(src, mask=None if mask is None else ~mask)
    assert rel_error(out.detach().numpy(), want.detach().numpy()) < 1e-10
    g = torch.randn_like(out)
    np.testing.assert_allclose(torch.autograd.grad(out, src, g)[0].numpy(),
                               torch.autograd.grad(want, src, g)[0].numpy(), rtol=1e-9, atol=1e-12)


def test_feed_forward_is_gelu_between_two_linears_with_dropout_in_training_only():
    torch.manual_seed(6)
    ffn = FeedForwardNetwork(6, 10, dropout=0.5)
    x = torch.randn(3, 4, 6)
    hidden = torch.nn.functional.gelu(x @ ffn.fc1.weight.T + ffn.fc1.bias)
    assert torch.allclose(ffn.eval()(x), hidden @ ffn.fc2.weight.T + ffn.fc2.bias, atol=1e-12)
    ffn.train()
    assert not torch.allclose(ffn(x), ffn.eval()(x))
    assert FeedForwardNetwork(6, 10)(torch.randn(5, 6)).shape == (5, 6)    # any leading shape


def test_a_decoder_layer_is_made_in_the_courses_order():
    # Seeded, the same draws as the 2025 course's layer: its modules, in its order and names,
    # so that its state_dict keys are the course's too.
    torch.manual_seed(7)
    layer = TransformerDecoderLayer(8, 2, 16)
    torch.manual_seed(7)
    draws = [torch.nn.Linear(8, 8) for _ in range(8)] + [torch.nn.Linear(8, 16), torch.nn.Linear(16, 8)]
    names = [f"{attn}.{lin}" for attn in ("self_attn", "cross_attn") for lin in ("key", "query", "value", "proj")]
    for name, linear in zip(names + ["ffn.fc1", "ffn.fc2"], draws):
        assert torch.equal(layer.get_submodule(name).weight, linear.weight), name
    assert [n for n, _ in layer.named_children()] == [
        "self_attn", "cross_attn", "ffn", "norm_self", "norm_cross", "norm_ffn", "dropout_self",
        "dropout_cross", "dropout_ffn"]
    encoder_layer = TransformerEncoderLayer(8, 2, 16)
    assert [n for n, _ in encoder_layer.named_children()] == [
        "self_attn", "ffn", "norm_self", "norm_ffn", "dropout_self", "dropout_ffn"]


def test_copies_are_independent():
    layer = TransformerDecoderLayer(4, 2, dim_feedforward=8)
    decoder = TransformerDecoder(layer, 2)
    encoder = TransformerEncoder(TransformerEncoderLayer(4, 2, dim_feedforward=8), 2)
    with torch.no_grad():
        decoder.layers[0].ffn.fc1.weight.zero_()
        encoder.layers[0].ffn.fc1.weight.zero_()
    assert decoder.layers[1].ffn.fc1.weight.abs().sum() > 0
    assert encoder.layers[1].ffn.fc1.weight.abs().sum() > 0


def test_encoder_mask_blocks_keys_and_gradients_flow_to_every_parameter():
    torch.manual_seed(8)
    layer = TransformerEncoderLayer(8, 2, 16).eval()
    x = torch.randn(2, 4, 8)
    causal = torch.tril(torch.ones(4, 4))
    later = x.clone()
    later[:, 3] += 5
    assert torch.allclose(layer(x, causal)[:, :3], layer(later, causal)[:, :3])
    assert not torch.allclose(layer(x)[:, :3], layer(later)[:, :3])      # unmasked, all see all
    layer.train()
    layer(x, causal).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("N, C, H, W, P", [(2, 3, 16, 16, 8), (1, 1, 8, 12, 4), (3, 2, 6, 6, 1), (1, 3, 5, 5, 5)])
def test_patch_embedding_projects_each_patch_row_by_row(N, C, H, W, P):
    torch.manual_seed(9)
    embed = PatchEmbedding(img_size=H, patch_size=P, in_channels=C, embed_dim=7)
    x = torch.randn(N, C, H, W)
    out = embed(x)
    assert out.shape == (N, (H // P) * (W // P), 7)
    k = 0
    for i in range(H // P):
        for j in range(W // P):
            patch = x[:, :, i * P:(i + 1) * P, j * P:(j + 1) * P].reshape(N, C * P * P)   # (C, P, P)
            assert torch.allclose(out[:, k], embed.proj(patch), atol=1e-12), (i, j)
            k += 1
    # the same as a strided convolution with the projection as its kernel
    conv = torch.nn.functional.conv2d(x, embed.proj.weight.reshape(7, C, P, P), embed.proj.bias, stride=P)
    assert torch.allclose(out, conv.flatten(2).transpose(1, 2), atol=1e-12)


def test_patch_embedding_records_the_courses_sizes_and_gets_gradients():
    embed = PatchEmbedding(32, 8)
    assert (embed.num_patches, embed.patch_dim, embed.embed_dim) == (16, 192, 128)
    assert type(embed.num_patches) is int and type(embed.patch_dim) is int
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    embed(x).sum().backward()
    assert x.grad.abs().sum() > 0 and embed.proj.weight.grad.abs().sum() > 0


def test_smallest_sizes_are_accepted():
    # One feature, one-pixel images: the size checks start at 1, and (..., E) includes (E,).
    assert FeedForwardNetwork(1, 1)(torch.zeros(1)).shape == (1,)
    assert FeedForwardNetwork(6, 10)(torch.zeros(6)).shape == (6,)
    assert PatchEmbedding(1, 1, in_channels=1, embed_dim=1)(torch.zeros(2, 1, 1, 1)).shape == (2, 1, 1)


@pytest.mark.parametrize("make, message", [
    (lambda: PatchEmbedding(30, 8), "img_size 30 is not a multiple of patch_size 8"),
    (lambda: PatchEmbedding(32, 0), "patch_size must be a positive integer, got 0"),
    (lambda: PatchEmbedding(32, 8, embed_dim=2.5), "embed_dim must be a positive integer"),
    (lambda: PatchEmbedding(16, 8)(torch.zeros(2, 3, 16, 12)),
     r"multiples of the patch size 8, got H = 16, W = 12"),
    (lambda: PatchEmbedding(16, 8)(torch.zeros(2, 16, 16, 3)), r"C = in_channels = 3, got \(2, 16, 16, 3\)"),
    (lambda: PatchEmbedding(16, 8)(torch.zeros(3, 16, 16)), r"x must be \(N, C, H, W\)"),
    (lambda: FeedForwardNetwork(8, 0), "ffn_dim must be a positive integer"),
    (lambda: FeedForwardNetwork(0, 8), "embed_dim must be a positive integer, got 0"),
    (lambda: FeedForwardNetwork(4, 8)(torch.tensor(1.0)), r"input must be \(\.\.\., E\) .*got \(\)"),
    (lambda: PatchEmbedding(0, 4), "img_size must be a positive integer, got 0"),
    (lambda: PatchEmbedding(8, 4, in_channels=0), "in_channels must be a positive integer, got 0"),
    (lambda: FeedForwardNetwork(8, 16)(torch.zeros(2, 4)), r"E = embed_dim = 8, got \(2, 4\)"),
    (lambda: TransformerEncoderLayer(8, 3), "divisible by num_heads 3"),
    (lambda: TransformerEncoderLayer(8, 2, 16)(torch.zeros(2, 3, 6)),
     r"TransformerEncoderLayer: src must be \(N, \*, E\) with E = input_dim = 8, got src \(2, 3, 6\)"),
    (lambda: TransformerEncoderLayer(8, 2, 16)(torch.zeros(2, 3, 8), torch.ones(3, 2)),
     r"attn_mask must be \(S, T\) = \(3, 3\)"),
])
def test_new_layers_refuse_bad_inputs_clearly(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: MultiHeadAttention(10, 3), "divisible by num_heads 3"),
    (lambda: PositionalEncoding(5), "must be even"),
    (lambda: MultiHeadAttention(4, 2)(torch.zeros(1, 2, 4), torch.zeros(1, 3, 4), torch.zeros(1, 2, 4)),
     "must be"),
    (lambda: MultiHeadAttention(4, 2)(torch.zeros(1, 2, 4), torch.zeros(1, 3, 4), torch.zeros(1, 3, 4),
                                      attn_mask=torch.ones(3, 2)), r"attn_mask must be \(S, T\) = \(2, 3\)"),
    (lambda: PositionalEncoding(4, max_len=3)(torch.zeros(1, 4, 4)), "max_len = 3"),
])
def test_bad_inputs_get_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("num_heads", [0, -2, 2.0, None, True])
def test_num_heads_must_be_a_positive_int(num_heads):
    with pytest.raises(ValueError, match="num_heads must be a positive integer"):
        MultiHeadAttention(8, num_heads)


@pytest.mark.parametrize("make, message", [
    (lambda: MultiHeadAttention(8, 2)(torch.zeros(2, 3, 6), torch.zeros(2, 4, 6), torch.zeros(2, 4, 6)),
     r"query must be \(N, S, E\) with E = embed_dim = 8, got \(2, 3, 6\)"),
    (lambda: MultiHeadAttention(8, 2)(torch.zeros(3, 8), torch.zeros(4, 8), torch.zeros(4, 8)),
     r"query must be \(N, S, E\)"),
    (lambda: MultiHeadAttention(8, 2)(torch.zeros(2, 3, 8), torch.zeros(4, 8), torch.zeros(4, 8)),
     r"key \(4, 8\)"),
    (lambda: MultiHeadAttention(8, 2)(torch.zeros(2, 3, 8), torch.zeros(3, 4, 8), torch.zeros(3, 4, 8)),
     r"key \(3, 4, 8\) and value \(3, 4, 8\) must be \(N, S, E\), \(N, T, E\)"),     # another N
    (lambda: MultiHeadAttention(8, 2)(torch.zeros(2, 3, 8), torch.zeros(2, 4, 6), torch.zeros(2, 4, 6)),
     r"key \(2, 4, 6\) and value \(2, 4, 6\) must be"),                              # another E
    (lambda: TransformerDecoderLayer(8, 2, 16)(torch.zeros(2, 3, 6), torch.zeros(2, 1, 8)),
     r"tgt must be \(N, \*, E\) with E = input_dim = 8.*tgt \(2, 3, 6\)"),
    (lambda: TransformerDecoderLayer(8, 2, 16)(torch.zeros(2, 3, 8), torch.zeros(2, 1, 5)),
     r"memory must be \(N, \*, E\).*memory \(2, 1, 5\)"),
    (lambda: TransformerDecoder(TransformerDecoderLayer(8, 2, 16), 2)(torch.zeros(2, 3, 8),
                                                                      torch.zeros(1, 1, 8)),
     r"memory must be .* the same N"),
])
def test_inputs_of_the_wrong_width_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("mask, rows", [
    (torch.tensor([[1, 0, 0], [0, 0, 0], [1, 1, 1]]), r"\[1\]"),
    (torch.tensor([[True, False, False], [False, False, False], [False, False, False]]), r"\[1, 2\]"),
    (torch.zeros(3, 3), r"\[0, 1, 2\]"),      # torch's float convention (0 = allowed) reads as all blocked
])
def test_a_query_row_with_no_allowed_key_is_refused(mask, rows):
    # Its softmax would be over nothing: a NaN row, silently, in the output and the gradients.
    attn = MultiHeadAttention(8, 2)
    q = torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match=r"attn_mask allows no key for query row\(s\) " + rows +
                       r".*0 \(or False\) blocks"):
        attn(q, q, q, attn_mask=mask)


@pytest.mark.parametrize("make_mask", [
    lambda: torch.tril(torch.ones(4, 4)),                       # the course's (float)
    lambda: torch.tril(torch.ones(4, 4, dtype=torch.bool)),     # CaptioningTransformer's
    lambda: torch.tril(torch.ones(4, 4, dtype=torch.long)),
    lambda: np.tril(np.ones((4, 4))),
])
def test_the_courses_causal_masks_are_accepted(make_mask):
    # Each query sees keys 0..i: the output is finite and each position ignores later keys.
    torch.manual_seed(4)
    attn = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 4, 8)
    mask = make_mask()
    out = attn(x, x, x, attn_mask=mask)
    later = x.clone()
    later[:, 3] += 5
    assert torch.isfinite(out).all()
    assert torch.allclose(attn(later, later, later, attn_mask=mask)[:, :3], out[:, :3])


def test_a_mask_over_no_keys_is_no_error():
    # T = 0 keys: the output is the projection of nothing (no NaN), with or without a mask.
    attn = MultiHeadAttention(4, 2).eval()
    q, kv = torch.randn(1, 2, 4), torch.zeros(1, 0, 4)
    assert torch.equal(attn(q, kv, kv, attn_mask=torch.ones(2, 0)), attn(q, kv, kv))
