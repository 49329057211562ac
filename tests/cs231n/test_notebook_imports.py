"""The course's notebooks import from ``cs231n.*``: those imports must give the toolkit's own
objects, and the notebooks' opening cells must run on them and print the reference numbers."""

import importlib
import textwrap

import numpy as np
import pytest

from deep_learning_suite import (
    batchnorm,
    captioning_rnn,
    captioning_solver,
    cnn_model,
    coco,
    conv_layers,
    data,
    dropout,
    fast_layers,
    fully_connected_net,
    imagenet,
    layer_utils,
    layers,
    neural_net,
    optim,
    plots,
    rnn_layers,
    saved_params,
    trainer,
    utils,
)
from linear_classifiers import features, k_nearest_neighbor, linear_classifier, linear_svm, softmax

# What the assignments' notebooks and files import, and where the toolkit keeps it.
COURSE_NAMES = {
    "cs231n.layers": {
        layers: ["affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss",
                 "svm_loss"],
        batchnorm: ["batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
                    "spatial_batchnorm_forward", "spatial_batchnorm_backward", "layernorm_forward",
                    "layernorm_backward", "spatial_groupnorm_forward", "spatial_groupnorm_backward"],
        dropout: ["dropout_forward", "dropout_backward"],
        conv_layers: ["conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
                      "max_pool_backward_naive"],
    },
    "cs231n.fast_layers": {
        fast_layers: ["conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast",
                      "max_pool_backward_fast"],
    },
    "cs231n.layer_utils": {
        layer_utils: ["affine_relu_forward", "affine_relu_backward", "conv_relu_forward", "conv_relu_backward",
                      "conv_relu_pool_forward", "conv_relu_pool_backward", "conv_bn_relu_forward",
                      "conv_bn_relu_backward"],
        layers: ["affine_forward", "relu_backward"],
    },
    "cs231n.optim": {optim: ["sgd", "sgd_momentum", "rmsprop", "adam"]},
    "cs231n.solver": {trainer: ["Solver"]},
    # load_CIFAR_batch is the one wrapper (float64 images, as the course's); see test_data_utils_shim.
    "cs231n.data_utils": {data: ["load_CIFAR10", "get_CIFAR10_data"],
                          imagenet: ["load_imagenet_val", "load_tiny_imagenet"],
                          saved_params: ["load_models"]},
    "cs231n.gradient_check": {
        utils: ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse"],
    },
    "cs231n.vis_utils": {plots: ["visualize_grid", "vis_grid", "vis_nn"]},
    "cs231n.features": {features: ["extract_features", "rgb2gray", "hog_feature", "color_histogram_hsv"]},
    "cs231n.classifiers": {
        k_nearest_neighbor: ["KNearestNeighbor"],
        linear_classifier: ["LinearClassifier", "LinearSVM", "Softmax"],
        linear_svm: ["svm_loss_naive", "svm_loss_vectorized"],
        softmax: ["softmax_loss_naive", "softmax_loss_vectorized"],
    },
    "cs231n.classifiers.k_nearest_neighbor": {k_nearest_neighbor: ["KNearestNeighbor"]},
    "cs231n.classifiers.linear_svm": {linear_svm: ["svm_loss_naive", "svm_loss_vectorized"]},
    "cs231n.classifiers.softmax": {softmax: ["softmax_loss_naive", "softmax_loss_vectorized"]},
    "cs231n.classifiers.neural_net": {neural_net: ["TwoLayerNet"]},
    "cs231n.classifiers.linear_classifier": {linear_classifier: ["LinearClassifier", "LinearSVM", "Softmax"]},
    "cs231n.classifiers.fc_net": {
        fully_connected_net: ["FullyConnectedNet", "TwoLayerNet"],
        layers: ["affine_forward", "softmax_loss"],
        layer_utils: ["affine_relu_forward", "affine_relu_backward"],
        batchnorm: ["batchnorm_forward", "layernorm_backward"],
        dropout: ["dropout_forward"],
    },
    "cs231n.classifiers.cnn": {
        cnn_model: ["ThreeLayerConvNet"],
        layer_utils: ["conv_relu_pool_forward", "conv_relu_pool_backward"],
        fast_layers: ["conv_forward_fast", "max_pool_backward_fast"],
        layers: ["affine_forward"],
    },
    "cs231n.rnn_layers": {
        rnn_layers: ["rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
                     "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
                     "word_embedding_forward", "word_embedding_backward", "temporal_affine_forward",
                     "temporal_affine_backward", "temporal_softmax_loss"],
    },
    "cs231n.classifiers.rnn": {
        captioning_rnn: ["CaptioningRNN"],
        rnn_layers: ["rnn_forward", "lstm_backward", "temporal_softmax_loss"],
    },
    "cs231n.captioning_solver": {captioning_solver: ["CaptioningSolver"]},
    "cs231n.coco_utils": {coco: ["load_coco_data", "sample_coco_minibatch", "decode_captions"]},
    "cs231n.image_utils": {
        plots: ["image_from_url"],
        imagenet: ["SQUEEZENET_MEAN", "SQUEEZENET_STD", "preprocess_image", "deprocess_image", "load_image"],
    },
}


