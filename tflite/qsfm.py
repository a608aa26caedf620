"""QSFM filter pruning: remove filters whose feature maps copy other maps, physically.

Wang et al., "Model Pruning Based on Quantified Similarity of Feature Maps" (2021): a layer's
output is a 3-D tensor of C feature maps; when two maps carry the same information one of the
two filters is redundant. QSFM quantifies the similarity of every pair of maps of a layer on
calibration images, removes the redundant filters without fine-tuning (ResNet-56 on CIFAR-10:
-48.7% FLOPs, -57.9% parameters, -0.54 points top-1) and handles depthwise-separable layers
(MobileNetV2: 1.53x faster on device).

Here, for each prunable channel group (below), on calibration images, group after group:

1. Similarity. With F_k the k-th map (all images and positions flattened), the similarity of
   map j to the other maps is the coefficient of determination R_j^2 of the best affine fit
   of F_j from them (the paper's pairwise similarity is its one-map case): 1 exactly when map j
   is a scaled, shifted copy of another map or a mix of them; a dead (constant) map has it 1 too.
2. Selection. Greedily, the map with the least ``||W_next[j]||^2 (1 - R_j^2) var(F_j)`` (what
   is lost at the next layer if it goes) is removed and the similarities recomputed among the
   rest, until ``ratio`` of the group's channels are gone.
3. Compensation. The next layer (the consumer, linear in its input) is refitted so that the
   kept maps stand in for all the original ones: by least squares ``F ~ F_kept A + b``, its
   rows become ``W'_k = sum_c A_kc W_c`` and the constant ``sum_c b_c sum(W_c)`` goes into its
   bias, or into the moving mean of the batch norm right after it. Exact when the removed maps
   are affine copies (up to the zero padding at the borders of a k x k consumer). The kept maps
   are those of the network already pruned upstream and the targets those of the original
   network, so errors do not pile up along the depth.
4. Removal. A new model is built from the config with fewer filters in the producer
   convolution; the batch norms and depthwise convolutions between it and the consumer lose
   the same channels, the consumer loses the matching input channels. Weights are sliced from
   the compensated ones.

A channel group is found from the graph: a Conv2D whose output runs through channel-wise
layers only (batch norm, activations, depthwise convolutions, zero padding, global average
pooling), each used once, into one convolution or dense layer. That is the inner width of a
ResNet basic block, the expansion of a MobileNetV2 inverted residual (expand -> depthwise ->
project) and every layer of a plain CNN, such as an RMNet
(``models.reparameterize.plain_network``); outputs that feed a residual addition are left
alone (their width is tied to the shortcut). Works under both Keras generations; ``fine_tune``
from ``tflite.qat`` can follow.
"""
from typing import NamedTuple

import numpy as np

from keras_layers.keras_api import keras
from models.profile import leaf_layers
from tflite.qat_tfmot import inbound_names, output_names

layers = keras.layers
CHANNELWISE = (layers.BatchNormalization, layers.ReLU, layers.Activation, layers.DepthwiseConv2D,
               layers.ZeroPadding2D)
POOLING = (layers.GlobalAveragePooling2D,)  # linear, so compensation passes through it
NOT_MEASURED = POOLING + (layers.ZeroPadding2D,)  # the maps are compared before pooling and padding


class ChannelGroup(NamedTuple):
    """A producer convolution, the channel-wise layers after it, and the layer consuming its channels."""

    producer: str
    followers: tuple
    measure: str  # the layer whose output the consumer reads (the maps compared)
    consumer: str
    after_consumer: str  # the batch norm right after the consumer, or ""


def _is_channelwise(layer):
    if isinstance(layer, layers.DepthwiseConv2D) and layer.depth_multiplier != 1:
        return False
    return isinstance(layer, CHANNELWISE) or type(layer).__name__ in ("HardSwish", "HardSigmoid")


