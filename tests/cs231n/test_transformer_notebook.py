"""``Transformer_Captioning.ipynb`` (CS231n 2025, assignment 3) through the course's imports.

The check cells below are the notebook's own code (comments, plotting and Colab lines left
out), with the expected arrays it prints against: the course's published reference data,
from the revision of the 2025 notebook whose checks call ``.eval()`` first (stored in
``MuQY1818/cs231n-2026-zh``, ``assignment3/Transformer_Captioning.ipynb``). An earlier
revision (``youheng00110/cs231n-documents-2025``) ran the same checks in training mode, so its
numbers hold dropout masks drawn by the course's PyTorch build, which no other build repeats.
Each assert holds a check to the error the notebook says to expect.

The COCO cells (loading, overfitting, sampling) are replayed in test_notebook_imports.py on a
stand-in COCO folder. The ViT training cells need torchvision's CIFAR-10 download: here they
run on stand-in tensors of CIFAR-10's shape, and the notebook's accuracy target is checked
only where the real data and a GPU are at hand.
"""

import importlib
import os
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deep_learning_suite import captioning_transformer, classification_solver_vit  # noqa: E402
from deep_learning_suite import transformer_layers, vit  # noqa: E402

COURSE_NAMES = {
    "cs231n.transformer_layers": (transformer_layers, [
        "PositionalEncoding", "MultiHeadAttention", "FeedForwardNetwork", "TransformerDecoderLayer",
        "PatchEmbedding", "TransformerEncoderLayer"]),
    "cs231n.classifiers.transformer": (captioning_transformer, ["CaptioningTransformer"]),
    "cs231n.classification_solver_vit": (classification_solver_vit, ["ClassificationSolverViT"]),
}


@pytest.mark.parametrize("module_name", sorted(COURSE_NAMES))
def test_course_modules_give_the_toolkits_own_objects(module_name):
    home, names = COURSE_NAMES[module_name]
    shim = importlib.import_module(module_name)
    namespace = {}
    exec(f"from {module_name} import *", namespace)
    for name in names:
        assert getattr(shim, name) is getattr(home, name), name
        assert namespace[name] is getattr(home, name), name


def test_the_vision_transformer_and_encoder_come_from_the_classifiers_module():
    shim = importlib.import_module("cs231n.classifiers.transformer")
    assert shim.VisionTransformer is vit.VisionTransformer
    assert shim.TransformerEncoder is transformer_layers.TransformerEncoder


class Notebook:
    """Runs cells in one namespace, as a kernel does (the fixture restores the global RNGs)."""

    def __init__(self):
        self.ns = {}

    def run(self, source):
        exec(textwrap.dedent(source), self.ns)
        return self.ns


@pytest.fixture
def notebook(torch_one_thread):
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    nb = Notebook()
    try:
        # The setup cell, as the course writes it: no `import torch`, which the star import of
        # cs231n.transformer_layers supplies.
        nb.run("""
            import time, os, json
            import numpy as np

            from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
            from cs231n.transformer_layers import *
            from cs231n.captioning_solver_transformer import CaptioningSolverTransformer
            from cs231n.classifiers.transformer import CaptioningTransformer
            from cs231n.coco_utils import load_coco_data, sample_coco_minibatch, decode_captions
            from cs231n.image_utils import image_from_url

            def rel_error(x, y):
                \"\"\" returns relative error \"\"\"
                return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))
        """)
        yield nb
    finally:
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