# The PyTorch notebooks' modules, by the toolkit module's name (imported only where torch is).
TORCH_COURSE_NAMES = {
    "cs231n.net_visualization_pytorch": {
        "net_visualization": ["compute_saliency_maps", "make_fooling_image", "class_visualization_update_step",
                              "create_class_visualization", "preprocess", "deprocess", "rescale",
                              "blur_image", "jitter"],
    },
    "cs231n.style_transfer_pytorch": {
        "style_transfer": ["content_loss", "gram_matrix", "style_loss", "tv_loss", "extract_features",
                           "features_from_img", "style_transfer"],
        "net_visualization": ["preprocess", "deprocess", "rescale"],
        "utils": ["rel_error"],
    },
    "cs231n.simclr.contrastive_loss": {
        "simclr": ["sim", "simclr_loss_naive", "sim_positive_pairs", "compute_sim_matrix",
                   "simclr_loss_vectorized"],
        # The Self_Supervised_Learning notebook never defines rel_error: the course's
        # contrastive_loss.py does, at its end, and its check cells get it from this star import.
        "utils": ["rel_error"],
    },
    "cs231n.simclr.data_utils": {
        "simclr_augment": ["compute_train_transform", "compute_test_transform"],
        "simclr": ["CIFAR10Pair"],
    },
    "cs231n.simclr.utils": {"simclr": ["train", "train_val", "test"]},
    "cs231n.simclr.model": {"simclr_model": ["Model"]},
    "cs231n.gaussian_diffusion": {
        "diffusion": ["GaussianDiffusion", "extract", "linear_beta_schedule", "cosine_beta_schedule",
                      "sigmoid_beta_schedule", "get_beta_schedule"],
    },
    "cs231n.unet": {"unet": ["Unet", "ResnetBlock", "Block", "RMSNorm", "SinusoidalPosEmb", "Upsample",
                             "Downsample"]},
    "cs231n.clip_dino": {
        "clip_dino": ["get_similarity_no_loop", "clip_zero_shot_classifier", "CLIPImageRetriever",
                      "DINOSegmentation", "compute_iou", "create_segmentation_overlay", "DavisDataset"],
    },
    "cs231n.transformer_layers": {
        "transformer_layers": ["PositionalEncoding", "MultiHeadAttention", "FeedForwardNetwork",
                               "TransformerDecoderLayer", "TransformerDecoder", "PatchEmbedding",
                               "TransformerEncoderLayer", "TransformerEncoder"],
    },
    "cs231n.classifiers.transformer": {
        "captioning_transformer": ["CaptioningTransformer"],
        "vit": ["VisionTransformer"],
        "transformer_layers": ["TransformerDecoderLayer", "TransformerDecoder", "TransformerEncoderLayer",
                               "TransformerEncoder"],
    },
    "cs231n.captioning_solver_transformer": {"captioning_transformer": ["CaptioningSolverTransformer"]},
    "cs231n.classification_solver_vit": {"classification_solver_vit": ["ClassificationSolverViT"]},
}

