"""Training under ``tf.distribute``: MirroredStrategy over two logical CPUs equals one device; a
two-worker MultiWorkerMirroredStrategy run through ``mobilekit train`` writes one run folder.

Each runs in fresh processes: logical devices must be configured before TensorFlow starts, and
each worker of a cluster is a process of its own."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.mobilekit.test_train_resume import TINY, colour_folder

ENV = {**os.environ, "PYTHONPATH": os.getcwd(), "TF_CPP_MIN_LOG_LEVEL": "3"}

MIRRORED = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_layers.keras_api import keras
    from models.distribute import make_strategy
    from models.train import train_classifier
    from tests.models.test_train import separable_data

    def model():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))

    def train(batch_size, folder):
        trained, _ = train_classifier(model(), separable_data(), folder, epochs=2, batch_size=batch_size,
                                      learning_rate=1e-2, augment=(), verbose=0)
        return [np.array(w) for w in trained.weights]

    one = train(16, sys.argv[1] + "/one")
    strategy = make_strategy("mirrored")
    with strategy.scope():
        two = train(8, sys.argv[1] + "/two")  # 8 per replica: the same global batch of 16
    np.savez(sys.argv[1] + "/weights.npz", replicas=strategy.num_replicas_in_sync,
             **{f"one{i}": w for i, w in enumerate(one)}, **{f"two{i}": w for i, w in enumerate(two)})
""")


@pytest.mark.slow
def test_mirrored_over_two_devices_reaches_the_weights_of_one(tmp_path):
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path)], env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(tmp_path / "weights.npz") as arrays:
        assert int(arrays["replicas"]) == 2
        count = sum(key.startswith("one") for key in arrays.files)
        assert count == 4
        for i in range(count):
            np.testing.assert_allclose(arrays[f"two{i}"], arrays[f"one{i}"], rtol=1e-4, atol=1e-5)
        assert not np.allclose(arrays["one0"], 0)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_writes(tmp_path):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    colour_folder(tmp_path)
    command = [sys.executable, "-m", "mobilekit", "train", "--strategy", "multiworker", "--name", "mw", "--epochs", "2",
               *TINY]
    processes = [subprocess.Popen(command, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env={**ENV, "TMPDIR": str(scratch), "TF_CONFIG": json.dumps(
                                      {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})})
                 for i in range(2)]
    try:
        outputs = [p.communicate(timeout=400)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, output in zip(processes, outputs):
        assert p.returncode == 0, output[-3000:]
    assert os.listdir(tmp_path / "runs") == ["mw"]
    run = tmp_path / "runs" / "mw"
    assert sorted(os.listdir(run / "checkpoint")) == ["epoch-0002.npz", "state.json"]
    assert {"model.keras", "report.json", "training_curves.png"} <= set(os.listdir(run))
    assert "trained_weights.npz" not in os.listdir(run)
    assert not [name for name in os.listdir(scratch) if name.startswith("worker-")]  # the worker's folder is gone
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "complete" and report["training"]["replicas"] == 2
    assert report["training"]["epochs_run"] == 2
    from keras_layers.keras_api import keras

    assert keras.models.load_model(str(run / "model.keras")).count_params() > 0  # a Keras 3 file for export
