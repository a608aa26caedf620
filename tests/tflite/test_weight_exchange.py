"""Weights saved from a Keras 3 model load into the same config's tf_keras model (the QAT and
pruning hand-over), composite layers included: a GhostNet's Ghost bottlenecks order their
weights by sub-layer in Keras 3 and trainable-first in tf_keras."""
import os
import subprocess
import sys

import numpy as np
import pytest

from models.registry import build_model
from tflite.qat_tfmot import save_layer_weights

CONFIG = {"arch": "ghostnet", "image_size": 32, "classes": 10, "alpha": 0.5}
CHILD = """
import json, sys
import numpy as np
from models.registry import build_model
from tflite.qat_tfmot import load_layer_weights
folder = sys.argv[1]
model = load_layer_weights(build_model(json.loads(sys.argv[2])), folder + "/weights.npz")
np.save(folder + "/tf_keras.npy", model.predict(np.load(folder + "/images.npy"), verbose=0))
"""


@pytest.mark.slow
def test_keras3_weights_load_into_the_tf_keras_model_of_the_same_config(tmp_path):
    import json

    model = build_model(CONFIG)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # batch-norm statistics away from their initial values too
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype("float32") * np.sign(weight.numpy() + 0.5))
    images = rng.uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    save_layer_weights(model, str(tmp_path / "weights.npz"))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), json.dumps(CONFIG)], capture_output=True,
                          text=True, env={**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "tf_keras.npy"), expected, atol=1e-5)