# Modules a course file imports at its top and, having no __all__, hands on through
# `from ... import *`, where a notebook relies on getting them that way: the
# Transformer_Captioning setup cell never imports torch, yet its cells call torch.manual_seed.
# (The other notebooks import what they use themselves, and only these names may come along.)
# cs231n.clip_dino hands on cv2 the same way (CLIP_DINO's video cell calls cv2 unimported);
# OpenCV being optional, that is checked on its own in test_clip_dino_star_import_hands_on_cv2.
COURSE_STAR_MODULES = {
    "cs231n.transformer_layers": {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional",
                                  "math": "math"},
}


def course_names(module_name):
    if module_name in COURSE_NAMES:
        return COURSE_NAMES[module_name]
    pytest.importorskip("torch")
    return {importlib.import_module(f"deep_learning_suite.{home}"): names
            for home, names in TORCH_COURSE_NAMES[module_name].items()}


ALL_COURSE_MODULES = sorted(COURSE_NAMES) + sorted(TORCH_COURSE_NAMES)


@pytest.mark.parametrize("module_name", ALL_COURSE_MODULES)
def test_course_module_gives_the_toolkits_own_objects(module_name):
    names = course_names(module_name)
    shim = importlib.import_module(module_name)
    for home, home_names in names.items():
        for name in home_names:
            assert getattr(shim, name) is getattr(home, name), (module_name, name)


@pytest.mark.parametrize("module_name", ALL_COURSE_MODULES)
def test_star_import_gives_every_name_the_notebooks_use(module_name):
    names = course_names(module_name)
    namespace = {}
    exec(f"from {module_name} import *", namespace)
    for home_names in names.values():
        missing = [n for n in home_names if n not in namespace]
        assert not missing, f"from {module_name} import * lacks {missing}"
    # only the course's names, not the modules' own imports, but for those its notebook takes
    modules = COURSE_STAR_MODULES.get(module_name, {})
    for name, module in modules.items():
        assert namespace.get(name) is importlib.import_module(module), (module_name, name)
    assert not ({"np", "torch", "nn", "F", "math", "tqdm"} - set(modules)) & set(namespace)


def run_cell(source, **names):
    """Run notebook code (course imports only) in a fresh namespace holding ``np`` and ``names``;
    the global RNG is restored after."""
    state = np.random.get_state()
    namespace = {"np": np, **names}
    try:
        exec(textwrap.dedent(source), namespace)
    finally:
        np.random.set_state(state)
    return namespace


def test_fully_connected_nets_notebook_cells():
    # The FullyConnectedNets notebook's initial-loss and gradient check and its Adam check,
    # through the course's imports, with the reference solution's printed numbers.
    ns = run_cell("""
        from cs231n.classifiers.fc_net import *
        from cs231n.gradient_check import eval_numerical_gradient
        from cs231n.optim import adam

        np.random.seed(231)
        N, D, H1, H2, C = 2, 15, 20, 30, 10
        X = np.random.randn(N, D)
        y = np.random.randint(C, size=(N,))
        losses, errors = [], {}
        for reg in [0, 3.14]:
            model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C,
                                      reg=reg, weight_scale=5e-2, dtype=np.float64)
            loss, grads = model.loss(X, y)
            losses.append(loss)
            for name in sorted(grads):
                f = lambda _: model.loss(X, y)[0]
                grad_num = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
                errors[reg, name] = np.max(np.abs(grad_num - grads[name]) /
                                           np.maximum(1e-8, np.abs(grad_num) + np.abs(grads[name])))

        w = np.linspace(-0.4, 0.6, num=20).reshape(4, 5)
        dw = np.linspace(-0.6, 0.4, num=20).reshape(4, 5)
        m = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
        v = np.linspace(0.7, 0.5, num=20).reshape(4, 5)
        config = {'learning_rate': 1e-2, 'm': m, 'v': v, 't': 5}
        next_w, _ = adam(w, dw, config=config)
    """)
    assert ns["losses"] == pytest.approx([2.3004790897684924, 7.052114776533016], abs=1e-12)
    assert len(ns["errors"]) == 12
    # The reference prints W2 at 2.21e-05 (reg 0: a ReLU kink within h of a unit) and the rest
    # at 1e-7 or less.
    assert max(ns["errors"].values()) < 1e-4
    assert ns["next_w"][0, 0] == pytest.approx(-0.40094747, abs=1e-8)