def backbone(model):
    """``(preprocess, graph)``: the functional graph holding the layers, and a function taking
    the model's inputs to that graph's inputs (identity for a flat model; the scaling layers of
    ``models.train.with_preprocessing`` otherwise)."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if not nested:
        return (lambda x: x), model
    if len(nested) > 1 or model.layers[-1] is not nested[0]:
        raise ValueError(f"model {model.name} nests its layers in an unsupported way: expected preprocessing "
                         "layers followed by one functional backbone")
    prefix = list(model.layers[1:-1])

    def preprocess(x):
        for layer in prefix:
            x = layer(x)
        return x

    return preprocess, nested[0]


def _successors(graph):
    config = graph.get_config()["layers"]
    successors = {entry["name"]: [] for entry in config}
    for entry in config:
        for name in inbound_names(entry["inbound_nodes"]):
            successors[name].append(entry["name"])
    return successors, set(output_names(graph.get_config()))


def channel_groups(model):
    """The prunable ``ChannelGroup``s of ``model`` (see the module docstring), in graph order."""
    _, graph = backbone(model)
    successors, outputs = _successors(graph)
    groups = []
    for layer in graph.layers:
        if type(layer) is not layers.Conv2D or layer.groups != 1:
            continue
        followers, name = [], layer.name
        while len(successors[name]) == 1 and name not in outputs:
            nxt = graph.get_layer(successors[name][0])
            if type(nxt) in (layers.Conv2D, layers.Dense) and getattr(nxt, "groups", 1) == 1:
                after = successors[nxt.name]
                bn = after[0] if len(after) == 1 and isinstance(graph.get_layer(after[0]), layers.BatchNormalization) \
                    else ""
                pooled = [f for f in followers if isinstance(graph.get_layer(f), POOLING)]
                if not isinstance(nxt, layers.Dense) or pooled:
                    maps = [f for f in followers if not isinstance(graph.get_layer(f), NOT_MEASURED)]
                    measure = (maps or [layer.name])[-1]
                    groups.append(ChannelGroup(layer.name, tuple(followers), measure, nxt.name, bn))
                break
            if not (_is_channelwise(nxt) or isinstance(nxt, POOLING)):
                break
            followers.append(nxt.name)
            name = nxt.name
    return groups


def feature_maps(model, names, images, batch_size=64):
    """Outputs of the layers ``names`` of ``model`` on ``images``, as {name: (N, H, W, C) array}."""
    preprocess, graph = backbone(model)
    probe = keras.Model(graph.inputs[0], [graph.get_layer(name).output for name in names])
    maps = {name: [] for name in names}
    for start in range(0, len(images), batch_size):
        outputs = probe(preprocess(np.asarray(images[start:start + batch_size], np.float32)), training=False)
        for name, output in zip(names, outputs if len(names) > 1 else [outputs]):
            maps[name].append(np.asarray(output))
    return {name: np.concatenate(parts) for name, parts in maps.items()}


def _covariance(maps):
    """Mean, covariance and a tiny ridge (keeps dependent maps invertible) of maps (..., C)."""
    x = maps.reshape(-1, maps.shape[-1]).astype(np.float64)
    cov = np.cov(x, rowvar=False, bias=True)
    return x.mean(0), cov, 1e-6 * (np.trace(cov) / len(cov) + 1e-12)


def select_redundant(maps, consumer_norms, ratio):
    """Greedy QSFM selection of ``ratio`` of the maps (..., C); their indices in removal order.

    Each step removes the map j most similar to the remaining maps, weighted by what it feeds
    forward: the smallest ``||W_next[j]||^2 (1 - R_j^2) var(F_j)``. ``R_j^2`` is the coefficient
    of determination of F_j given the other remaining maps (the pairwise similarity of the paper
    is its one-map case), and ``(1 - R_j^2) var(F_j) = 1 / (S^-1)_jj`` with S their covariance.
    A dead (constant) map or an exact affine copy of another map costs 0 and goes first.
    """
    channels = maps.shape[-1]
    count = min(int(round(ratio * channels)), channels - 1)
    _, cov, ridge = _covariance(maps)
    kept, removed = list(range(channels)), []
    for _ in range(count):
        precision = np.diag(np.linalg.inv(cov[np.ix_(kept, kept)] + ridge * np.eye(len(kept))))
        j = kept[int(np.argmin(consumer_norms[kept] ** 2 / precision))]
        kept.remove(j)
        removed.append(j)
    return removed


def reconstruction(sources, targets):
    """Least-squares ``(A, b)`` with ``targets ~ sources @ A + b`` for maps (..., K) and (..., C).

    ``A = S_ss^-1 S_st``, ``b = mean_t - mean_s A`` from the joint covariance (a tiny ridge keeps
    S_ss invertible when sources are themselves dependent). A removed map that is an affine copy
    of a kept one gets exactly that copy; otherwise the best linear stand-in from all kept maps.
    """
    joint = np.concatenate([sources, targets], axis=-1)
    mean, cov, ridge = _covariance(joint)
    k = sources.shape[-1]
    a = np.linalg.solve(cov[:k, :k] + ridge * np.eye(k), cov[:k, k:])
    return a, mean[k:] - mean[:k] @ a


def _compensate(consumer_weights, bn_weights, kept, a, b):
    """The consumer's (and its batch norm's) weights reading only the ``kept`` maps, which stand in
    for all the original maps through ``maps ~ kept_maps A + b``: rows ``W'_k = sum_c A_kc W_c``
    (the others 0) and the constant ``sum_c b_c sum(W_c)`` moved into the bias or the batch norm."""
    kernel = np.array(consumer_weights[0], np.float64)
    rows = np.moveaxis(kernel, -2, 0)  # (C_in, ..., C_out)
    new_rows = np.zeros_like(rows)
    new_rows[kept] = np.tensordot(a, rows, axes=([1], [0]))
    shift = np.tensordot(b, rows, axes=([0], [0])).reshape(-1, kernel.shape[-1]).sum(0)
    new_kernel = np.moveaxis(new_rows, 0, -2).astype(consumer_weights[0].dtype)
    if len(consumer_weights) > 1:
        return [new_kernel, consumer_weights[1] + shift], bn_weights
    if bn_weights is None:
        return [new_kernel], bn_weights
    new_bn = list(bn_weights)
    new_bn[-2] = bn_weights[-2] - shift  # BN(y - s) with mean - s is BN(y) with mean
    return [new_kernel], new_bn


def _rebuilt(model, filters):
    """A new model from ``model``'s config with ``filters[name]`` filters in the named Conv2D layers."""
    config = model.get_config()

    def visit(node):
        if isinstance(node, dict):
            node.pop("build_config", None)  # Keras 3 would build each layer at its old width
            inner = node.get("config")
            if isinstance(inner, dict) and inner.get("name") in filters and node.get("class_name") == "Conv2D":
                inner["filters"] = filters[inner["name"]]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(config)
    return type(model).from_config(config)


