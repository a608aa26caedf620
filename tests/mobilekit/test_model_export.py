"""``mobilekit export --model``: Keras models the kit did not build (keras.applications networks, .h5 files,
SavedModels, free input sizes) exported to runs with the same rows as the kit's own, checked against Keras."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from demo_app.metadata import read_metadata
from demo_app.preprocess import to_input_range
from demo_app.runtime import TFLiteModel
from keras_layers.keras_api import keras
from mobilekit import runs
from mobilekit.cli import main
from mobilekit.model_export import export_model
from models.batch_statistics import calibrate_batch_norm
from models.image_folder import read_image_files, read_labelled_folder

CLASSES = ("cat", "dog", "fox", "owl", "yak")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "RUNS_ROOT", str(tmp_path / "runs"))
    return tmp_path / "runs"


def _write_images(folder, count, seed, size=(70, 90)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):  # smooth random colour fields, so the network's outputs differ between images
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size[::-1], Image.Resampling.BICUBIC).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    _write_images(root / "calibration", 32, seed=0)
    for index, name in enumerate(CLASSES):
        _write_images(root / "validation" / name, 8, seed=10 + index)
    (root / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    return root


@pytest.fixture(scope="module")
def digits_mobilenet_v2(tmp_path_factory):
    """A keras.applications MobileNetV2 (alpha 0.35, 48x48, inputs in [-1, 1]) trained briefly on the kit's
    digits, its ``.keras`` file, and folders as a user has them: calibration images (training images) and
    validation images in one sub-folder per class.

    Trained, not random: a random-weight MobileNetV2 scores every image 0.2 for every class (its batch
    norms' initial statistics fade the activations to ~1e-10), so any agreement is 1.0; with batch-norm
    statistics from data its scores are near-ties that int8 noise reorders (agreement 0.68-0.93 measured,
    the kit's own MobileNetV2 alike). 12 epochs give ~95% test accuracy.
    """
    from models.data import load_dataset

    root = tmp_path_factory.mktemp("digits")
    data = load_dataset("digits", 48)
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(48, 48, 3), classes=10)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    train = to_input_range(data.train.images, "-1,1")
    model.fit(train, data.train.labels, epochs=12, batch_size=64, verbose=0)
    calibrate_batch_norm(model, train[:600])  # 240 steps at momentum 0.999 leave the initial statistics
    path = root / "mobilenet_v2.keras"
    model.save(path)
    for index, image in enumerate(data.train.images[:200]):
        _save(root / "calibration" / f"{index}.png", image)
    for index, (image, label) in enumerate(zip(data.train.images[:400], data.train.labels)):
        _save(root / "train" / DIGITS[label] / f"{index}.png", image)
    for index, (image, label) in enumerate(zip(data.test.images, data.test.labels)):
        _save(root / "validation" / DIGITS[label] / f"{index}.png", image)
    (root / "labels.txt").write_text("\n".join(DIGITS) + "\n")
    return root


def _save(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


@pytest.mark.slow
def test_keras_applications_mobilenet_v2_exports_fp32_and_int8_that_agree(digits_mobilenet_v2, runs_root):
    root = digits_mobilenet_v2
    code = main(["export", "mnv2", "--model", str(root / "mobilenet_v2.keras"), "--labels", str(root / "labels.txt"),
                 "--calibration-data", str(root / "calibration"), "--validation-data", str(root / "validation"),
                 "--input-range=-1,1"])
    assert code == 0
    run = runs_root / "mnv2"
    report = json.loads((run / "report.json").read_text())
    rows = {row["quantization"]: row for row in report["export"]}
    assert set(rows) == {"fp32", "int8"} and (run / "labels.txt").read_text().split() == list(DIGITS)
    assert report["config"] == {"task": "classify", "source_model": str(root / "mobilenet_v2.keras"),
                                "input_range": "-1,1", "image_size": 48, "classes": 10}

    # an independent check of the rows: the Keras model and LiteRT, run here on the validation images
    split, _ = read_labelled_folder(str(root / "validation"), 48, DIGITS)
    images = to_input_range(split.images, "-1,1")
    expected = keras.saving.load_model(root / "mobilenet_v2.keras").predict(images, verbose=0)
    assert len(set(expected.argmax(-1))) == 10  # real predictions: an agreement can fail
    for quantization, row in rows.items():
        tflite = TFLiteModel(str(run / row["file"]))
        actual = np.concatenate([tflite.run(image)[0] for image in images])
        assert row["top1_agreement"] == pytest.approx(np.mean(actual.argmax(-1) == expected.argmax(-1)))
        assert row["keras_accuracy"] == pytest.approx(np.mean(expected.argmax(-1) == split.labels))
        assert row["n"] == split.size and row["size_bytes"] == os.path.getsize(run / row["file"])
    assert rows["fp32"]["top1_agreement"] == 1.0 and rows["fp32"]["max_abs_diff"] < 1e-4
    assert rows["int8"]["top1_agreement"] >= 0.99, rows["int8"]
    assert rows["fp32"]["keras_accuracy"] > 0.9
    for row in rows.values():  # what other runtimes read: labels and the input normalization of [-1, 1]
        metadata = read_metadata(str(run / row["file"]))
        assert metadata["labels"] == list(DIGITS) and metadata["task"] == "classify"
        assert (metadata["input_mean"], metadata["input_std"]) == ([127.5], [127.5])
    assert TFLiteModel(str(run / "model_int8.tflite")).input_dtype == np.uint8


@pytest.mark.e2e
def test_a_keras_file_trains_quantization_aware_into_an_integer_only_file(digits_mobilenet_v2, runs_root):
    from tflite.inspect import float_operators

    root = digits_mobilenet_v2
    assert main(["export", "mnv2", "--model", str(root / "mobilenet_v2.keras"), "--labels", str(root / "labels.txt"),
                 "--calibration-data", str(root / "calibration"), "--validation-data", str(root / "validation"),
                 "--input-range=-1,1", "--qat", "--qat-epochs", "1", "--train-data", str(root / "train")]) == 0
    run = runs_root / "mnv2"
    rows = {row["quantization"]: row for row in json.loads((run / "report.json").read_text())["export"]}
    assert set(rows) == {"fp32", "int8", "qat_int8"}
    qat_bytes = (run / "model_qat_int8.tflite").read_bytes()
    assert float_operators(qat_bytes) == [] and TFLiteModel.from_bytes(qat_bytes).input_dtype == np.uint8
    metadata = read_metadata(str(run / "model_qat_int8.tflite"))  # it takes pixels, as the kit's classifiers do
    assert metadata["labels"] == list(DIGITS) and (metadata["input_mean"], metadata["input_std"]) == ([0.0], [1.0])
    assert rows["qat_int8"]["top1_agreement"] >= 0.99, rows["qat_int8"]  # the file computes what QAT Keras does
    assert rows["qat_int8"]["tflite_accuracy"] >= rows["int8"]["tflite_accuracy"] - 0.01


def test_free_input_size_becomes_a_static_batch_1_input(folders, runs_root, tmp_path):
    keras.utils.set_random_seed(1)
    model = keras.applications.MobileNetV3Small(weights=None, input_shape=None, alpha=0.75, classes=5,
                                                include_preprocessing=True)
    assert tuple(model.inputs[0].shape) == (None, None, None, 3)
    pixels, _ = read_image_files(str(folders / "calibration"), 64)
    calibrate_batch_norm(model, pixels.astype(np.float32))
    path = tmp_path / "v3.keras"
    model.save(path)
    with pytest.raises(ValueError, match="has free height and width: give --image-size"):
        export_model(str(path), quantizations=("fp32",), progress=lambda *_: None)
    export_model(str(path), name="v3", image_size=64, quantizations=("fp32",),
                 validation_data=str(folders / "validation"), labels=str(folders / "labels.txt"),
                 progress=lambda *_: None)
    tflite = TFLiteModel(str(runs_root / "v3" / "model_fp32.tflite"))  # XNNPACK resizes nothing: it runs
    assert tflite.input_shape == (1, 64, 64, 3)
    metadata = read_metadata(str(runs_root / "v3" / "model_fp32.tflite"))
    assert metadata["labels"] == list(CLASSES) and (metadata["input_mean"], metadata["input_std"]) == ([0.0], [1.0])
    expected = model.predict(pixels[:4].astype(np.float32), verbose=0)
    actual = np.concatenate([tflite.run(image)[0] for image in pixels[:4].astype(np.float32)])
    np.testing.assert_allclose(actual, expected, atol=1e-4)


def _small_model():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.mark.parametrize("saved_as", ["h5", "saved_model"])
def test_h5_files_and_saved_models_export_like_keras_files(saved_as, folders, runs_root, tmp_path):
    model = _small_model()
    if saved_as == "h5":
        path = str(tmp_path / "small.h5")
        model.save(path)
    else:
        path = str(tmp_path / "small_saved_model")
        model.export(path, verbose=False)
    export_model(path, name=saved_as, quantizations=("fp32", "int8"), calibration_data=str(folders / "calibration"),
                 progress=lambda *_: None)
    pixels, _ = read_image_files(str(folders / "calibration"), 32)
    images = to_input_range(pixels[:6], "0,255")
    expected = model.predict(images, verbose=0)
    for quantization, atol in (("fp32", 1e-5), ("int8", 0.06)):  # int8: 8-bit activations of raw 0..255 pixels
        tflite = TFLiteModel(str(runs_root / saved_as / f"model_{quantization}.tflite"))
        actual = np.concatenate([tflite.run(image)[0] for image in images])
        np.testing.assert_allclose(actual, expected, atol=atol)
        assert (actual.argmax(-1) == expected.argmax(-1)).all()


def test_cli_exports_a_keras_file_to_int16x8(folders, runs_root, tmp_path):
    """int16x8 from ``export --model``: calibrated on the folder, float input and output, near Keras (its
    weights are int8: 0.023 measured), and its metadata names it."""
    model = _small_model()
    model.save(tmp_path / "small.keras")
    assert main(["export", "--model", str(tmp_path / "small.keras"), "--quantization", "int16x8",
                 "--calibration-data", str(folders / "calibration")]) == 0
    file = str(runs_root / "small" / "model_int16x8.tflite")
    pixels, _ = read_image_files(str(folders / "calibration"), 32)
    images = to_input_range(pixels[:6], "0,255")
    tflite = TFLiteModel(file)
    actual = np.concatenate([tflite.run(image)[0] for image in images])
    np.testing.assert_allclose(actual, model.predict(images, verbose=0), atol=0.03)
    assert tflite.input_dtype == np.float32
    assert read_metadata(file)["description"] == "image classification (top-1 accuracy), int16x8, exported by mobilekit"


def test_segmenter_files_are_checked_by_their_class_maps(folders, runs_root, tmp_path):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3))
    scores = keras.layers.Conv2D(3, 1, activation="softmax")(keras.layers.Rescaling(1 / 255.0)(inputs))
    path = str(tmp_path / "seg.keras")
    keras.Model(inputs, scores).save(path)
    rows = export_model(path, task="segment", name="seg", quantizations=("fp32",),
                        validation_data=str(folders / "calibration"), progress=lambda *_: None)
    assert rows[0]["n"] == 32 and rows[0]["pixel_agreement"] > 0.999


@pytest.mark.parametrize("argv, message", [
    (["--model", "{missing}"], "model not found: {missing} (expected a .keras file, an .h5 file or a SavedModel"),
    (["--model", "{labels}"], "unknown file type; expected a .keras file"),
    (["--model", "{folder}"], "has no saved_model.pb: expected"),
    (["--model", "{small}", "--task", "detect"], "invalid choice: 'detect'"),
    (["--model", "{small}"], "--quantization int8 needs --calibration-data FOLDER"),
    (["--model", "{small}", "--quantization", "fp32", "int16x8"], "--quantization int16x8 needs --calibration-data"),
    (["--model", "{small}", "--quantization", "fp32", "--labels", "{labels}"],
     "has 5 labels but the model scores 3 classes"),
    (["--model", "{small}", "--quantization", "binary", "--calibration-data", "{folder}"],
     "--quantization binary does not apply to export --model"),
    (["--model", "{small}", "--qat", "--quantization", "fp32"], "export --model --qat fine-tunes a classifier: it "
                                                                  "needs --task classify and --train-data FOLDER"),
    (["--model", "{small}", "--qat", "--qat-backend", "tfmot"], "--qat-backend does not apply with --model (TFMOT"),
    (["--model", "{small}", "--train-data", "{folder}"], "--train-data does not apply without --qat"),
    (["run", "--labels", "{labels}"], "--labels does not apply to a run of the kit"),
    ([], "export needs a run NAME (runs/NAME/model.keras) or --model PATH"),
])
def test_bad_input_is_one_line(argv, message, folders, runs_root, tmp_path, capsys):
    small = tmp_path / "small.keras"
    _small_model().save(small)
    values = {"missing": str(tmp_path / "nope.keras"), "labels": str(folders / "labels.txt"),
              "folder": str(folders / "calibration"), "small": str(small)}
    argv = [arg.format(**values) for arg in argv]
    try:
        code = main(["export", *argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert message.format(**values) in lines[-1], lines
    assert not (runs_root / "small").exists()