def test_dropout_notebook_gradient_check_cell():
    # The Dropout notebook's check of seeded dropout nets: "relative errors should be around
    # e-6 or less". (The losses differ from the reference's: the toolkit's seed also draws
    # the weights.)
    ns = run_cell("""
        from cs231n.classifiers.fc_net import *
        from cs231n.gradient_check import eval_numerical_gradient

        np.random.seed(231)
        N, D, H1, H2, C = 2, 15, 20, 30, 10
        X = np.random.randn(N, D)
        y = np.random.randint(C, size=(N,))
        errors = {}
        for dropout_keep_ratio in [1, 0.75, 0.5]:
            model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, weight_scale=5e-2,
                                      dtype=np.float64, dropout_keep_ratio=dropout_keep_ratio, seed=123)
            loss, grads = model.loss(X, y)
            for name in sorted(grads):
                f = lambda _: model.loss(X, y)[0]
                grad_num = eval_numerical_gradient(f, model.params[name], verbose=False, h=1e-5)
                errors[dropout_keep_ratio, name] = np.max(
                    np.abs(grad_num - grads[name]) / np.maximum(1e-8, np.abs(grad_num) + np.abs(grads[name])))
    """)
    assert len(ns["errors"]) == 18
    assert max(ns["errors"].values()) < 1e-5


def test_solver_cell_overfits_fifty_images():
    # The notebook's "overfit 50 examples" cell with its suggested weight scale and learning
    # rate, on 50 images of the shipped sample, mean-subtracted on the 0-255 scale as the
    # course's get_CIFAR10_data does.
    s = data.load_sample()
    X = s["X_train"][:50].reshape(50, -1).astype(np.float64)
    X -= X.mean(axis=0)
    small = {"X_train": X, "y_train": s["y_train"][:50], "X_val": X, "y_val": s["y_train"][:50]}
    cell = """
        from cs231n.classifiers.fc_net import *
        from cs231n.solver import Solver

        np.random.seed(231)
        model = FullyConnectedNet([100, 100], input_dim=784, weight_scale=1e-2, dtype=np.float64)
        solver = Solver(model, small_data, print_every=10, num_epochs=20, batch_size=25,
                        update_rule='sgd', optim_config={'learning_rate': 1e-2}, verbose=False)
        solver.train()
    """
    first, again = run_cell(cell, small_data=small), run_cell(cell, small_data=small)
    assert first["solver"].train_acc_history[0] < 0.5
    assert first["solver"].train_acc_history[-1] >= 0.96
    assert first["solver"].loss_history == again["solver"].loss_history  # np.random.seed rules


