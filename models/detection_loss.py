"""The SSD multibox loss (Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016, section 2.2)
with hard-negative mining, as SSDLite trains it.

For one image with positive anchors ``P`` (matched to an object) the loss is

    L = (1 / |P|) * ( sum_{i in P} CE(c_i, p_i) + sum_{i in N} CE(0, p_i) + sum_{i in P} smoothL1(t_i - t^_i) )

where ``CE`` is the softmax cross-entropy over ``classes + 1`` logits (0 = background),
``smoothL1`` is the Huber loss (delta 1) summed over the four box offsets, and ``N`` holds
the ``negative_ratio * |P|`` background anchors with the largest cross-entropy (hard-negative
mining; 3:1 in the paper). ``|P|`` is counted over the whole batch, as in the paper.

``y_true`` is ``(N, A, 5)``: encoded box targets then the class target (``box_coding.match``);
``y_pred`` is the SSDLite output ``(N, A, 4 + classes + 1)``.
"""
import tensorflow as tf

from keras_layers.keras_api import keras, serializable


@serializable
class MultiBoxLoss(keras.losses.Loss):
    """SSD's localization + confidence loss with hard-negative mining (see the module docstring)."""

    def __init__(self, negative_ratio=3.0, box_weight=1.0, name="multibox_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if negative_ratio <= 0:
            raise ValueError(f"negative_ratio must be > 0, got {negative_ratio}")
        self.negative_ratio, self.box_weight = float(negative_ratio), float(box_weight)

    def call(self, y_true, y_pred):
        y_true, y_pred = tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32)
        classes = tf.cast(y_true[..., 4], tf.int32)
        positive = classes > 0
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(classes, y_pred[..., 4:])
        num_positive = tf.reduce_sum(tf.cast(positive, tf.float32), axis=1)
        # Rank background anchors by their loss; keep the ratio * |P| hardest (at least ratio).
        background_loss = tf.where(positive, -1.0, cross_entropy)
        rank = tf.argsort(tf.argsort(background_loss, axis=1, direction="DESCENDING"), axis=1)
        num_negative = self.negative_ratio * tf.maximum(num_positive, 1.0)
        negative = (tf.cast(rank, tf.float32) < num_negative[:, None]) & ~positive
        mask = tf.cast(positive | negative, tf.float32)
        class_loss = tf.reduce_sum(cross_entropy * mask, axis=1)
        error = tf.abs(y_true[..., :4] - y_pred[..., :4])
        huber = tf.reduce_sum(tf.where(error < 1.0, 0.5 * error ** 2, error - 0.5), axis=-1)
        box_loss = tf.reduce_sum(huber * tf.cast(positive, tf.float32), axis=1)
        batch = tf.cast(tf.shape(y_true)[0], tf.float32)
        # Per-image values whose batch mean is the loss normalized by the batch's positives.
        return (class_loss + self.box_weight * box_loss) * batch / tf.maximum(tf.reduce_sum(num_positive), 1.0)

    def get_config(self):
        return {**super().get_config(), "negative_ratio": self.negative_ratio, "box_weight": self.box_weight}
