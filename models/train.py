"""Training recipe for classifiers: augmentation, Adam with cosine decay, early stopping, an
atomically written best checkpoint and, optionally, two-phase fine-tuning of pretrained layers,
resumable per-epoch checkpoints (``models.checkpoint``), TensorBoard logs, a clean stop on
SIGINT / SIGTERM (``models.interrupt``) and any ``tf.distribute`` strategy in scope
(``models.distribute``).

Fine-tuning follows the Keras transfer-learning guide
(https://keras.io/guides/transfer_learning/): phase 1 (``head``) freezes the layers the
model's ``pretrained`` record lists as loaded (``trainable=False``, so their batch norms run
in inference mode and keep their moving statistics) and trains the rest at the learning rate
for ``freeze_epochs``; phase 2 (``fine_tune``) trains every layer for the remaining epochs at
``learning_rate * FINE_TUNE_RATE``. Each phase has its own Adam and cosine decay; early
stopping watches the last phase only.

Models trained here take RGB pixels in [0, 255]: ``with_preprocessing`` puts the
[-1, 1] scaling MobileNets expect inside the model, so the exported ``.tflite``
(and the camera demo) feed raw pixels, and a uint8 int8 model's input scale is ~1.
"""
import importlib.util
import os
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from keras_layers.keras_api import keras
from models.checkpoint import ResumableCheckpoint, read_checkpoint, restore_optimizer, restore_weights
from models.classification_data import as_split
from models.files import atomic_output
from models.image_folder import FileSplit
from models.input_pipeline import DIGIT_AUGMENTATIONS, dataset
from models.pretrained import input_preprocessing
from models.interrupt import StopOnSignal, TrainingInterrupted, stop_on_signals

layers = keras.layers
CACHE_FOLDER = "cache"  # under the run folder: decoded images of splits streamed from files


def with_preprocessing(backbone, mode="tf"):
    """Wrap ``backbone`` so that it takes RGB pixels in [0, 255] and preprocesses them as
    ``mode`` says (``models.pretrained.input_preprocessing``: "tf" scales to [-1, 1], "caffe"
    and "torch" as ``keras.applications.imagenet_utils.preprocess_input``). The wrapper keeps
    the backbone's ``pretrained`` report."""
    inputs = x = keras.Input(shape=backbone.inputs[0].shape[1:], name="pixels")
    for layer in input_preprocessing(mode):
        x = layer(x)
    model = keras.Model(inputs, backbone(x), name=backbone.name)
    if hasattr(backbone, "pretrained"):
        model.pretrained = backbone.pretrained
    return model


def set_batchnorm_momentum(model, momentum):
    """Set the moving-statistics momentum of every BatchNormalization layer, nested ones too.

    ImageNet recipes use 0.999 (keras.applications); on small data sets a few hundred steps
    leave such moving averages near their initial values, so evaluation sees chance-level
    features. 0.9 lets them converge within the first epochs. The walk reaches the batch
    norms inside nested models and inside the kit's composite layers (e.g. ``GhostModule``)
    through ``_flatten_layers``, which both Keras generations provide.
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = momentum


FINE_TUNE_RATE = 0.1  # phase 2 (all layers) trains at learning_rate * FINE_TUNE_RATE
FREEZE_SHARE = 0.25  # with pretrained weights, phase 1 (head only) takes this share of the epochs by default


class Phase(NamedTuple):
    """Epochs ``first_epoch`` to ``end_epoch - 1`` at peak ``learning_rate`` with layers ``frozen``."""

    name: str
    first_epoch: int
    end_epoch: int
    learning_rate: float
    frozen: tuple = ()


def default_freeze_epochs(epochs):
    """Phase 1's length when pretrained weights are given and ``freeze_epochs`` is not: a quarter
    of the epochs, at least one, leaving at least one for phase 2 (0 for a single epoch)."""
    return min(max(1, round(epochs * FREEZE_SHARE)), epochs - 1)


def check_freeze_epochs(freeze_epochs, epochs):
    """``freeze_epochs`` when phase 2 keeps at least one of ``epochs``, else a one-line error."""
    if freeze_epochs < 0 or (freeze_epochs and freeze_epochs >= epochs):
        raise ValueError(f"--freeze-epochs {freeze_epochs} must be between 0 and --epochs minus one ({epochs - 1}): "
                         f"phase 2 (all layers) needs at least one epoch")
    return freeze_epochs


def pretrained_layers(model):
    """The names of the layers ``model.pretrained`` lists as loaded (none without such a record)."""
    record = getattr(model, "pretrained", None)
    return tuple(record["loaded"]) if record else ()


def training_phases(epochs, learning_rate, freeze_epochs=0, frozen=()):
    """The run's phases: one (``train``) without ``freeze_epochs``, else ``head`` then ``fine_tune``."""
    check_freeze_epochs(freeze_epochs, epochs)
    if not freeze_epochs:
        return [Phase("train", 0, epochs, learning_rate)]
    return [Phase("head", 0, freeze_epochs, learning_rate, tuple(frozen)),
            Phase("fine_tune", freeze_epochs, epochs, learning_rate * FINE_TUNE_RATE)]