def test_convolutional_networks_notebook_cells():
    ns = run_cell("""
        from cs231n.classifiers.cnn import *
        from cs231n.layers import *
        from cs231n.fast_layers import *
        from cs231n.vis_utils import visualize_grid

        np.random.seed(231)
        x = np.random.randn(100, 3, 31, 31)
        w = np.random.randn(25, 3, 3, 3)
        b = np.random.randn(25,)
        dout = np.random.randn(100, 25, 16, 16)
        conv_param = {'stride': 2, 'pad': 1}
        out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
        out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
        dx_naive, dw_naive, db_naive = conv_backward_naive(dout, cache_naive)
        dx_fast, dw_fast, db_fast = conv_backward_fast(dout, cache_fast)

        model = ThreeLayerConvNet(num_filters=32, filter_size=7, weight_scale=1e-3)
        X = np.random.randn(5, 3, 32, 32)
        y = np.random.randint(10, size=5)
        loss, grads = model.loss(X, y)
        grid = visualize_grid(model.params['W1'].transpose(0, 2, 3, 1))
    """)
    for naive, fast in (("out_naive", "out_fast"), ("dx_naive", "dx_fast"), ("dw_naive", "dw_fast"),
                        ("db_naive", "db_fast")):
        assert utils.rel_error(ns[naive], ns[fast]) < 1e-10, naive
    assert abs(ns["loss"] - np.log(10)) < 1e-2
    assert ns["grid"].shape == (6 * 7 + 5, 6 * 7 + 5, 3)
    assert ns["grid"].min() == 0 and ns["grid"].max() == 255


def test_assignment_one_cells():
    ns = run_cell("""
        from cs231n.classifiers import KNearestNeighbor, LinearSVM, Softmax
        from cs231n.classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized
        from cs231n.classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized
        from cs231n.gradient_check import grad_check_sparse

        np.random.seed(0)
        X = np.random.randn(40, 11)
        y = np.random.randint(4, size=40)
        W = np.random.randn(11, 4) * 0.0001
        svm = (svm_loss_naive(W, X, y, 5e-6), svm_loss_vectorized(W, X, y, 5e-6))
        soft = (softmax_loss_naive(W, X, y, 5e-6), softmax_loss_vectorized(W, X, y, 5e-6))
        classifier = KNearestNeighbor()
        classifier.train(X, y)
        knn = classifier.predict(X[:5], k=1)
    """)
    for naive, vectorized in (ns["svm"], ns["soft"]):
        assert naive[0] == pytest.approx(vectorized[0], rel=1e-12)
        assert np.allclose(naive[1], vectorized[1], rtol=1e-10, atol=1e-14)
    assert ns["soft"][0][0] == pytest.approx(np.log(4), abs=1e-2)
    assert np.array_equal(ns["knn"], ns["y"][:5])  # each point is its own nearest neighbour


def test_rnn_captioning_notebook_cells():
    # The RNN_Captioning notebook's opening imports and its checks of the layers and the model
    # (the reference prints errors of e-8 to e-10 and loss differences of e-12).
    ns = run_cell("""
        from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
        from cs231n.rnn_layers import *
        from cs231n.captioning_solver import CaptioningSolver
        from cs231n.classifiers.rnn import CaptioningRNN
        from cs231n.coco_utils import load_coco_data, sample_coco_minibatch, decode_captions
        from cs231n.image_utils import image_from_url

        def rel_error(x, y):
            return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))

        np.random.seed(231)
        N, D, T, H = 2, 3, 10, 5
        x = np.random.randn(N, T, D)
        h0 = np.random.randn(N, H)
        Wx = np.random.randn(D, H)
        Wh = np.random.randn(H, H)
        b = np.random.randn(H)
        out, cache = rnn_forward(x, h0, Wx, Wh, b)
        dout = np.random.randn(*out.shape)
        dx, dh0, dWx, dWh, db = rnn_backward(dout, cache)
        fWh = lambda Wh: rnn_forward(x, h0, Wx, Wh, b)[0]
        dWh_error = rel_error(eval_numerical_gradient_array(fWh, Wh, dout), dWh)

        N, D, W, H = 10, 20, 30, 40
        word_to_idx = {'<NULL>': 0, 'cat': 2, 'dog': 3}
        V = len(word_to_idx)
        T = 13
        model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H,
                              cell_type='rnn', dtype=np.float64)
        for k, v in model.params.items():
            model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
        features = np.linspace(-1.5, 0.3, num=(N * D)).reshape(N, D)
        captions = (np.arange(N * T) % V).reshape(N, T)
        loss, grads = model.loss(features, captions)
    """)
    # Wh feeds all 10 steps, so its centred difference is the noisiest: 1.3e-7 on this seed
    # (PyTorch's autograd agrees with the analytic dWh to 1e-10 in test_rnn_layers).
    assert ns["dWh_error"] < 1e-6
    assert abs(ns["loss"] - 9.83235591003) < 1e-10


