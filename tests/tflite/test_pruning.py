"""Under Keras 3, QAT and pruning (TFMOT, tf_keras only) refuse with a one-line error."""
import pytest

from keras_layers.keras_api import LEGACY_KERAS, keras

pytestmark = pytest.mark.skipif(LEGACY_KERAS, reason="the Keras 3 behaviour")


def test_tfmot_jobs_need_tf_keras():
    from tflite.pruning import prune_model
    from tflite.qat_tfmot import quantize_model

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    for job in (prune_model, quantize_model):
        with pytest.raises(ValueError, match="TF_USE_LEGACY_KERAS=1") as error:
            job(model)
        assert "\n" not in str(error.value)
