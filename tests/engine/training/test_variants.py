"""The variants table, TrainConfig validation, the input contract and fine-tuning freezing."""
from __future__ import annotations

import numpy as np
import pytest

from engine.training.config import ConfigError, Head, Optimizer, TrainConfig
from engine.training.variants import (
    VARIANTS,
    block_starts,
    build_backbone,
    get_variant,
    install_weights_file,
    keras_cache_dir,
)

# ---------------------------------------------------------------- the table


def test_efficientnet_native_sizes_come_from_one_table():
    sizes = [VARIANTS[f"B{i}"].native_size_px for i in range(8)]
    assert sizes == [224, 240, 260, 300, 380, 456, 528, 600]
    parameters = [VARIANTS[f"B{i}"].parameters for i in range(8)]
    assert parameters == sorted(parameters) and parameters[0] == 4_049_571


def test_comparison_backbones_are_named_with_their_alpha():
    names = set(VARIANTS)
    assert {"MobileNetV2-0.35", "MobileNetV2-0.5", "MobileNetV2-1.0", "MobileNetV2-1.4",
            "MobileNet-0.25", "MobileNet-1.0", "InceptionV3", "Xception"} <= names


@pytest.mark.parametrize("name", ["MobileNet-0.25", "MobileNetV2-0.35"])
def test_parameter_counts_match_the_built_backbone(name):
    spec = get_variant(name)
    assert build_backbone(spec, 32, None).count_params() == spec.parameters


def test_keras_weights_file_names_are_the_ones_keras_downloads():
    assert VARIANTS["B3"].keras_weights_file() == "efficientnetb3_notop.h5"
    assert (VARIANTS["MobileNetV2-0.5"].keras_weights_file()
            == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5")
    assert VARIANTS["MobileNetV2-1.0"].keras_weights_file(160).endswith("_1.0_160_no_top.h5")
    assert VARIANTS["MobileNet-0.25"].keras_weights_file() == "mobilenet_2_5_224_tf_no_top.h5"
    assert VARIANTS["MobileNet-0.25"].keras_weights_file(300) == "mobilenet_2_5_224_tf_no_top.h5"


def test_unknown_variant_lists_the_valid_names():
    with pytest.raises(ConfigError, match="B0, B1"):
        get_variant("B9")


def test_install_weights_file_copies_under_the_expected_name(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    source = tmp_path / "downloaded.h5"
    source.write_bytes(b"weights")
    target = install_weights_file(source, "MobileNetV2-0.5")
    assert target == keras_cache_dir() / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
    assert target.read_bytes() == b"weights" and source.is_file()


# ---------------------------------------------------------------- TrainConfig


def test_config_defaults_follow_the_seed_and_round_trip():
    config = TrainConfig()
    assert (config.variant, config.optimizer, config.learning_rate, config.patience,
            config.stop_patience, config.threshold, config.factor, config.dwell) == \
        ("B0", Optimizer.ADAM, 1e-2, 1, 6, 0.9, 0.5, True)
    # phase 1: the simple head until validation loss stops improving (epochs is the cap)
    assert (config.head, config.dropout, config.epochs, config.head_patience) == \
        (Head.SIMPLE, 0.2, 50, 10)
    assert config.effective_image_size_px == 224
    data = config.to_dict()
    assert data["head"] == "simple" and TrainConfig.from_dict(data) == config
    assert TrainConfig.from_dict({**data, "class_names": ["a", "b"]}) == config


@pytest.mark.parametrize("changes, words", [
    ({"epochs": -1}, ["epochs", "0 to 1000", "-1"]),
    ({"batch_size": 0}, ["batch_size", "1 to 1024"]),
    ({"factor": 1.0}, ["factor", "1.0"]),
    ({"learning_rate": 0}, ["learning_rate"]),
    ({"threshold": 1.5}, ["threshold", "1.5"]),
    ({"image_size_px": 16}, ["image_size_px", "32 to 1024", "16"]),
    ({"optimizer": "sgd"}, ["optimizer", "adamax, adam, rmsprop", "sgd"]),
    ({"head": "fancy"}, ["head", "seed, simple"]),
    ({"variant": "B8"}, ["variant", "B8"]),
    ({"weights": "/nowhere/file.h5"}, ["weights", "/nowhere/file.h5", "does not exist"]),
    ({"epochs": 0, "fine_tune_epochs": 0}, ["nothing would be trained"]),
])
def test_config_errors_name_field_range_and_value(changes, words):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**changes)
    for word in words:
        assert word in caught.value.user_message


def test_config_accepts_strings_for_choices_and_resolves_weights_paths(tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"x")
    config = TrainConfig(head="SIMPLE", weights=str(weights), image_size_px=96)
    assert config.head == Head.SIMPLE and config.weights_kind == "file"
    assert config.effective_fine_tune_learning_rate == pytest.approx(1e-4)
    assert TrainConfig(weights="None").weights == "none"


# ---------------------------------------------------------------- input contract


def _layer_output(model, layer_name, images):
    import keras

    probe = keras.Model(model.inputs, model.get_layer(layer_name).output)
    return np.asarray(probe.predict(images, verbose=0))


def test_pipeline_feeds_0_255_and_efficientnet_rescales_exactly_once(tmp_path):
    """keras-io #1549 / tensorflow #48412: dividing by 255 before EfficientNet gives chance
    accuracy. The pipeline's batches are 0..255 and EfficientNet's own Rescaling brings them
    to 0..1 -- once."""
    from PIL import Image

    from engine.training.config import TrainConfig
    from engine.ingest.imaging import decode_for_model
    from engine.training.input_pipeline import image_batches
    from engine.training.layers import assemble_model

    bright = np.full((40, 40, 3), 250, dtype=np.uint8)
    Image.fromarray(bright).save(tmp_path / "bright.png")
    target = tmp_path / "bright.u8"
    target.write_bytes(decode_for_model(tmp_path / "bright.png", 32).tobytes())
    batch = image_batches([str(target)], None, 32, 1)[0]
    assert batch.dtype == np.uint8 and int(batch.max()) == 250
    studio = assemble_model(get_variant("B0"), TrainConfig(weights="none", image_size_px=32), 2,
                            "none")
    # Keras numbers auto-named layers per process (rescaling, rescaling_16, ...): find the
    # layer by type, so the test does not depend on which tests ran before it.
    rescalings = [layer.name for layer in studio.model.layers
                  if type(layer).__name__ == "Rescaling"]
    assert len(rescalings) == 1, rescalings
    rescaled = _layer_output(studio.model, rescalings[0], batch)
    assert rescaled.max() == pytest.approx(250 / 255, abs=1e-3)


def test_tf_style_backbones_get_their_preprocessing_inside_the_model():
    from engine.training.config import TrainConfig
    from engine.training.layers import assemble_model

    studio = assemble_model(get_variant("MobileNetV2-0.35"),
                            TrainConfig(variant="MobileNetV2-0.35", weights="none",
                                        image_size_px=32), 2, "none")
    images = np.stack([np.zeros((32, 32, 3)), np.full((32, 32, 3), 255.0)]).astype("float32")
    scaled = _layer_output(studio.model, "preprocess", images)
    assert scaled[0].min() == pytest.approx(-1.0) and scaled[1].max() == pytest.approx(1.0)
    assert not any(type(layer).__name__ == "Lambda" for layer in studio.model.layers)


# ---------------------------------------------------------------- fine-tuning freezing


@pytest.mark.parametrize("name", ["B0", "MobileNetV2-0.35", "MobileNet-0.25"])
def test_blocks_are_found_bottom_to_top(name):
    spec = get_variant(name)
    backbone = build_backbone(spec, 32, None)
    starts = block_starts(spec, backbone)
    assert len(starts) >= 13 and starts == sorted(set(starts))


def _fit_and_changed_layers(studio, steps=2):
    import keras

    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in studio.backbone.layers}
    studio.model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = np.eye(2, dtype="float32")[rng.integers(0, 2, 8)]
    studio.model.fit(images, labels, epochs=steps, batch_size=4, verbose=0)
    return {layer.name for layer in studio.backbone.layers
            if any(not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights()))}