def test_transformer_captioning_notebook_imports_and_overfit_cell():
    # The Transformer_Captioning notebook's imports (PyTorch modules) and its overfitting cell,
    # on a COCO-format dict written here, at a smaller width so that it runs in seconds.
    torch = pytest.importorskip("torch")
    from deep_learning_suite import captioning_transformer, transformer_layers
    from tests._coco_files import coco_arrays
    # The setup cell as the course writes it: no `import torch`, which the star import supplies.
    ns = run_cell("""
        from cs231n.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array
        from cs231n.transformer_layers import *
        from cs231n.captioning_solver_transformer import CaptioningSolverTransformer
        from cs231n.classifiers.transformer import CaptioningTransformer
        from cs231n.coco_utils import load_coco_data, sample_coco_minibatch, decode_captions
        from cs231n.image_utils import image_from_url

        torch.manual_seed(231)
        attn = MultiHeadAttention(8, num_heads=2)
        data_ = torch.randn(1, 3, 8)
        masked_self_attn_output = attn(query=data_, key=data_, value=data_,
                                       attn_mask=torch.randn(3, 3) < 0.5)
        pos_encoder = PositionalEncoding(6)
        pe_output = pos_encoder(torch.randn(1, 2, 6))

        torch.manual_seed(231)
        np.random.seed(231)
        transformer = CaptioningTransformer(word_to_idx=data['word_to_idx'],
                                            input_dim=data['train_features'].shape[1],
                                            wordvec_dim=64, num_heads=2, num_layers=2, max_length=30,
                                            dim_feedforward=256)
        transformer_solver = CaptioningSolverTransformer(transformer, data, idx_to_word=data['idx_to_word'],
                                                         num_epochs=150, batch_size=25, learning_rate=2e-3,
                                                         verbose=False, print_every=10)
        transformer_solver.train()
        final_loss = transformer_solver.loss_history[-1]
        sample = decode_captions(transformer.sample(data['train_features'][:1], max_length=30),
                                 data['idx_to_word'])
    """, data=coco_arrays())
    assert ns["torch"] is torch and ns["pe_output"].shape == (1, 2, 6)
    assert torch.isfinite(ns["masked_self_attn_output"]).all()
    assert ns["MultiHeadAttention"] is transformer_layers.MultiHeadAttention
    assert ns["PositionalEncoding"] is transformer_layers.PositionalEncoding
    assert ns["CaptioningTransformer"] is captioning_transformer.CaptioningTransformer
    assert ns["final_loss"] < 0.05
    truth = ns["decode_captions"](ns["data"]["train_captions"][0], ns["data"]["idx_to_word"])
    assert "<START> " + ns["sample"][0] == truth


def test_gan_notebook_imports_and_parameter_count_cells():
    pytest.importorskip("torch")
    from deep_learning_suite import gan
    ns = run_cell("""
        import torch
        from cs231n.gan_pytorch import preprocess_img, deprocess_img, rel_error, count_params, ChunkSampler
        from cs231n.gan_pytorch import Flatten, Unflatten, initialize_weights
        from cs231n.gan_pytorch import sample_noise, discriminator, generator, bce_loss
        from cs231n.gan_pytorch import discriminator_loss, generator_loss, get_optimizer, run_a_gan
        from cs231n.gan_pytorch import ls_discriminator_loss, ls_generator_loss
        from cs231n.gan_pytorch import build_dc_classifier, build_dc_generator

        counts = [count_params(discriminator()), count_params(generator(4)),
                  count_params(build_dc_classifier(128)), count_params(build_dc_generator(4))]
        z = sample_noise(3, 4)
    """)
    assert ns["run_a_gan"] is gan.run_a_gan and ns["ls_generator_loss"] is gan.ls_generator_loss
    assert ns["counts"] == [267009, 1858320, 1102721, 6580801]
    assert ns["z"].shape == (3, 4)