def test_multihead_attention_cell(notebook):
    ns = notebook.run("""
        torch.manual_seed(231)

        batch_size = 1
        sequence_length = 3
        embed_dim = 8
        attn = MultiHeadAttention(embed_dim, num_heads=2)
        attn.eval()

        data = torch.randn(batch_size, sequence_length, embed_dim)
        self_attn_output = attn(query=data, key=data, value=data)

        mask = torch.randn(sequence_length, sequence_length) < 0.5
        masked_self_attn_output = attn(query=data, key=data, value=data, attn_mask=mask)

        other_data = torch.randn(batch_size, sequence_length, embed_dim)
        attn_output = attn(query=data, key=other_data, value=other_data)

        expected_self_attn_output = np.asarray([[
            [-0.1030,  0.2090,  0.7481, -0.4116, -0.2772,  0.2357, -0.2740, -0.2798],
            [-0.1794,  0.1637,  0.6930, -0.3435, -0.2300,  0.2457, -0.2504, -0.2323],
            [-0.1861,  0.1567,  0.6677, -0.3078, -0.2731,  0.2302, -0.2714, -0.2082]]])

        expected_masked_self_attn_output = np.asarray([[
            [-0.1209,  0.1806,  0.8056, -0.4654, -0.2262,  0.2552, -0.2544, -0.2812],
            [-0.2374,  0.1183,  0.7423, -0.3777, -0.1460,  0.2716, -0.2213, -0.2077],
            [-0.0851,  0.2423,  0.7941, -0.3778, -0.4924,  0.1512, -0.4241, -0.1740]]])

        expected_attn_output = np.asarray([[
            [-0.1965,  0.0702,  0.5227, -0.1388, -0.3530,  0.2163, -0.2643, -0.1902],
            [-0.3592, -0.0899,  0.5836,  0.0029, -0.3643,  0.2667, -0.1973, -0.1698],
            [-0.3795,  0.0433,  0.5634, -0.0749, -0.4379,  0.2714, -0.2207, -0.1980]]])

        self_attn_error = rel_error(expected_self_attn_output, self_attn_output.detach().numpy())
        masked_error = rel_error(expected_masked_self_attn_output, masked_self_attn_output.detach().numpy())
        attn_error = rel_error(expected_attn_output, attn_output.detach().numpy())
    """)
    # "less than 7e-3": the references are printed to 4 decimals, and 0.0029 carries the most.
    for name in ("self_attn_error", "masked_error", "attn_error"):
        assert ns[name] < 7e-3, name


def test_positional_encoding_cell(notebook):
    ns = notebook.run("""
        torch.manual_seed(231)

        batch_size = 1
        sequence_length = 2
        embed_dim = 6
        data = torch.randn(batch_size, sequence_length, embed_dim)

        pos_encoder = PositionalEncoding(embed_dim)
        pos_encoder.eval()
        output = pos_encoder(data)

        expected_pe_output = np.asarray([[[-1.1106,  1.0014,  1.5280, -0.0778, -0.6964,  1.1455],
                                          [ 0.8125, -0.4303,  0.4981,  0.7320,  1.1380,  1.5331]]])
        pe_error = rel_error(expected_pe_output, output.detach().numpy())
    """)
    assert ns["pe_error"] < 1e-3


def test_decoder_layer_cell(notebook):
    # The 2025 feed-forward block is GELU: with ReLU this error was 0.64.
    ns = notebook.run("""
        torch.manual_seed(231)
        np.random.seed(231)

        N, T, TM, D = 1, 4, 5, 12

        decoder_layer = TransformerDecoderLayer(D, 2, 4*D)
        decoder_layer.eval()
        tgt = torch.randn(N, T, D)
        memory = torch.randn(N, TM, D)
        tgt_mask = torch.randn(T, T) < 0.5

        output = decoder_layer(tgt, memory, tgt_mask)

        expected_output = np.asarray([
            [[ 0.27005595, -0.21056601,  0.63376445, -0.35391954,  0.60071295,
              -1.7566615,  -0.1314159,  -1.7659538,  -0.5575517,   0.680143,
               1.8622686,   0.7291234],
             [-0.6080135,   0.4421802,  -0.07590749, -0.12093157,  0.94722354,
              -1.0223433,   0.47332686, -1.3958666,   2.1890075,  -1.0380646,
               0.9437816,  -0.7343922],
             [-0.89690155,  0.60447216,  0.10688882,  0.03492759,  1.8388084,
              -0.9772293,   0.7621334,  -0.668234,    1.3260399,  -1.8417019,
               0.21718435, -0.506388],
             [-0.70961505, -0.02918372, -0.39894593, -0.8069395,   0.04967685,
               0.29345992,  0.7871747,  -1.3172938,   1.4744806,   1.2633642,
               1.1611108,  -1.767289]]
        ])
        decoder_error = rel_error(expected_output, output.detach().numpy())
    """)
    assert ns["decoder_error"] < 1e-6


