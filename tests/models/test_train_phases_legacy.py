"""Two-phase fine-tuning, a signal mid-run and resuming under tf_keras (``make test`` runs this file
in its own TF_USE_LEGACY_KERAS=1 process)."""
import pytest

from keras_layers.keras_api import LEGACY_KERAS
from tests.models.test_train_phases import \
    test_phase_one_freezes_the_pretrained_layers_and_resuming_matches_an_unbroken_run as test_phases_under_tf_keras  # noqa: F401

pytestmark = [pytest.mark.legacy_keras, pytest.mark.skipif(not LEGACY_KERAS, reason="run with TF_USE_LEGACY_KERAS=1")]
