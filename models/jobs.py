"""The ``mobilekit train`` job: build, train, evaluate and profile a classifier in a run folder."""
import os
import time

from models.data import load_dataset
from models.files import write_text
from models.profile import profile
from models.registry import build, width_arguments
from models.runs import run_dir, update_report
from models.train import evaluate_accuracy, train_classifier, with_preprocessing


def train(name="train", arch="mobilenet_v2", data="digits", image_size=48, alpha=0.35, epochs=40,
          batch_size=64, learning_rate=3e-3, patience=10, seed=0, progress=print):
    """Train ``arch`` on ``data`` (``digits`` or an image folder) into ``runs/<name>/``.

    Writes ``model.keras`` (best validation accuracy; takes pixels in [0, 255]),
    ``labels.txt``, ``training_curves.png`` and the ``config``, ``model`` and ``training``
    sections of the report. Returns ``(run_path, model, dataset)``.
    """
    path = run_dir(name)
    width = width_arguments(arch, alpha)
    config = {"arch": arch, "data": data, "image_size": image_size, **width, "epochs": epochs,
              "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed}
    progress(f"loading {data} at {image_size}x{image_size}")
    dataset = load_dataset(data, image_size, seed=seed)
    classes = len(dataset.class_names)
    model = with_preprocessing(build(arch, input_shape=(image_size, image_size, 3), classes=classes, **width))
    costs = profile(model)
    progress(f"training {model.name}: {costs['params']:,} parameters, {costs['macs'] / 1e6:.1f}M MACs, "
             f"{len(dataset.train[1])} training images, up to {epochs} epochs")
    start = time.perf_counter()
    model, history = train_classifier(model, dataset, path, epochs=epochs, batch_size=batch_size,
                                      learning_rate=learning_rate, patience=patience, seed=seed)
    seconds = time.perf_counter() - start
    write_text(os.path.join(path, "labels.txt"), "\n".join(dataset.class_names) + "\n")
    training = {"epochs_run": len(history["loss"]), "seconds": round(seconds, 1),
                "best_val_accuracy": max(history["val_accuracy"]),
                "test_accuracy": evaluate_accuracy(model, *dataset.test),
                "train_images": len(dataset.train[1]), "test_images": len(dataset.test[1])}
    progress(f"trained in {seconds:.0f} s: test accuracy {training['test_accuracy']:.4f}")
    update_report(path, config=config,
                  model={"name": model.name, "params": costs["params"], "macs": costs["macs"]},
                  training=training, figures=["training_curves.png"])
    return path, model, dataset
