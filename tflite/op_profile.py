"""Where a ``.tflite`` file's time goes, operator by operator, under LiteRT with XNNPACK.

LiteRT's Python ``Interpreter`` (ai-edge-litert 2.3) has no op profiler (its
``experimental_force_delegate_node_profiling`` switch has no Python reader), and no maintained tool
fills the gap for Python 3.11 on Linux x86-64 (checked on PyPI): the C++ ``benchmark_model``
with ``--enable_op_profiling`` ships in no wheel; ai-edge-litert's own
``tools/benchmark_litert_model.py`` times whole models only; ``litert-cli`` 0.2.1 downloads a
prebuilt ``benchmark_model`` from the web at run time (and pins ai-edge-litert 2.2);
``edge-compat`` 0.1.0 is a static GPU/NPU delegate linter with device cards; ``tflite-runtime``
2.14 has the same profiler-less interpreter. So this module times sub-graphs itself:

1. A probe interpreter (``experimental_disable_delegate_node_fusion``: each operator XNNPACK
   takes becomes a ``DELEGATE`` node of its own with the operator's outputs;
   ``experimental_preserve_all_tensors``) runs the model once on a random input. An operator is
   on XNNPACK iff a ``DELEGATE`` node has exactly its outputs; otherwise TFLite's built-in kernel
   runs it. Every intermediate tensor of that run is kept.
2. Each operator of subgraph 0 becomes a model of its own: the operator, its constant inputs as
   buffers, its other inputs as the model's inputs (quantization kept), its outputs as outputs
   (other subgraphs stay, so control-flow ops keep their bodies). It runs under the default
   interpreter (XNNPACK when it takes the op, the requested threads), fed the inputs the op
   saw in the probe run: random values propagated through the model, so data-dependent ops
   (shape arithmetic, non-maximum suppression) get valid inputs. An operator whose model does
   not load or run (a custom op the runtime lacks, say) is reported as not separately timeable.
3. The single-op models, the whole model (default interpreter, same threads) and a trivial
   model (one ADD of two 1-element floats) are each invoked ``warmup`` times, then ``runs``
   timed ``invoke()`` calls are split over ``rounds`` interleaved rounds (every model a few
   calls per round), so a noisy neighbour slows all of them alike. An operator's time is its
   median minus the trivial model's median (the per-invoke overhead of the Python call, reported
   as ``overhead_ms``; about half a microsecond), floored at 0. An operator whose single-op model
   runs on the other side of XNNPACK than in the whole model gets a ``note`` saying so.

An operator timed alone has its weights and inputs hot in cache and no partition boundary
around it, so the sum of the operators is not the whole model's time; both are reported
(``sum_of_ops_ms``, ``whole_model_ms``) to show how well the parts add up (MobileNetV3-Large at 224
on 2 threads of a shared 2-core x86 machine: 0.7-0.9x). ``segments`` are the
contiguous runs of operators XNNPACK takes or leaves, in execution order: the pieces the
interpreter alternates between (``xnnpack_partitions`` counts the XNNPACK partitions it really
makes with node fusion on, which may merge non-adjacent operators).
"""
import copy
import os
import statistics
import time
import warnings

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.tools import flatbuffer_utils

from demo_app.native_log import forward, native_stderr
from demo_app.runtime import TFLITE_IDENTIFIER, one_line
from tflite.bench import runs_per_round


def _interpreter(threads, model_bytes, **options):
    """A ready interpreter of ``model_bytes`` (tensors allocated); the runtime's INFO lines and its
    warning that preserving all tensors is for debugging are dropped."""
    with native_stderr() as log, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        interpreter = Interpreter(model_content=model_bytes, num_threads=threads, **options)
        interpreter.allocate_tensors()
    forward(log, is_noise=lambda line: line.startswith("INFO: "))
    return interpreter