def _slice(weight, target_shape, keep_out, keep_in, consumer):
    """Slice an old weight to the new shape: input channels (axis -2 of a consumer) by ``keep_in``,
    the rest of the changed axes by ``keep_out``."""
    weight = np.asarray(weight)
    for axis, (old, new) in enumerate(zip(weight.shape, target_shape)):
        if old != new:
            keep = keep_in if consumer and axis == weight.ndim - 2 else keep_out
            weight = np.take(weight, keep, axis=axis)
    return weight


def qsfm_prune(model, images, ratio=0.5, groups=None):
    """Remove ``ratio`` of the channels of each channel group (all by default) by QSFM.

    Args:
        model: a built functional classifier (flat, or wrapped by ``with_preprocessing``).
        images: calibration images in the model's input range.
        ratio: fraction of each group's channels to remove (0 keeps the model), or a dict
            {producer name: ratio}.
        groups: the ``ChannelGroup``s to prune (default ``channel_groups(model)``).
    Returns:
        ``(pruned_model, plan)``: a new, smaller model and {producer: kept channel indices}.
    """
    groups = channel_groups(model) if groups is None else groups
    ratios = ratio if isinstance(ratio, dict) else {group.producer: ratio for group in groups}
    if any(not 0.0 <= r < 1.0 for r in ratios.values()):
        raise ValueError(f"QSFM ratio must be in [0, 1), got {ratio!r}")
    if len(images) == 0:
        raise ValueError("QSFM needs calibration images (got none)")
    active = [g for g in groups if ratios.get(g.producer, 0.0) > 0]
    original = feature_maps(model, [g.measure for g in active], images) if active else {}
    work = keras.models.clone_model(model)  # pruned in place (removed rows zeroed), at full width
    work.set_weights(model.get_weights())
    twin = {layer.name: copy for layer, copy in zip(leaf_layers(model), leaf_layers(work))}  # clones may rename
    keep_out, keep_in, filters = {}, {}, {}
    for group in active:
        measure = twin[group.measure].name
        current = feature_maps(work, [measure], images)[measure]
        consumer, bn = twin[group.consumer], None
        kernel = consumer.get_weights()[0]
        norms = np.linalg.norm(np.moveaxis(kernel, -2, 0).reshape(kernel.shape[-2], -1), axis=1)
        removed = select_redundant(current, norms, ratios[group.producer])
        keep = np.array(sorted(set(range(kernel.shape[-2])) - set(removed)))
        a, b = reconstruction(current[..., keep], original[group.measure])
        if group.after_consumer:
            bn = twin[group.after_consumer]
        new_consumer, new_bn = _compensate(consumer.get_weights(), bn and bn.get_weights(), keep, a, b)
        consumer.set_weights(new_consumer)
        if bn is not None:
            bn.set_weights(new_bn)
        for name in (group.producer, *group.followers):
            keep_out[name] = keep
        keep_in[group.consumer] = keep
        filters[group.producer] = len(keep)
    weights = {name: layer.get_weights() for name, layer in twin.items()}
    pruned = _rebuilt(model, filters)
    for layer in leaf_layers(pruned):
        old = weights[layer.name]
        layer.set_weights([_slice(w, t.shape, keep_out.get(layer.name), keep_in.get(layer.name),
                                  layer.name in keep_in) for w, t in zip(old, layer.weights)])
    return pruned, {name: keep.tolist() for name, keep in keep_out.items() if name in filters}
