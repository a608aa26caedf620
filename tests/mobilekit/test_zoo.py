"""A small version of ``mobilekit zoo``: one network, one epoch, one seed, the whole table with its
comparisons; the pair tables against the zoo's rows and the paper claims."""
import json

import numpy as np
import pytest

from keras_layers.reparam import RepVGGBlock
from mobilekit.paper_claims import CLAIMS
from mobilekit.seeded import Pair
from mobilekit.zoo import (COMPRESSIONS, LARGE_ZOO, LATENCY_PAIRS, ZOO, ZOO_PAIRS, Compression, ZooEntry, deploy_form,
                           run_zoo)
from models.data import load_digits_data
from models.profile import profile
from models.registry import architecture, build, build_model
from models.repvgg import Stage, repvgg
from models.train import with_preprocessing
from tflite.validation import validate


def test_every_zoo_entry_names_a_registered_architecture_and_its_arguments():
    entries = ZOO + LARGE_ZOO
    for entry in entries:
        assert set(entry.kwargs) <= set(architecture(entry.arch, "classify").arguments), entry.label
    assert len({entry.label for entry in entries}) == len(entries)
    assert {entry.compression.kind for entry in entries if entry.compression} <= set(COMPRESSIONS)


def test_zoo_pairs_name_zoo_rows_and_paper_claims():
    labels = {entry.label for entry in ZOO}
    for pair in ZOO_PAIRS + LATENCY_PAIRS:
        assert {pair.method, pair.baseline} <= labels and pair.claim in (None, *CLAIMS), pair
    claimed = {pair.claim for pair in ZOO_PAIRS + LATENCY_PAIRS} - {None}
    assert claimed == {"wht", "ffconv", "threshnet_error", "qsfm", "threshnet_time"}


@pytest.mark.e2e
def test_zoo_table_and_plot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    entries = (ZooEntry("tiny", "mobilenet_v2", {"alpha": 0.35}),
               ZooEntry("tiny-ffconv", "mobilenet_v2", {"alpha": 0.35}, Compression("ffconv", 0.25)))
    messages = []
    rows = run_zoo(name="z", entries=entries, image_size=32, epochs=1, seeds=(0,), runs=4,
                   pairs=(Pair("tiny-ffconv", "tiny", "ffconv"), Pair("tiny", "absent")),
                   latency_pairs=(Pair("tiny-ffconv", "tiny", "threshnet_time"),), progress=messages.append)
    row, factorized = rows
    assert sum("training" in message for message in messages) == 1  # the compressed row reuses the training
    assert factorized["train_s"] == row["train_s"] and factorized["macs"] < row["macs"]
    untrained = build_model({"arch": "mobilenet_v2", "image_size": 32, "classes": 10, "alpha": 0.35})
    assert row["model"] == "tiny" and row["params"] == 423018 and row["macs"] == profile(untrained)["macs"]
    assert row["fp32_accuracy"] == row["keras_accuracy"]
    assert row["int8_bytes"] < row["fp32_bytes"]
    # the table's int8 accuracy is the file's, recomputed here on the same test split
    test = load_digits_data(32, seed=0).test
    int8_file = tmp_path / "runs" / "z" / "tiny" / "model_int8.tflite"
    assert row["int8_accuracy"] == validate(int8_file.read_bytes(), untrained, *test)["tflite_accuracy"]
    report = json.loads((tmp_path / "runs" / "z" / "report.json").read_text())
    assert {b["model"]: b["median_ms"] for b in report["bench"]}[str(int8_file.relative_to(tmp_path))] == \
        row["int8_ms"]
    assert report["zoo"] == rows and report["config"]["epochs"] == 1 and report["config"]["image_size"] == 32
    assert report["config"]["seeds"] == [0] and report["statistics"]["test_images"] == len(test.labels) == 270
    assert all("latencies_ms" not in timing for timing in report["bench"])
    for each in rows:  # one Keras accuracy per seed: the first seed's exported model's
        assert each["accuracies"] == [each["accuracy_mean"]] and each["accuracy_std"] == 0.0
        assert each["accuracies"][0] == pytest.approx(each["keras_accuracy"], abs=1 / 270)
    # the comparison from the rows: difference of the per-seed accuracies, inside its interval, the claim's verdict
    [comparison] = report["comparisons"]  # the pair with a model that did not run is left out
    assert (comparison["method"], comparison["baseline"], comparison["claim"]) == ("tiny-ffconv", "tiny", "ffconv")
    assert comparison["difference_points"] == pytest.approx(100 * (factorized["accuracy_mean"] - row["accuracy_mean"]))
    assert comparison["low_points"] <= comparison["difference_points"] <= comparison["high_points"]
    assert comparison["verdict"] == CLAIMS["ffconv"].claim.verdict(comparison["low_points"] / 100,
                                                                   comparison["high_points"] / 100)
    [latency] = report["latency_comparisons"]
    assert latency["ratio"] == pytest.approx(factorized["fp32_ms"] / row["fp32_ms"]) and latency["runs"] == 4
    assert latency["low"] <= latency["ratio"] <= latency["high"]
    assert latency["verdict"] == CLAIMS["threshnet_time"].claim.verdict(latency["low"], latency["high"])
    assert "## comparisons" in (tmp_path / "runs" / "z" / "report.md").read_text()
    assert (tmp_path / "runs" / "z" / "zoo.png").stat().st_size > 0
    assert (tmp_path / "runs" / "z" / "tiny" / "model_int8.tflite").exists()


def test_zoo_exports_re_parameterizable_networks_in_their_deploy_form():
    model = with_preprocessing(repvgg((32, 32, 3), stages=(Stage(8, 1, 2), Stage(8, 2, 1)), classes=3))
    deployed = deploy_form(model)
    blocks = [layer for layer in deployed.layers[-1].layers if isinstance(layer, RepVGGBlock)]
    assert len(blocks) == 3 and all(block.deploy for block in blocks)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(deployed(pixels, training=False), model(pixels, training=False), atol=1e-5)
    plain = with_preprocessing(build("resnet20", classes=3))
    assert deploy_form(plain) is plain
