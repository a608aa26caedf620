"""Resumable training checkpoints: every epoch, the model's weights, the optimizer's state (its
step count and moments), the epoch, the fine-tuning phase and the history so far.

A checkpoint folder holds ``epoch-NNNN.npz`` (arrays ``model/i`` in ``model.get_weights()``
order and ``optimizer/i`` in ``optimizer.variables`` order) and ``state.json`` naming it. Each
file is written through a temporary file and a rename, ``state.json`` last, and the previous
epoch's arrays are removed only after it: a crash at any moment leaves the last complete epoch.

Why not ``keras.callbacks.BackupAndRestore``: its ``.weights.h5`` files do hold the optimizer's
state in Keras 3 and in tf_keras, but it knows no fine-tuning phase, and tf_keras cannot load a
``.weights.h5`` file into a model under ``MirroredStrategy`` (keras-team/tf-keras#731). Plain
arrays set through ``set_weights`` / ``assign`` work in both generations under every strategy.
Restore with the trainable flags of the phase that wrote the checkpoint: tf_keras orders a
model's weights trainable first.
"""
import glob
import json
import os

import numpy as np

from keras_layers.keras_api import keras
from models.files import atomic_output, write_text

STATE = "state.json"


def read_checkpoint(folder):
    """The ``state.json`` dict of checkpoint ``folder`` (epoch, phase, history, best, file), or None."""
    path = os.path.join(folder, STATE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _arrays(prefix, values):
    return {f"{prefix}/{i}": np.asarray(value.numpy()) for i, value in enumerate(values)}


def _assign(variables, arrays, prefix, path):
    count = sum(key.startswith(prefix + "/") for key in arrays.files)
    if count != len(variables):
        raise ValueError(f"checkpoint {path} holds {count} {prefix} arrays, the {prefix} has {len(variables)}: "
                         f"expected a checkpoint of this run's model")
    for i, variable in enumerate(variables):
        variable.assign(arrays[f"{prefix}/{i}"])


def restore_weights(model, folder, state):
    """Set ``model``'s weights from the checkpoint ``state`` of ``folder``."""
    path = os.path.join(folder, state["file"])
    with np.load(path) as arrays:
        _assign(model.weights, arrays, "model", path)


def restore_optimizer(model, folder, state):
    """Build ``model.optimizer`` on the trainable variables and set its state from the checkpoint."""
    path = os.path.join(folder, state["file"])
    model.optimizer.build(model.trainable_variables)
    with np.load(path) as arrays:
        _assign(model.optimizer.variables, arrays, "optimizer", path)


class ResumableCheckpoint(keras.callbacks.Callback):
    """After every epoch write the checkpoint of ``folder`` (see the module docstring).

    ``phase``: the fine-tuning phase being trained; ``history`` (a ``RunHistory``) and ``best``
    (a ``BestCheckpoint``) must have seen the epoch first (come earlier in the callback list).
    """

    def __init__(self, folder, phase, history, best):
        super().__init__()
        self.folder, self.phase, self.history, self.best = folder, phase, history, best

    def on_epoch_end(self, epoch, logs=None):
        name = f"epoch-{epoch + 1:04d}.npz"
        arrays = {**_arrays("model", self.model.weights), **_arrays("optimizer", self.model.optimizer.variables)}
        with atomic_output(os.path.join(self.folder, name)) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        state = {"epoch": epoch + 1, "phase": self.phase, "file": name, "best": self.best.best,
                 "history": self.history.history}
        write_text(os.path.join(self.folder, STATE), json.dumps(state, indent=1) + "\n")
        for old in glob.glob(os.path.join(self.folder, "epoch-*.npz")):
            if os.path.basename(old) != name:
                os.remove(old)
