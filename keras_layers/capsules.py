"""Capsule fully connected layers with XNOR-ized linear projectors: XnODR and XnIDR (Sun,
Fard and Mahoor, "XnODR and XnIDR: Two Accurate and Fast Fully Connected Layers for
Convolutional Neural Networks", 2021), built on the routing-by-agreement of Sabour, Frosst
and Hinton ("Dynamic Routing Between Capsules", NeurIPS 2017).

A capsule is a vector whose length is the probability that an entity is present. A capsule
FC layer maps N input capsules u_i (dimension D) to M output capsules v_j (dimension E):

    prediction vectors   u^_j|i = W_ij u_i                        (W_ij: D x E, the linear projector)
    routing, r rounds    c_ij = softmax_j(b_ij)
                         s_j = sum_i c_ij u^_j|i,   v_j = squash(s_j)
                         b_ij += u^_j|i . v_j                     (agreement; b starts at 0)
    squash(s) = |s|^2 / (1 + |s|^2) * s / |s|

XnODR xnorizes the projector outside the routing (XNOR-Net, Rastegari et al. 2016): u^_j|i =
K_i alpha_ij (sign(W_ij)^T sign(u_i)), with K_i = mean|u_i| and alpha_ij = mean|W_ij| per
output coordinate, so the D x E products are XNOR-popcounts; the routing stays in float.
XnIDR xnorizes the projection inside the routing: the weighted sum and the agreement use
u^_j|i ~ beta_ij sign(u^_j|i) with beta_ij = mean|u^_j|i|, while W_ij u_i stays in float.
Signs use the straight-through estimator (``keras_layers.quantizers.ste_sign``).

Layers here: ``Squash`` (the capsule nonlinearity as a layer, after primary capsules),
``XNODR``, ``XNIDR`` (the FC layers) and ``CapsuleLength`` (class probabilities from the
output capsules).
"""
import math

import tensorflow as tf

from keras_layers.keras_api import keras, serializable
from keras_layers.quantizers import FLOAT_BITS, ste_sign

layers = keras.layers

EPSILON = 1e-12


def squash(s, axis=-1):
    """Sabour et al.'s squash: |s|^2 / (1 + |s|^2) * s / |s| along ``axis`` (0 stays 0)."""
    squared_norm = tf.reduce_sum(tf.square(s), axis=axis, keepdims=True)
    # s |s| / (1 + |s|^2): no 1 / |s| factor, whose range int8 cannot hold for short vectors
    return s * tf.sqrt(squared_norm + EPSILON) / (1.0 + squared_norm)


def xnor_scaled_sign(x, axis=-1):
    """XNOR-Net's binary approximation mean(|x|) sign(x), the mean taken along ``axis``.

    The scale is a constant for the gradient (XNOR-Net computes it from the forward values).
    """
    return tf.stop_gradient(tf.reduce_mean(tf.abs(x), axis=axis, keepdims=True)) * ste_sign(x)


def dynamic_routing(predictions, iterations, agreement_of=lambda u_hat: u_hat):
    """Routing by agreement over ``predictions`` u^ of shape (batch, N, M, E); returns v (batch, M, E).

    ``agreement_of(u_hat)`` is what the weighted sum and the agreement see (XnIDR passes the
    xnorized predictions); the softmax runs over the M output capsules (the last axis of b).
    """
    routed = agreement_of(predictions)
    logits = tf.zeros_like(routed[..., 0])  # b_ij, (batch, N, M)
    for iteration in range(iterations):
        coupling = tf.nn.softmax(logits, axis=-1)
        outputs = squash(tf.einsum("bnm,bnme->bme", coupling, routed))
        if iteration < iterations - 1:
            logits = logits + tf.einsum("bnme,bme->bnm", routed, outputs)
    return outputs


@serializable
class Squash(layers.Layer):
    """The squash nonlinearity over the last axis (capsule vectors), as a layer."""

    def call(self, inputs):
        return squash(inputs)


