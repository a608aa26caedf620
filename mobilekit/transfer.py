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
its own subset and initialization. One table: test accuracy per seed, mean and standard deviation
(``mobilekit.seeded``); and one comparison, fine-tuned against scratch: the top-1 difference
paired over seeds and the target's test images, its 95% interval and the verdict it gives the
fine-tuning claim (``mobilekit.paper_claims``).

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
from mobilekit.seeded import SPLIT_SEED, Pair, Scores, check_seeds, comparisons, statistics, train_seeds
from models.data import default_augmentations, load_dataset
from models.files import atomic_output
from models.registry import build_model
from models.train import evaluate_accuracy, train_classifier

PAIRS = (Pair("fine_tuned", "scratch", "fine_tuning"),)


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
    """A model of ``config`` trained on ``data`` into ``folder``."""
    model = build_model(config)
    model, _ = train_classifier(model, data, folder, epochs=epochs, batch_size=batch_size, patience=epochs,
                                seed=seed, augment=default_augmentations(config["data"]),
                                freeze_epochs=freeze_epochs, verbose=0)
    return model


def run_transfer(name="transfer", arch="mobilenet_v2", alpha=0.35, source="digits", source_classes=(0, 1, 2, 3, 4),
                 target="digits", target_classes=(5, 6, 7, 8, 9), fraction=0.1, image_size=48, pretrain_epochs=20,
                 epochs=30, freeze_epochs=10, batch_size=16, seeds=(0, 1, 2), progress=print):
    """Pretrain on ``source``, then train on ``fraction`` of ``target`` from scratch and fine-tuned,
    for each of ``seeds``; writes ``runs/<name>/`` and returns the table's rows."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction {fraction} must be in (0, 1]: the share of {target}'s training images used")
    seeds = check_seeds(seeds)
    path = run_dir(name)
    base = {"arch": arch, "alpha": alpha, "image_size": image_size}
    source_data = with_classes(load_dataset(source, image_size, seed=SPLIT_SEED), source_classes)
    progress(f"pretraining {arch} on {source} {', '.join(source_data.class_names)} ({source_data.train.size} images, "
             f"{pretrain_epochs} epochs)")
    source_config = {**base, "data": source, "classes": len(source_data.class_names)}
    pretrained = _train(source_config, source_data, os.path.join(path, "pretrain"), pretrain_epochs, batch_size,
                        seed=0)
    source_accuracy = evaluate_accuracy(pretrained, source_data.test)
    weights = os.path.join(path, "pretrain", f"{arch}_{source}.weights.h5")
    with atomic_output(weights) as tmp:
        network(pretrained).save_weights(tmp)
    progress(f"{source} test accuracy {source_accuracy:.4f}; weights in {weights}")
    target_data = with_classes(load_dataset(target, image_size, seed=SPLIT_SEED), target_classes)
    target_config = {**base, "data": target, "classes": len(target_data.class_names)}
    loaded, train_images, scores = {}, [], Scores()

    def train(seed):
        data = subset(target_data, fraction, seed)
        train_images.append(data.train.size)
        models = {}
        for variant, extra in (("scratch", {}), ("fine_tuned", {"weights": weights})):
            folder = os.path.join(path, f"{variant}_seed{seed}")
            models[variant] = _train({**target_config, **extra}, data, folder, epochs, batch_size, seed,
                                     freeze_epochs=freeze_epochs if extra else 0)
            record = getattr(models[variant], "pretrained", None)
            loaded[variant] = f"{len(record['loaded'])} of {len(record['loaded']) + len(record['initialized'])}" \
                if record else "none"
        progress(f"seed {seed}: {data.train.size} {target} training images")
        return models

    train_seeds(seeds, train, target_data.test, scores, progress)
    rows = [{"start": variant, "layers_loaded": loaded[variant], "train_images": train_images[-1], "epochs": epochs,
             "freeze_epochs": freeze_epochs if variant == "fine_tuned" else 0, **scores.summary(variant)}
            for variant in ("scratch", "fine_tuned")]
    config = {**base, "source": source, "source_classes": ", ".join(source_data.class_names), "target": target,
              "target_classes": ", ".join(target_data.class_names), "fraction": fraction, "pretrain_epochs": pretrain_epochs,
              "batch_size": batch_size, "seeds": list(seeds), "split_seed": SPLIT_SEED,
              "source_test_accuracy": source_accuracy, "test_images": target_data.test.size}
    update_report(path, config=config, transfer=rows, statistics=statistics(seeds, target_data.test.size),
                  comparisons=comparisons(PAIRS, scores))
    return rows
