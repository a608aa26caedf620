"""NumPy references for ConformalLayers (Sousa et al., SIBGRAPI 2021), shared by the Keras 3 and
tf_keras tests: ReSPro from its geometry, and a network evaluated layer by layer in homogeneous
coordinates with explicit loops (nothing from keras_layers.conformal)."""
import numpy as np


def respro_geometric(x, alpha):
    """Stereographic projection of each sample onto the sphere of radius alpha (from its north
    pole), orthogonal projection back onto R^n, scaled by 1/alpha."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    squared = np.sum(flat * flat, axis=1, keepdims=True)
    on_sphere = 2 * alpha ** 2 * flat / (squared + alpha ** 2)  # Euclidean part of the point on the sphere
    return (on_sphere / alpha).reshape(x.shape)


def convolve(x, kernel, strides):
    """Valid cross-correlation of (B, H, W, C) ``x`` with a (kh, kw, C, C_out) kernel."""
    kh, kw = kernel.shape[:2]
    rows = range(0, x.shape[1] - kh + 1, strides[0])
    cols = range(0, x.shape[2] - kw + 1, strides[1])
    return np.stack([np.stack([np.einsum("bhwc,hwco->bo", x[:, i:i + kh, j:j + kw], kernel) for j in cols], axis=1)
                     for i in rows], axis=1)


def average_pool(x, size, strides):
    channels = x.shape[-1]
    return convolve(x, np.ones((*size, 1, 1)) / np.prod(size) * np.eye(channels), strides)


def network(x, steps):
    """``steps``: ("conv", kernel, strides), ("pool", size, strides) or ("respro", alpha or None)."""
    x = x.astype(np.float64)
    w = np.sqrt(np.sum(x * x, axis=(1, 2, 3)))
    bound = 1.0
    for step in steps:
        if step[0] == "conv":
            x = convolve(x, step[1], step[2])
            bound *= np.sqrt(np.sum(np.sum(np.abs(step[1]), axis=(0, 1)) ** 2))  # Young's inequality
        elif step[0] == "pool":
            x = average_pool(x, step[1], step[2])
        else:
            alpha = bound if step[1] is None else step[1]
            w = alpha / 2 * w + np.sum(x * x, axis=(1, 2, 3)) / (2 * alpha)
            bound = 1.0
    return x / w[:, None, None, None]


def steps_of(conformal_layers):
    """The reference steps of a built ``ConformalLayers`` (dropout: the identity at inference)."""
    steps = []
    for layer in conformal_layers.sequence:
        kind = type(layer).__name__
        if kind == "Conv2D":
            steps.append(("conv", layer.get_weights()[0].astype(np.float64), tuple(layer.strides)))
        elif kind == "AveragePooling2D":
            steps.append(("pool", tuple(layer.pool_size), tuple(layer.strides)))
        elif kind == "ReSPro":
            steps.append(("respro", layer.alpha))
    return steps