def test_captioning_transformer_cell(notebook):
    # Needs both the GELU block and the course's init, which draws the <NULL> embedding row
    # like the others (zeroing it gave 0.03).
    ns = notebook.run("""
        torch.manual_seed(231)
        np.random.seed(231)

        N, D, W = 4, 20, 30
        word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
        V = len(word_to_idx)
        T = 3

        transformer = CaptioningTransformer(
            word_to_idx,
            input_dim=D,
            wordvec_dim=W,
            num_heads=2,
            num_layers=2,
            max_length=30
        )
        transformer.eval()

        features = torch.randn(N, D)
        captions = torch.randint(0, V, (N, T))

        scores = transformer(features, captions)

        expected_scores = np.asarray([
            [[ 0.62165695, -0.6203744,  -1.116114  ],
             [ 0.6641097,  -0.60309553, -1.3479083 ],
             [ 0.62117404, -0.79205745, -1.1095243 ]],
            [[ 0.62160987, -0.6214724,  -1.1171186 ],
             [ 0.6093992,  -0.61166143, -1.3365762 ],
             [ 0.62108713, -0.79322916, -1.1104958 ]],
            [[ 0.6406587,  -0.57419956, -1.1300566 ],
             [ 0.6075228,  -0.60872054, -1.3372457 ],
             [ 0.6471472,  -0.8270494,  -1.1064028 ]],
            [[ 0.64029807, -0.5755552,  -1.1284486 ],
             [ 0.60708034, -0.6099963,  -1.3356377 ],
             [ 0.59367496, -0.8346836,  -1.0914496 ]]
        ])

        scores_error = rel_error(expected_scores, scores.detach().numpy())
    """)
    assert ns["scores_error"] < 1e-5


def test_patch_embedding_cell(notebook):
    ns = notebook.run("""
        from cs231n.transformer_layers import PatchEmbedding

        torch.manual_seed(231)
        np.random.seed(231)

        N = 2
        HW = 16
        PS = 8
        D = 8

        patch_embedding = PatchEmbedding(
            img_size=HW,
            patch_size=PS,
            embed_dim=D
        )

        x = torch.randn(N, 3, HW, HW)
        output = patch_embedding(x)

        expected_output = np.asarray([
                [[-0.6312704 ,  0.02531429,  0.6112642 , -0.49089882,
                  0.01412961, -0.6959372 , -0.32862484, -0.45402682],
                [ 0.18816411, -0.08142513, -0.9829535 , -0.23975623,
                 -0.23109074,  0.97950286, -0.40997326,  0.7457837 ],
                [ 0.01810865,  0.15780598, -0.91804236,  0.36185235,
                  0.8379501 ,  1.0191797 , -0.29667392,  0.20322265],
                [-0.18697818, -0.45137224, -0.40339014, -1.4381214 ,
                 -0.43450755,  0.7651071 , -0.83683825, -0.16360264]],

               [[-0.39786366,  0.16201034, -0.19008337, -1.0602452 ,
                 -0.28693503,  0.09791763,  0.26614824,  0.41781986],
                [ 0.35146567, -0.4469593 , -0.1841726 ,  0.45757473,
                 -0.61304873, -0.29104248, -0.16124889, -0.14987172],
                [-0.2996967 ,  0.27353522, -0.09929767,  0.01973832,
                 -1.2312065 , -0.6374332 , -0.22963578,  0.55696607],
                [-0.93818814,  0.02465284, -0.21117875,  1.1860403 ,
                 -0.06137538, -0.21062079, -0.094347  ,  0.50032747]]])

        patch_error = rel_error(expected_output, output.detach().numpy())
    """)
    assert ns["patch_error"] < 1e-4