def set_trainable(model, names, trainable):
    """Set ``trainable`` on the layers called ``names`` anywhere in ``model``; other layers keep theirs."""
    found = set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if layer.name in names:
            layer.trainable = trainable
            found.add(layer.name)
    missing = sorted(set(names) - found)
    if missing:
        raise ValueError(f"layers {', '.join(missing[:5])} named as pretrained are not in model {model.name}: "
                         f"expected names of its layers")


def _distributable(data):
    """``data`` sharded by element across workers (each worker reads every file of a streamed split
    and keeps its share of the batches)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model whenever ``monitor`` improves on ``best``, through a temporary file and a rename."""

    def __init__(self, path, monitor="val_accuracy", best=-np.inf):
        super().__init__()
        self.path, self.monitor, self.best = path, monitor, best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value > self.best:
            self.best = float(value)
            with atomic_output(self.path) as tmp:
                self.model.save(tmp)


class RunHistory(keras.callbacks.Callback):
    """Every epoch's logs and learning rate across a run's phases (and, when resumed, from before)."""

    def __init__(self, history=None):
        super().__init__()
        self.history = {key: list(values) for key, values in (history or {}).items()}

    def epochs(self):
        return len(self.history.get("loss", []))

    def on_epoch_end(self, epoch, logs=None):
        rate = self.model.optimizer.learning_rate
        logs = {**(logs or {}), "learning_rate": rate.numpy() if hasattr(rate, "numpy") else rate}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))


def compile_for_fit(model, optimizer, loss="sparse_categorical_crossentropy", accuracy=True, **options):
    """``model.compile`` with every variable ``fit`` needs made now: the optimizer's slots for the
    trainable variables (set trainable layers first) and, with ``accuracy``, a sparse accuracy
    metric logged as ``accuracy``. Variables first made inside the traced training step (Keras
    builds the optimizer and string metrics there when no distribution strategy is in scope)
    make TensorFlow trace the whole step a second time: 5-20 s per model on 2 cores."""
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")] if accuracy else []
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, **options)
    model.optimizer.build(model.trainable_variables)


def _compile(model, phase, steps):
    """Compile ``model`` with ``phase``'s Adam and cosine decay (set its trainable layers first)."""
    schedule = keras.optimizers.schedules.CosineDecay(phase.learning_rate,
                                                      decay_steps=(phase.end_epoch - phase.first_epoch) * steps)
    compile_for_fit(model, keras.optimizers.Adam(schedule))


def _cache_prefix(split, folder, name):
    """Where a split streamed from files keeps its decoded images (in-memory splits need no cache)."""
    return os.path.join(folder, name) if isinstance(split, FileSplit) else None


