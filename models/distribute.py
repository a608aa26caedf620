"""Training past one device: the ``tf.distribute`` strategy a run names, and which worker writes.

``make_strategy(name)`` for ``STRATEGIES``:

    default      TensorFlow's default strategy (one device)
    mirrored     ``MirroredStrategy``: synchronous data parallelism over all local GPUs
                 (the CPU when there is none)
    multiworker  ``MultiWorkerMirroredStrategy``: the same over the workers ``TF_CONFIG`` lists
    tpu          ``TPUStrategy`` on the attached TPU

The model is built and compiled inside ``strategy.scope()``; each step's global batch is the
per-replica batch times ``strategy.num_replicas_in_sync``. In a multi-worker cluster every
worker runs the same training, the chief writes the run folder and the others write to a
temporary folder that is removed (``worker_folder``), as TensorFlow's multi-worker guide does:
https://www.tensorflow.org/guide/distributed_training and
https://www.tensorflow.org/tutorials/distribute/multi_worker_with_keras
"""
import contextlib
import json
import os
import shutil
import tempfile

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def check_strategy(name):
    """``name`` when it is one of ``STRATEGIES``, else a one-line error."""
    if name not in STRATEGIES:
        raise ValueError(f"--strategy {name} is not a strategy: expected one of {', '.join(STRATEGIES)}")
    return name


def cluster():
    """The parsed ``TF_CONFIG`` environment variable (``{}`` when unset), or a one-line error."""
    text = os.environ.get("TF_CONFIG", "").strip()
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error}): expected {{'cluster': ..., 'task': ...}}") from None


def is_chief_task(config):
    """Whether the task of a ``TF_CONFIG`` dict is the chief: the ``chief`` task when the cluster
    has one, else worker 0 (no ``TF_CONFIG``: the only process, the chief)."""
    task = config.get("task", {})
    task_type, index = task.get("type"), int(task.get("index", 0))
    if task_type is None:
        return True
    return task_type == "chief" if "chief" in config.get("cluster", {}) else (task_type == "worker" and index == 0)


def _tpu_strategy():
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        message = " ".join(str(error).split())
        raise ValueError(f"--strategy tpu needs an attached TPU: none found ({message})") from None
    return tf.distribute.TPUStrategy(resolver)


def make_strategy(name="default"):
    """The ``tf.distribute`` strategy called ``name`` (see the module docstring)."""
    check_strategy(name)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        config = cluster()
        if len(config.get("cluster", {}).get("worker", [])) + len(config.get("cluster", {}).get("chief", [])) < 1:
            raise ValueError("--strategy multiworker needs TF_CONFIG naming the cluster's workers and this task: "
                             "expected {'cluster': {'worker': ['host:port', ...]}, 'task': {'type': 'worker', "
                             "'index': 0}}")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _tpu_strategy()
    return tf.distribute.get_strategy()


@contextlib.contextmanager
def worker_folder(path, chief):
    """Yield ``path`` (created) on the chief; elsewhere a temporary folder, removed afterwards."""
    if chief:
        os.makedirs(path, exist_ok=True)
        yield path
        return
    folder = tempfile.mkdtemp(prefix="worker-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