class _CapsuleFC(layers.Layer):
    """Shared part of XnODR and XnIDR: the weights W (N, M, D, E) and the routing."""

    def __init__(self, capsules, dim, routings=3, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if capsules < 1 or dim < 1 or routings < 1:
            raise ValueError(f"{type(self).__name__} needs capsules, dim and routings >= 1, "
                             f"got {capsules}, {dim}, {routings}")
        self.capsules, self.dim, self.routings = capsules, dim, routings
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(f"{type(self).__name__} expects capsules (batch, count, dim) with known count and dim, "
                             f"got {tuple(input_shape)}")
        self.input_capsules, self.input_dim = int(input_shape[1]), int(input_shape[2])
        self.kernel = self.add_weight(name="kernel", shape=(self.input_capsules, self.capsules, self.input_dim,
                                                            self.dim),
                                      initializer=self.kernel_initializer, trainable=True)
        super().build(input_shape)

    def project(self, inputs, kernel):
        """u^_j|i = W_ij^T u_i: (batch, N, D) x (N, M, D, E) -> (batch, N, M, E)."""
        return tf.einsum("bnd,nmde->bnme", inputs, kernel)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.capsules, self.dim)

    def projection_macs(self):
        return self.input_capsules * self.capsules * self.input_dim * self.dim

    def routing_macs(self):
        """Weighted sums (every round) and agreements (all rounds but the last)."""
        return (2 * self.routings - 1) * self.input_capsules * self.capsules * self.dim

    def count_macs(self):
        return self.projection_macs() + self.routing_macs()

    def get_config(self):
        return {**super().get_config(), "capsules": self.capsules, "dim": self.dim, "routings": self.routings,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@serializable
class XNODR(_CapsuleFC):
    """XnODR: capsule FC layer whose linear projector (outside the routing) is XNOR-ized.

    u^_j|i = (K_i sign(u_i)) (alpha_ij sign(W_ij)): both operands binary with XNOR-Net scales
    (K_i = mean |u_i| over the capsule's D coordinates; alpha_ij = mean |W_ij| over D, one per
    output coordinate); the routing then runs in float.

    Args:
        capsules: M, output capsules (the classes in a classifier head).
        dim: E, dimension of the output capsules.
        routings: r, routing rounds (3 in Sabour et al.).
    """

    def call(self, inputs):
        kernel = xnor_scaled_sign(self.kernel, axis=2)
        return dynamic_routing(self.project(xnor_scaled_sign(inputs, axis=-1), kernel), self.routings)

    def macs_by_bits(self):
        """The projection is 1-bit x 1-bit (XNOR-popcount); the routing is float."""
        return [(1, 1, self.projection_macs()), (FLOAT_BITS, FLOAT_BITS, self.routing_macs())]

    def count_weight_bits(self):
        """1 bit per kernel entry and a 32-bit alpha per (input capsule, output coordinate)."""
        return math.prod(self.kernel.shape) + FLOAT_BITS * self.input_capsules * self.capsules * self.dim


@serializable
class XNIDR(_CapsuleFC):
    """XnIDR: capsule FC layer whose linear projection inside the routing is XNOR-ized.

    u^_j|i = W_ij u_i in float; the weighted sums s_j = sum_i c_ij u^_j|i and the agreements
    u^_j|i . v_j use beta_ij sign(u^_j|i) (beta_ij = mean |u^_j|i| over E), so each routing
    round multiplies binary predictions.

    Args: as ``XNODR``.
    """

    def call(self, inputs):
        return dynamic_routing(self.project(inputs, self.kernel), self.routings,
                               agreement_of=lambda u_hat: xnor_scaled_sign(u_hat, axis=-1))

    def macs_by_bits(self):
        """The projection is float; the routing multiplies 1-bit predictions by float weights."""
        return [(FLOAT_BITS, FLOAT_BITS, self.projection_macs()), (1, FLOAT_BITS, self.routing_macs())]


@serializable
class CapsuleLength(layers.Layer):
    """Lengths |v_j| of capsules (batch, M, E) -> (batch, M), each in [0, 1).

    ``normalize=True`` divides by their sum: class probabilities equal to softmax(log |v_j|),
    so a capsule head trains with the usual cross-entropy.
    """

    def __init__(self, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.normalize = normalize

    def call(self, inputs):
        lengths = tf.sqrt(tf.reduce_sum(tf.square(inputs), axis=-1) + EPSILON)
        return lengths / tf.reduce_sum(lengths, axis=-1, keepdims=True) if self.normalize else lengths

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2])

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize}