def test_encoder_layer_cell(notebook):
    ns = notebook.run("""
        torch.manual_seed(231)
        np.random.seed(231)

        from cs231n.transformer_layers import TransformerEncoderLayer

        N, T, TM, D = 1, 4, 5, 12

        encoder_layer = TransformerEncoderLayer(D, 2, 4*D)
        encoder_layer.eval()
        x = torch.randn(N, T, D)
        x_mask = torch.randn(T, T) < 0.5

        output = encoder_layer(x, x_mask)

        expected_output = np.asarray([
            [[-0.48887438, -0.16470742,  0.7249629,  -1.0907345,   1.5764195,
               0.17484017,  0.8643941,  -0.5209561,  -1.6651545,  -1.1943513,
               1.4809005,   0.30326116],
             [-0.14663944,  1.052812,   -0.96227,    -0.20350897, -2.1478589,
               1.2637341,   0.04015125, -0.945255,    1.408903,   -0.43051198,
               0.37110543,  0.69933903],
             [ 0.08718029,  0.91050833, -1.208469,    1.1440394,  -1.9794976,
              -0.38342738, -0.47407156, -0.17345548,  0.11738186,  1.9534125,
               0.3525986,  -0.3461999],
             [-0.81389004,  0.76213264, -0.7094313,  -1.5332246,   1.3837544,
               0.4091982,   0.6569406,   0.7305365,  -1.197077,   -1.3698943,
               0.58292854,  1.0980265]]
        ])

        encoder_error = rel_error(expected_output, output.detach().numpy())
    """)
    assert ns["encoder_error"] < 1e-6


def test_vision_transformer_cell(notebook):
    ns = notebook.run("""
        torch.manual_seed(231)
        np.random.seed(231)
        from cs231n.classifiers.transformer import VisionTransformer

        imgs = torch.randn(3, 3, 32, 32)
        transformer = VisionTransformer()
        transformer.eval()

        scores = transformer(imgs)

        expected_scores = np.asarray(
            [[-0.15802915,  0.15734261, -0.06002094, -0.1860142,  -0.09376919,
              -0.08837911,  0.16224845,  0.0168601,   0.20606893,  0.13079852],
             [-0.12838936,  0.20798579, -0.0620573,  -0.11705838, -0.14088857,
              -0.11387511,  0.18839046,  0.03078492,  0.17386372,  0.06414902],
             [-0.09435399,  0.20495278, -0.03362986, -0.12232997, -0.15535004,
              -0.10380758,  0.21114832,  0.03481449,  0.18798208,  0.12231653]])

        vit_error = rel_error(expected_scores, scores.detach().numpy())
    """)
    # The notebook says "less than 1e-6". Six float32 layers here land 6e-8 from the printed
    # 0.0168601, 1.7e-6 relative, while the same model in float64 is within 3e-7 of every
    # reference: the function is the course's, and the gap is float32 rounding, which differs
    # between kernels and machines.
    assert ns["vit_error"] < 5e-6
    scores64 = ns["transformer"].double()(ns["imgs"].double()).detach().numpy()
    assert ns["rel_error"](ns["expected_scores"], scores64) < 1e-6


def _cifar_like(n, seed):
    # Stand-in for torchvision's CIFAR10(transform=ToTensor()): (3, 32, 32) images in [0, 1]
    # and labels 0..9; the real set needs a download.
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.TensorDataset(torch.rand(n, 3, 32, 32, generator=g),
                                          torch.randint(0, 10, (n,), generator=g))


