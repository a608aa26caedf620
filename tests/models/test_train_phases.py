"""Two-phase fine-tuning, per-epoch checkpoints, a signal mid-run (at an epoch end, mid-epoch) and resuming
(``models.train``)."""
import os
import signal

import numpy as np
import pytest

from keras_layers.keras_api import keras
from models.checkpoint import ResumableCheckpoint, read_checkpoint
from models.interrupt import StopOnSignal, TrainingInterrupted
from models.train import FINE_TUNE_RATE, check_freeze_epochs, default_freeze_epochs, train_classifier
from tests.models.test_train import separable_data

PRETRAINED = ("conv", "bn")


def pretrained_classifier(size=32, classes=2, seed=0):
    """A small classifier whose convolution and batch norm play the pretrained backbone (the record
    ``models.registry.build_model`` attaches as ``model.pretrained``)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False, name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(classes, activation="softmax", name="head")(x))
    model.pretrained = {"source": "test", "loaded": list(PRETRAINED), "initialized": ["head"]}
    return model


def layer_weights(model, name):
    return [np.array(w) for w in model.get_layer(name).weights]


def fit(model, folder, **kwargs):
    return train_classifier(model, separable_data(), str(folder), epochs=3, batch_size=16, learning_rate=2e-2,
                            patience=3, augment=(), verbose=0, freeze_epochs=1,
                            checkpoint_dir=str(folder / "checkpoint"), **kwargs)


def test_freeze_epochs_default_and_bounds():
    assert [default_freeze_epochs(e) for e in (1, 2, 4, 40)] == [0, 1, 1, 10]
    assert check_freeze_epochs(3, 4) == 3
    for bad in (4, 5, -1):
        with pytest.raises(ValueError, match="--freeze-epochs"):
            check_freeze_epochs(bad, 4)


def test_freezing_needs_a_pretrained_record(tmp_path):
    model = pretrained_classifier()
    model.pretrained = None
    with pytest.raises(ValueError, match="needs pretrained layers"):
        fit(model, tmp_path)


@pytest.mark.slow
def test_phase_one_freezes_the_pretrained_layers_and_resuming_matches_an_unbroken_run(tmp_path, monkeypatch):
    unbroken, history = fit(pretrained_classifier(), tmp_path / "unbroken")
    assert len(history["loss"]) == 3
    # phase 2's Adam decays from the lower peak rate (phase 1's ended at 0, its cosine's end)
    peak = unbroken.optimizer.get_config()["learning_rate"]["config"]["initial_learning_rate"]
    assert peak == pytest.approx(2e-2 * FINE_TUNE_RATE)
    assert 0 < history["learning_rate"][1] < peak

    model = pretrained_classifier()
    before = {name: layer_weights(model, name) for name in (*PRETRAINED, "head")}
    write = ResumableCheckpoint.on_epoch_end

    def signal_after_first_epoch(self, epoch, logs=None):  # SIGINT right after epoch 1's checkpoint
        write(self, epoch, logs)
        if epoch == 0:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(ResumableCheckpoint, "on_epoch_end", signal_after_first_epoch)
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(model, tmp_path / "broken")
    assert stopped.value.signum == signal.SIGINT and stopped.value.exit_code == 130 and stopped.value.epochs == 1
    monkeypatch.undo()
    state = read_checkpoint(str(tmp_path / "broken" / "checkpoint"))
    assert (state["epoch"], state["phase"]) == (1, "head")
    assert sorted(os.listdir(tmp_path / "broken" / "checkpoint")) == ["epoch-0001.npz", "state.json"]
    # phase 1: the frozen convolution and batch norm (moving statistics included) kept their values
    for name in PRETRAINED:
        for old, new in zip(before[name], layer_weights(model, name)):
            np.testing.assert_array_equal(old, new)
    assert not np.allclose(before["head"][0], layer_weights(model, "head")[0])

    resumed = pretrained_classifier(seed=1)  # a fresh process's model: the checkpoint sets everything
    resumed, resumed_history = fit(resumed, tmp_path / "broken", resume_from=str(tmp_path / "broken" / "checkpoint"))
    assert len(resumed_history["loss"]) == 3
    # phase 2 trained the pretrained layers too, and the resumed run equals the unbroken one
    assert not np.allclose(before["conv"][0], layer_weights(resumed, "conv")[0])
    assert not np.allclose(before["bn"][2], layer_weights(resumed, "bn")[2])  # moving mean
    for a, b in zip(unbroken.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(resumed_history["loss"], history["loss"], rtol=1e-4)
    assert int(np.array(resumed.optimizer.iterations)) == int(np.array(unbroken.optimizer.iterations))


def test_a_signal_mid_epoch_stops_after_that_step_and_keeps_the_last_epochs_checkpoint(tmp_path, monkeypatch):
    steps, check = [], StopOnSignal.on_train_batch_end

    def signal_in_epoch_two(self, batch, logs=None):  # SIGINT during epoch 2's second step
        steps.append((self.completed_epochs(), batch))
        if steps[-1] == (1, 1):
            signal.raise_signal(signal.SIGINT)
        check(self, batch, logs)

    monkeypatch.setattr(StopOnSignal, "on_train_batch_end", signal_in_epoch_two)
    with pytest.raises(TrainingInterrupted) as stopped:
        fit(pretrained_classifier(), tmp_path)
    assert steps[-1] == (1, 1), "a step ran after the signal"
    assert (stopped.value.exit_code, stopped.value.epochs) == (130, 1)
    assert read_checkpoint(str(tmp_path / "checkpoint"))["epoch"] == 1
    assert sorted(os.listdir(tmp_path / "checkpoint")) == ["epoch-0001.npz", "state.json"]