def test_network_visualization_notebook_cells(tmp_path):
    # The NetworkVisualization notebook's imports, data cell, saliency and fooling cells, with a
    # small stand-in for the pretrained SqueezeNet (whose weights are not on this machine).
    torch = pytest.importorskip("torch")
    from deep_learning_suite import net_visualization, squeezenet

    rng = np.random.default_rng(0)
    path = tmp_path / "imagenet_val_25.npz"
    np.savez(path, X=rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), y=np.arange(6) % 3,
             label_map=np.array({0: "tench", 1: "goldfish", 2: "great white shark"}, dtype=object))
    torch.manual_seed(0)
    # Left in train mode, as the notebook's torchvision.models.squeezenet1_1(pretrained=True)
    # is: its Dropout(0.5) must be off for the fooling cell's check to hold.
    model = squeezenet.squeezenet1_1(num_classes=3)
    for param in model.parameters():
        param.requires_grad = False
    ns = run_cell(f"""
        import torch
        from cs231n.image_utils import SQUEEZENET_MEAN, SQUEEZENET_STD
        from cs231n.net_visualization_pytorch import *
        from cs231n.data_utils import load_imagenet_val
        X, y, class_names = load_imagenet_val(num=5, path={str(path)!r})
        X_tensor = torch.cat([preprocess(x, size=None) for x in X], dim=0)
        y_tensor = torch.LongTensor(y)
        saliency = compute_saliency_maps(X_tensor, y_tensor, model)
        target_y = int(model(X_tensor[0:1]).argsort(dim=1)[0, -2])  # the runner-up class
        X_fooling = make_fooling_image(X_tensor[0:1], target_y, model, max_iter=200)
        scores = model(X_fooling)
        X_fooling_np = deprocess(X_fooling.clone())
    """, model=model)
    assert ns["class_names"][1] == "goldfish" and ns["X"].shape == (5, 32, 32, 3)
    assert ns["saliency"].shape == (5, 32, 32) and bool((ns["saliency"] >= 0).all())
    assert int(ns["scores"].argmax(1)) == ns["target_y"], "the model is fooled"
    assert not model.training, "compute_saliency_maps puts the model in eval mode, as the course's"
    assert ns["X_fooling_np"].dtype == np.uint8 and ns["X_fooling_np"].shape == (32, 32, 3)
    assert ns["compute_saliency_maps"] is net_visualization.compute_saliency_maps
    assert ns["create_class_visualization"] is net_visualization.create_class_visualization
    assert ns["SQUEEZENET_MEAN"] is imagenet.SQUEEZENET_MEAN


def test_ddpm_and_clip_dino_notebook_cells():
    # The DDPM notebook's imports and its model cells (a small U-Net, the loss, guided sampling),
    # and the CLIP_DINO notebook's with fakes for the pretrained CLIP (not on this machine).
    pytest.importorskip("torch")
    from unittest.mock import patch

    ns = run_cell("""
        import torch
        from cs231n.gaussian_diffusion import GaussianDiffusion
        from cs231n.unet import Unet
        torch.manual_seed(231)
        model = Unet(dim=8, condition_dim=6, dim_mults=(1, 2))
        diffusion = GaussianDiffusion(model, image_size=8, timesteps=10)
        loss = diffusion.p_losses(torch.rand(4, 3, 8, 8), model_kwargs={"text_emb": torch.randn(4, 6)})
        loss.backward()
        model.eval()
        samples = diffusion.sample(batch_size=2, model_kwargs={"text_emb": torch.randn(2, 6), "cfg_scale": 3})
    """)
    assert ns["loss"].item() > 0 and ns["samples"].shape == (2, 3, 8, 8)
    assert float(ns["samples"].min()) >= 0 and float(ns["samples"].max()) <= 1

    class Encoder:
        def encode_text(self, tokens):
            return torch.eye(3)[tokens[:, 0]]

        def encode_image(self, images):
            return torch.eye(3)[images[:, 0, 0, 0].long()]

    import torch

    def tokenize(texts):  # "class k" -> token k
        return torch.tensor([[int(text[-1])] for text in texts])

    with patch("cs231n.clip_dino.clip.tokenize", side_effect=tokenize):
        ns = run_cell("""
            from cs231n.clip_dino import *
            images = [np.full((4, 4, 3), k, dtype=np.uint8) for k in (2, 0, 1)]
            preprocess = lambda image: torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float()
            pred = clip_zero_shot_classifier(encoder, preprocess, images, ["class 0", "class 1", "class 2"], "cpu")
            top = CLIPImageRetriever(encoder, preprocess, images, "cpu").retrieve("class 1", k=1)
        """, encoder=Encoder(), torch=torch)
    assert ns["pred"] == ["class 2", "class 0", "class 1"] and ns["top"] == [2]