def test_overfit_one_batch_cell(notebook):
    # The notebook asks to tune the learning rate and weight decay for this cell; on 16
    # noise images (rather than a CIFAR-10 batch of 64, to keep it to seconds) 1e-3 does it.
    notebook.ns.update(DataLoader=torch.utils.data.DataLoader, train_data=_cifar_like(16, seed=0))
    ns = notebook.run("""
        from cs231n.classifiers.transformer import VisionTransformer
        torch.manual_seed(231)

        learning_rate = 1e-3
        weight_decay = 1.e-4

        batch = next(iter(DataLoader(train_data, batch_size=64, shuffle=False)))
        model = VisionTransformer(dropout=0.0)
        loss_criterion = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
        model.train()

        epochs = 100
        for epoch in range(epochs):
            imgs, target = batch
            out = model(imgs)
            loss = loss_criterion(out, target)

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            top1 = (out.argmax(-1) == target).float().mean().item()
    """)
    assert ns["top1"] == 1.0         # "you should get perfect 1.00 accuracy"


_SOLVER_CELL = """
    from cs231n.classification_solver_vit import ClassificationSolverViT
    from cs231n.classifiers.transformer import VisionTransformer

    learning_rate = 1e-4
    weight_decay = 0.0
    batch_size = 64
    model = VisionTransformer()

    solver = ClassificationSolverViT(
        train_data=train_data,
        test_data=test_data,
        model=model,
        num_epochs = 2,
        learning_rate = learning_rate,
        weight_decay = weight_decay,
        batch_size = batch_size,
    )

    solver.train('cuda' if torch.cuda.is_available() else 'cpu')
    best_test_acc = solver.results['best_test_acc']
"""


def test_solver_cell_on_stand_in_data(notebook):
    notebook.ns.update(train_data=_cifar_like(96, seed=1), test_data=_cifar_like(40, seed=2))
    torch.manual_seed(231)
    ns = notebook.run(_SOLVER_CELL)
    results = ns["solver"].results
    assert [len(results[k]) for k in ("train_loss", "train_acc@1", "test_loss", "test_acc@1")] == [2] * 4
    assert 0.0 <= ns["best_test_acc"] <= 1.0 and ns["best_test_acc"] == max(results["test_acc@1"])
    # accuracies are fractions of the 40 test images
    assert all(abs(a * 40 - round(a * 40)) < 1e-9 for a in results["test_acc@1"])


def test_solver_cell_reaches_the_notebooks_target_on_cifar10(notebook):
    # The notebook's goal: 0.45 test accuracy after 2 epochs. Needs torchvision, the CIFAR-10
    # download (here: a cifar-10-batches-py folder named by $CIFAR10_DIR) and a GPU.
    datasets = pytest.importorskip("torchvision.datasets", reason="needs torchvision for CIFAR10")
    transforms = pytest.importorskip("torchvision.transforms", reason="needs torchvision for CIFAR10")
    folder = os.environ.get("CIFAR10_DIR")
    if not folder or not os.path.isdir(folder):
        pytest.skip("needs the CIFAR-10 python batches (set CIFAR10_DIR); not available offline")
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU: 2 epochs of CIFAR-10 take too long on a CPU for a test")
    root = os.path.dirname(os.path.abspath(folder))
    notebook.ns.update(
        train_data=datasets.CIFAR10(root=root, train=True, transform=transforms.ToTensor()),
        test_data=datasets.CIFAR10(root=root, train=False, transform=transforms.ToTensor()))
    torch.manual_seed(231)
    ns = notebook.run(_SOLVER_CELL.replace("learning_rate = 1e-4", "learning_rate = 1e-3")
                      .replace("model = VisionTransformer()", "model = VisionTransformer(dropout=0.0)"))
    assert ns["best_test_acc"] >= 0.45