def _random(shape, dtype, rng):
    """Random values of ``dtype``: uniform in [-1, 1] for floats, the whole range for integers."""
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(-1.0, 1.0, shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def _feed(interpreter, rng):
    """Set every input of ``interpreter`` to random values; return them by tensor index."""
    values = {d["index"]: _random(d["shape"], d["dtype"], rng) for d in interpreter.get_input_details()}
    for index, value in values.items():
        interpreter.set_tensor(index, value)
    return values


def read_model(path):
    """``(model_bytes, ModelT)`` of ``path``; a one-line ValueError when it is not a .tflite model."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path} (expected a .tflite file)")
    with open(path, "rb") as f:
        data = f.read()
    if data[4:8] != TFLITE_IDENTIFIER:
        raise ValueError(f"{path} is not a TFLite model: expected a .tflite flatbuffer "
                         f"(file identifier {TFLITE_IDENTIFIER.decode()!r} at bytes 4..8)")
    try:
        return data, flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    except Exception as error:  # flatbuffers raises whatever a corrupt offset leads to
        raise ValueError(f"cannot read TFLite model {path}: {one_line(error)} (expected a valid .tflite file)")


def is_constant(model, tensor):
    """Whether ``tensor`` (a TensorT of ``model``) holds data in the file (weights, biases, shapes)."""
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


def single_op_model(model, index):
    """``(model_bytes, inputs)``: ``model`` (a ModelT) cut down to operator ``index`` of subgraph 0,
    and the tensors of ``model`` that feed the cut model's inputs, in their order.

    The operator keeps its constant inputs; its other inputs become the model's inputs and its
    outputs the model's outputs. Other subgraphs, operator codes and buffer indices stay as they
    are; buffers no kept tensor uses are emptied, and signatures and metadata dropped.
    """
    graph = model.subgraphs[0]
    op = copy.copy(graph.operators[index])
    kept = list(dict.fromkeys(t for t in [*op.inputs, *op.outputs, *(op.intermediates or [])] if t >= 0))
    inputs = [t for t in dict.fromkeys(op.inputs) if t >= 0 and not is_constant(model, graph.tensors[t])
              and not graph.tensors[t].isVariable]
    renumber = {t: i for i, t in enumerate(kept)}.get
    op.inputs, op.outputs = [renumber(t, -1) for t in op.inputs], [renumber(t) for t in op.outputs]
    op.intermediates = [renumber(t) for t in op.intermediates] if op.intermediates else op.intermediates
    sub = copy.copy(graph)
    sub.tensors, sub.operators, sub.inputs, sub.outputs = [graph.tensors[t] for t in kept], [op], \
        [renumber(t) for t in inputs], op.outputs
    out = copy.copy(model)
    out.subgraphs = [sub, *model.subgraphs[1:]]
    used = {t.buffer for g in out.subgraphs for t in g.tensors}
    out.buffers = [b if i in used else schema.BufferT() for i, b in enumerate(model.buffers)]
    out.metadata = out.signatureDefs = out.metadataBuffer = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(out)), inputs


def _trivial_model():
    """Bytes of a model of one ADD of two 1-element float tensors: an invoke that does no work."""
    model, graph, op, code = schema.ModelT(), schema.SubGraphT(), schema.OperatorT(), schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    code.version = 1
    graph.tensors = []
    for name in (b"a", b"b", b"sum"):
        tensor = schema.TensorT()
        tensor.shape, tensor.type, tensor.buffer, tensor.name = [1], schema.TensorType.FLOAT32, 0, name
        graph.tensors.append(tensor)
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.AddOptions, schema.AddOptionsT()
    graph.operators, graph.inputs, graph.outputs = [op], [0, 1], [2]
    model.version, model.operatorCodes, model.buffers, model.subgraphs = 3, [code], [schema.BufferT()], [graph]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _delegated(interpreter):
    """``(operators, indices XNNPACK takes, DELEGATE nodes)`` of an allocated interpreter."""
    details = interpreter._get_ops_details()
    delegates = [tuple(d["outputs"]) for d in details if d["op_name"] == "DELEGATE"]
    operators = [d for d in details if d["op_name"] != "DELEGATE"]
    return operators, {d["index"] for d in operators if tuple(d["outputs"]) in set(delegates)}, len(delegates)


def xnnpack_coverage(model_bytes):
    """``[(op name, on XNNPACK)]`` for each operator of subgraph 0, in order (step 1 above)."""
    operators, delegated, _ = _delegated(_interpreter(1, model_bytes, experimental_disable_delegate_node_fusion=True))
    return [(d["op_name"], d["index"] in delegated) for d in operators]


def _time(interpreters, shares, warmup, progress):
    """Median ``invoke()`` ms of each interpreter: ``warmup`` untimed calls, then interleaved rounds
    of ``shares[i]`` timed calls each."""
    for interpreter in interpreters:
        for _ in range(warmup):
            interpreter.invoke()
    times = [[] for _ in interpreters]
    for number, share in enumerate(shares, 1):
        progress(f"op profile round {number}/{len(shares)}: {len(interpreters)} models")
        for interpreter, samples in zip(interpreters, times):
            for _ in range(share):
                start = time.perf_counter()
                interpreter.invoke()
                samples.append(time.perf_counter() - start)
    return [statistics.median(samples) * 1e3 for samples in times]


def _single_op_interpreter(model, index, probe, threads):
    """A ready interpreter of operator ``index`` alone, fed its inputs from the ``probe`` run; it
    has run once, so a kernel that fails at invoke fails here."""
    model_bytes, inputs = single_op_model(model, index)
    single = _interpreter(threads, model_bytes)
    for detail, tensor in zip(single.get_input_details(), inputs):
        single.set_tensor(detail["index"], probe.get_tensor(tensor))
    single.invoke()
    return single


def _tensor(details):
    return {"shape": [int(d) for d in details["shape"]], "dtype": np.dtype(details["dtype"]).name}


def _summaries(rows, total):
    """Per op type (slowest first) and per segment of operators XNNPACK takes or leaves."""
    types = {}
    for row in rows:
        entry = types.setdefault(row["op"], {"op": row["op"], "count": 0, "xnnpack": 0, "untimed": 0, "ms": 0.0})
        entry["count"] += 1
        entry["xnnpack"] += row["xnnpack"]
        entry["untimed"] += row["ms"] is None
        entry["ms"] += row["ms"] or 0.0
    for entry in types.values():
        entry["share"] = entry["ms"] / total if total else 0.0
    segments = []
    for row in rows:
        if not segments or segments[-1]["xnnpack"] != row["xnnpack"]:
            segments.append({"xnnpack": row["xnnpack"], "first": row["index"], "ops": 0, "ms": 0.0})
        segments[-1].update(last=row["index"], ops=segments[-1]["ops"] + 1, ms=segments[-1]["ms"] + (row["ms"] or 0.0))
    return sorted(types.values(), key=lambda e: -e["ms"]), segments


def profile_ops(path, threads=2, runs=50, warmup=5, rounds=3, seed=0, progress=print):
    """Profile ``path`` operator by operator (see the module docstring); a JSON-ready dict.

    Keys: ``model``, ``threads``, ``runs``, ``rounds``; ``whole_model_ms`` (median invoke of the
    whole model), ``sum_of_ops_ms``, ``sum_over_whole``, ``overhead_ms`` (median invoke of a
    trivial model, subtracted from each operator's), ``xnnpack_partitions``; ``ops``: one row per
    operator (``index``, ``op``, ``inputs`` / ``outputs`` as ``shape``/``dtype``, ``xnnpack``,
    ``invoke_ms``, ``ms`` -- None when not separately timeable, with the reason in ``note``);
    ``op_types``: ``op``, ``count``, ``xnnpack`` (how many on XNNPACK), ``untimed``, ``ms``,
    ``share`` of the sum, slowest first; ``segments``: ``xnnpack``, ``first``, ``last``, ``ops``, ``ms``.
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    shares = runs_per_round(runs, rounds)
    data, model = read_model(path)
    try:
        probe = _interpreter(threads, data, experimental_disable_delegate_node_fusion=True,
                             experimental_preserve_all_tensors=True)
        whole = _interpreter(threads, data)
        for index, value in _feed(probe, np.random.default_rng(seed)).items():
            whole.set_tensor(index, value)
        probe.invoke()
        operators, taken, _ = _delegated(probe)
        tensors = {d["index"]: d for d in probe.get_tensor_details()}  # a garbled tensor name raises here
    except Exception as error:  # the runtime raises RuntimeError/ValueError for files it cannot run
        raise ValueError(f"cannot run TFLite model {path}: {one_line(error)} (expected a valid .tflite file)")
    graph = model.subgraphs[0]
    rows, timed = [], []
    progress(f"op profile: building {len(operators)} single-op models of {path}")
    for op in operators:
        index = op["index"]
        row = {"index": index, "op": op["op_name"],
               "inputs": [{**_tensor(tensors[t]), "constant": is_constant(model, graph.tensors[t])}
                          for t in op["inputs"] if t >= 0],
               "outputs": [_tensor(tensors[t]) for t in op["outputs"]],
               "xnnpack": index in taken, "invoke_ms": None, "ms": None, "note": ""}
        try:
            single = _single_op_interpreter(model, index, probe, threads)
        except Exception as error:  # a custom op the runtime lacks, a kernel that refuses the cut
            row["note"] = f"not separately timeable: {one_line(error)}"
        else:
            timed.append((row, single))
            if (0 in _delegated(single)[1]) != row["xnnpack"]:
                row["note"] = (f"timed {'on' if not row['xnnpack'] else 'off'} XNNPACK, which the whole model "
                               f"{'does not use' if not row['xnnpack'] else 'uses'} for it")
        rows.append(row)
    medians = _time([_interpreter(threads, _trivial_model()), whole] + [s for _, s in timed], shares, warmup,
                    progress)
    overhead, whole_ms = medians[0], medians[1]
    for (row, _), median in zip(timed, medians[2:]):
        row["invoke_ms"], row["ms"] = median, max(median - overhead, 0.0)
    total = sum(row["ms"] or 0.0 for row in rows)
    op_types, segments = _summaries(rows, total)
    return {"model": str(path), "threads": threads, "runs": runs, "rounds": rounds, "whole_model_ms": whole_ms,
            "sum_of_ops_ms": total, "sum_over_whole": total / whole_ms, "overhead_ms": overhead,
            "xnnpack_partitions": _delegated(whole)[2], "ops": rows, "op_types": op_types, "segments": segments}