def test_clip_dino_star_import_hands_on_cv2(tmp_path):
    # CLIP_DINO's last cell, verbatim, calls cv2 without importing it: the course's clip_dino.py
    # imports cv2 and has no __all__, so `from cs231n.clip_dino import *` hands it on. With
    # OpenCV installed the cell writes its video; without, it says how to install OpenCV
    # rather than failing with NameError: name 'cv2' is not defined.
    pytest.importorskip("torch")
    ns = run_cell("""
        from cs231n.clip_dino import *

        def write_video_from_array(array, output_path, fps=12):
            T, H, W, _ = array.shape
            fourcc = cv2.VideoWriter_fourcc(*'mp4v')
            out = cv2.VideoWriter(output_path, fourcc, fps, (W, H))
            for i in range(T):
                frame = array[i]
                out.write(frame)
            out.release()
            print(f"Video saved to {output_path}")
    """)
    final_viz = np.zeros((3, 16, 32, 3), dtype=np.uint8)
    target = tmp_path / "dino_res.mp4"
    try:
        import cv2
    except ImportError:
        assert "opencv" in repr(ns["cv2"])
        with pytest.raises(ImportError, match="pip install opencv-python"):
            ns["write_video_from_array"](final_viz, str(target))
        assert not hasattr(ns["cv2"], "__wrapped__")  # introspection gets AttributeError, not ImportError
    else:
        # (whether the file is written depends on the codecs this OpenCV build has)
        assert ns["cv2"] is cv2
        ns["write_video_from_array"](final_viz, str(target))


def test_style_transfer_notebook_setup_and_tv_cell(tmp_path):
    # StyleTransfer (2021+): its setup import line, the course's `dtype`, and the image path the
    # loss cells take (preprocess of a PIL image at a given size, .type(dtype), deprocess).
    torch = pytest.importorskip("torch")
    from PIL import Image

    path = tmp_path / "tubingen.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(path)
    ns = run_cell(f"""
        import PIL
        from cs231n.style_transfer_pytorch import preprocess, deprocess, rescale, rel_error, features_from_img
        from cs231n.style_transfer_pytorch import tv_loss, dtype
        img = preprocess(PIL.Image.open({str(path)!r}), size=24).type(dtype)
        t = tv_loss(img, 2.5e-2)
        back = deprocess(img)
        stretched = rescale(img)
    """)
    assert ns["dtype"] is torch.FloatTensor and ns["img"].dtype == torch.float32
    assert ns["img"].shape == (1, 3, 24, 36)
    expected = ((ns["img"][..., 1:, :] - ns["img"][..., :-1, :]) ** 2).sum() + \
        ((ns["img"][..., 1:] - ns["img"][..., :-1]) ** 2).sum()
    assert float(ns["t"]) == pytest.approx(2.5e-2 * float(expected), rel=1e-5)
    assert ns["back"].shape == (24, 36, 3) and ns["back"].dtype == np.uint8
    assert float(ns["stretched"].min()) == 0 and float(ns["stretched"].max()) == 1