def test_fine_tuning_trains_the_top_blocks_and_keeps_batchnorm_frozen():
    import keras

    from engine.training.config import TrainConfig
    from engine.training.layers import assemble_model, unfreeze_top_blocks

    spec = get_variant("B0")
    config = TrainConfig(variant=spec.name, weights="none", image_size_px=32, head="simple")
    studio = assemble_model(spec, config, 2, "none")
    count = unfreeze_top_blocks(studio, spec, 1)
    batch_norms = [layer for layer in studio.backbone.layers
                   if isinstance(layer, keras.layers.BatchNormalization)]
    assert batch_norms and not any(layer.trainable for layer in batch_norms)
    trainable = {layer.name for layer in studio.backbone.layers if layer.trainable and layer.weights}
    assert count == len(trainable)
    assert trainable == {"block7a_expand_conv", "block7a_dwconv", "block7a_se_reduce",
                         "block7a_se_expand", "block7a_project_conv", "top_conv"}
    # One real training step: exactly the unfrozen layers move; every BatchNormalization
    # (weights and moving statistics) and every lower block stays as it was.
    assert _fit_and_changed_layers(studio) == trainable


def test_from_scratch_fine_tuning_lets_batchnorm_learn():
    import keras

    from engine.training.config import TrainConfig
    from engine.training.layers import assemble_model, unfreeze_top_blocks

    spec = get_variant("MobileNet-0.25")
    config = TrainConfig(variant=spec.name, weights="none", image_size_px=32, head="simple")
    studio = assemble_model(spec, config, 2, "none")
    unfreeze_top_blocks(studio, spec, 0, freeze_batch_norm=False)
    changed = _fit_and_changed_layers(studio)
    assert any(isinstance(studio.backbone.get_layer(name), keras.layers.BatchNormalization)
               for name in changed)


def test_unfreeze_zero_blocks_means_all_but_batchnorm():
    import keras

    from engine.training.config import TrainConfig
    from engine.training.layers import assemble_model, unfreeze_top_blocks

    spec = get_variant("MobileNet-0.25")
    studio = assemble_model(spec, TrainConfig(variant=spec.name, weights="none",
                                              image_size_px=32), 2, "none")
    unfreeze_top_blocks(studio, spec, 0)
    for layer in studio.backbone.layers:
        if layer.weights:
            assert layer.trainable != isinstance(layer, keras.layers.BatchNormalization)


def test_the_weights_source_probe_answers_true_only_when_something_answers():
    import http.server
    import socket
    import threading

    from engine.training.variants import weights_source_reachable

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert weights_source_reachable(f"http://127.0.0.1:{port}/")
        assert weights_source_reachable(f"http://127.0.0.1:{port}/no-such-file")  # 404 answers
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    assert not weights_source_reachable(f"http://127.0.0.1:{closed}/", timeout_s=1)
    assert not weights_source_reachable("http://no-such-host.invalid/", timeout_s=1)
