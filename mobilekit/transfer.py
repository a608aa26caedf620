"""``mobilekit transfer``: what pretrained weights buy on a small data set, measured offline with
the kit's own data sets.

The mechanism is the one ``mobilekit train --weights PATH`` uses: ``arch`` is trained on
``source`` (all of its training split, only ``source_classes`` when given) and its network saved
as a ``.weights.h5`` file; then, on ``fraction`` of ``target``'s training split (stratified,
seeded; only ``target_classes`` when given), the same architecture with the target's classes
trains twice for the same ``epochs``: from scratch, and from the file (``models.pretrained``
loads every layer the two networks share, the classifier stays initialized; ``models.train``
trains the head on the frozen backbone for ``freeze_epochs``, then every layer at a lower rate).
Both see the same subset, validation and test splits, recipe and augmentation; each seed draws
its own subset and initialization. One table: test accuracy per seed, mean and standard deviation.

The default pair is the classic transfer set-up on disjoint classes of one domain: digits 0-4
(about 630 training images) to 10% of the training images of digits 5-9 (about 60). The
procedural shapes (``--source shapes``) are a poor source at these sizes: MobileNetV2-0.35
memorizes their 1,200 training images at 64x64 without generalizing (validation accuracy stays
near chance), so there is little to transfer.
"""
import os

import numpy as np

from keras_layers.keras_api import keras
from mobilekit.runs import run_dir, update_report
from models.data import default_augmentations, load_dataset
from models.files import atomic_output
from models.registry import build_model
from models.train import evaluate_accuracy, train_classifier


def network(model):
    """The network inside ``models.train.with_preprocessing``'s wrapper (what weights files hold)."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def with_classes(data, classes):
    """``data`` restricted to ``classes`` (indices into its class names) in every split, relabelled
    0, 1, ... in that order; ``data`` itself when ``classes`` is empty."""
    if not classes:
        return data
    unknown = [c for c in classes if not 0 <= c < len(data.class_names)]
    if unknown or len(set(classes)) < 2:
        raise ValueError(f"classes {list(classes)} must be at least two distinct class indices below "
                         f"{len(data.class_names)}")
    lookup = np.full(len(data.class_names), -1)
    lookup[list(classes)] = np.arange(len(classes))

    def keep(split):
        chosen = np.flatnonzero(lookup[split.labels] >= 0)
        kept = split.select(chosen)
        return kept._replace(labels=lookup[kept.labels])

    return data._replace(train=keep(data.train), validation=keep(data.validation), test=keep(data.test),
                         class_names=tuple(data.class_names[c] for c in classes))


def subset(data, fraction, seed):
    """``data`` with ``fraction`` of its training split, the same share of every class (at least one)."""
    labels = data.train.labels
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(labels == c), max(1, round(fraction * np.sum(labels == c))), replace=False)
            for c in np.unique(labels)]
    return data._replace(train=data.train.select(np.sort(np.concatenate(keep))))


def _train(config, data, folder, epochs, batch_size, seed, freeze_epochs=0):
    """A model of ``config`` trained on ``data`` into ``folder``; its test accuracy and the model."""
    model = build_model(config)
    model, _ = train_classifier(model, data, folder, epochs=epochs, batch_size=batch_size, patience=epochs,
                                seed=seed, augment=default_augmentations(config["data"]),
                                freeze_epochs=freeze_epochs, verbose=0)
    return evaluate_accuracy(model, data.test), model


def run_transfer(name="transfer", arch="mobilenet_v2", alpha=0.35, source="digits", source_classes=(0, 1, 2, 3, 4),
                 target="digits", target_classes=(5, 6, 7, 8, 9), fraction=0.1, image_size=48, pretrain_epochs=20,
                 epochs=30, freeze_epochs=10, batch_size=16, seeds=(0, 1, 2), progress=print):
    """Pretrain on ``source``, then train on ``fraction`` of ``target`` from scratch and fine-tuned,
    for each of ``seeds``; writes ``runs/<name>/`` and returns the table's rows."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction {fraction} must be in (0, 1]: the share of {target}'s training images used")
    path = run_dir(name)
    base = {"arch": arch, "alpha": alpha, "image_size": image_size}
    source_data = with_classes(load_dataset(source, image_size, seed=0), source_classes)
    progress(f"pretraining {arch} on {source} {', '.join(source_data.class_names)} ({source_data.train.size} images, "
             f"{pretrain_epochs} epochs)")
    source_config = {**base, "data": source, "classes": len(source_data.class_names)}
    source_accuracy, pretrained = _train(source_config, source_data, os.path.join(path, "pretrain"), pretrain_epochs,
                                         batch_size, seed=0)
    weights = os.path.join(path, "pretrain", f"{arch}_{source}.weights.h5")
    with atomic_output(weights) as tmp:
        network(pretrained).save_weights(tmp)
    progress(f"{source} test accuracy {source_accuracy:.4f}; weights in {weights}")
    target_data = with_classes(load_dataset(target, image_size, seed=0), target_classes)
    target_config = {**base, "data": target, "classes": len(target_data.class_names)}
    results, loaded = {"scratch": [], "fine_tuned": []}, {}
    for seed in seeds:
        data = subset(target_data, fraction, seed)
        for variant, extra in (("scratch", {}), ("fine_tuned", {"weights": weights})):
            folder = os.path.join(path, f"{variant}_seed{seed}")
            accuracy, model = _train({**target_config, **extra}, data, folder, epochs, batch_size, seed,
                                 freeze_epochs=freeze_epochs if extra else 0)
            results[variant].append(accuracy)
            record = getattr(model, "pretrained", None)
            loaded[variant] = f"{len(record['loaded'])} of {len(record['loaded']) + len(record['initialized'])}" \
                if record else "none"
            progress(f"seed {seed}, {variant}: {target} test accuracy {accuracy:.4f} ({data.train.size} training "
                     f"images)")
    rows = [{"start": variant, "layers_loaded": loaded[variant], "train_images": data.train.size, "epochs": epochs,
             "freeze_epochs": freeze_epochs if variant == "fine_tuned" else 0, "accuracies": accuracies,
             "accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies))}
            for variant, accuracies in results.items()]
    config = {**base, "source": source, "source_classes": ", ".join(source_data.class_names), "target": target,
              "target_classes": ", ".join(target_data.class_names), "fraction": fraction, "pretrain_epochs": pretrain_epochs,
              "batch_size": batch_size, "seeds": list(seeds), "source_test_accuracy": source_accuracy,
              "test_images": target_data.test.size}
    update_report(path, config=config, transfer=rows)
    return rows