def train_classifier(model, data, out_dir, epochs=40, batch_size=64, learning_rate=3e-3, patience=10,
                     seed=0, augment=DIGIT_AUGMENTATIONS, bn_momentum=0.9, verbose=2, freeze_epochs=0,
                     checkpoint_dir=None, log_dir=None, resume_from=None):
    """Train ``model`` (pixels in, class probabilities out) on ``data`` and write to ``out_dir``.

    Writes ``model.keras`` (best validation accuracy). ``augment``: names of
    ``models.input_pipeline.AUGMENTATIONS`` applied on the fly. Splits streamed from files are
    decoded once into a cache in ``out_dir/cache``. ``batch_size`` is per replica: each step's
    global batch is ``batch_size`` times the replicas of the ``tf.distribute`` strategy in scope
    (build and call under ``strategy.scope()``). ``freeze_epochs``: phase 1 of fine-tuning (see
    the module docstring; needs ``model.pretrained``). ``checkpoint_dir``: write a resumable
    checkpoint there every epoch; ``log_dir``: TensorBoard logs (when the ``tensorboard`` package,
    which implements ``tf.summary``, is installed); ``resume_from``: a checkpoint
    folder to continue from. SIGINT / SIGTERM raise ``TrainingInterrupted`` at the next step
    boundary. Returns ``(model, history)`` with history as a dict (best weights restored when
    early stopping ends the run).
    """
    keras.utils.set_random_seed(seed)
    set_batchnorm_momentum(model, bn_momentum)
    frozen = pretrained_layers(model)
    if freeze_epochs and not frozen:
        raise ValueError(f"freeze_epochs {freeze_epochs} needs pretrained layers to freeze: model {model.name} "
                         f"records none (expected model.pretrained['loaded'], e.g. from --weights)")
    phases = training_phases(epochs, learning_rate, freeze_epochs, frozen)
    state = read_checkpoint(resume_from) if resume_from else None
    if resume_from and state is None:
        raise ValueError(f"no checkpoint in {resume_from}: expected {resume_from}/state.json to resume from")
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    global_batch = max(1, min(batch_size, data.train.size // replicas)) * replicas
    steps = data.train.size // global_batch
    cache = os.path.join(out_dir, CACHE_FOLDER)

    def batches(first, end):
        return _distributable(dataset(data.train, global_batch, training=True, seed=seed, augment=augment,
                                      cache=_cache_prefix(data.train, cache, "train"), epochs=(first, end)))

    validation = _distributable(dataset(data.validation, global_batch,
                                        cache=_cache_prefix(data.validation, cache, "validation")))
    history = RunHistory(state and state["history"])
    best = BestCheckpoint(os.path.join(out_dir, "model.keras"), best=state["best"] if state else -np.inf)
    done = state["epoch"] if state else 0
    with stop_on_signals() as flag:
        for phase in phases:
            if done >= phase.end_epoch:
                continue
            if state:  # the weights as the checkpoint's phase laid them out, then this phase's optimizer
                _restore(model, resume_from, state, phases, frozen)
            set_trainable(model, frozen, not phase.frozen)
            _compile(model, phase, steps)
            if state and state["phase"] == phase.name:
                restore_optimizer(model, resume_from, state)
            state, first = None, max(done, phase.first_epoch)
            try:
                model.fit(batches(first, phase.end_epoch), steps_per_epoch=steps, validation_data=validation,
                          initial_epoch=first, epochs=phase.end_epoch, shuffle=False, verbose=verbose,
                          callbacks=_callbacks(phase, phases, history, best, checkpoint_dir, log_dir, patience, flag))
            except TrainingInterrupted as stop:
                stop.history = history.history
                raise
            done = phase.end_epoch
    if state:  # every epoch was done before the break: the checkpoint holds the trained weights
        _restore(model, resume_from, state, phases, frozen)
    return model, history.history


def _restore(model, folder, state, phases, pretrained):
    """Set ``model``'s weights from checkpoint ``state`` with the trainable flags of the phase that wrote it."""
    saved = next((p for p in phases if p.name == state["phase"]), None)
    if saved is None:
        raise ValueError(f"checkpoint {folder} was written in phase {state['phase']!r}: expected one of this "
                         f"run's phases ({', '.join(p.name for p in phases)})")
    set_trainable(model, pretrained, not saved.frozen)
    restore_weights(model, folder, state)


def _callbacks(phase, phases, history, best, checkpoint_dir, log_dir, patience, flag):
    """The callbacks of one phase, in the order their epoch ends must run."""
    callbacks = [history, best]
    if checkpoint_dir:
        callbacks.append(ResumableCheckpoint(checkpoint_dir, phase.name, history, best))
    if phase is phases[-1]:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience,
                                                       restore_best_weights=True))
    if log_dir and importlib.util.find_spec("tensorboard"):  # tf.summary's writers live in that package
        callbacks.append(keras.callbacks.TensorBoard(log_dir, write_graph=False, profile_batch=0))
    return [*callbacks, StopOnSignal(flag, history.epochs)]


def correct_predictions(model, split, batch_size=128):
    """Whether a Keras classifier's top-1 class is right, per image of a split (bool, in order):
    the paired per-image scores ``mobilekit.stats.paired_interval`` compares two models by."""
    split = as_split(split)
    probabilities = model.predict(dataset(split, batch_size).map(lambda images, labels: images), verbose=0)
    return np.argmax(probabilities, axis=-1) == split.labels


def evaluate_accuracy(model, split, batch_size=128):
    """Top-1 accuracy of a Keras classifier on a split (in memory or streamed from files)."""
    return float(np.mean(correct_predictions(model, split, batch_size)))
