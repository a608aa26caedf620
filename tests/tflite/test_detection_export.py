"""SSDLite -> .tflite ending in TFLite_Detection_PostProcess: the only non-builtin op, no Flex,
the four outputs in the op's order, and detections matching the Keras model (fp32, int8, int16x8);
the demo draws them."""
import cv2
import numpy as np
import pytest

import small_detector
from demo_app.app import run_demo
from demo_app.runtime import TFLiteModel
from models.box_coding import postprocess
from small_detector import SETTINGS, SIZE
from tflite.inspect import custom_operators, operator_names


@pytest.fixture(scope="module")
def detector():
    """The shared small SSDLite (``small_detector``: MobileNetV2 0.35, 64x64, random batch norm), the 24 images
    its quantized files were calibrated on, and its files converted with ``SETTINGS``."""
    model, anchors = small_detector.detector()
    files = {q: small_detector.detector_file(q) for q in ("fp32", "int8", "int16x8")}
    return model, anchors, small_detector.calibration_images(), files


def _keras(model, anchors, image):
    return postprocess(model(image[None], training=False)[0], anchors, SETTINGS)


def _tflite(runtime, image):
    boxes, classes, scores, count = runtime.run(image)
    n = int(count[0])
    return boxes[0, :n], classes[0, :n], scores[0, :n]


@pytest.mark.parametrize("quantization", ["fp32", "int8", "int16x8"])
def test_only_the_postprocess_op_is_custom_and_outputs_come_in_its_order(detector, quantization):
    model_bytes = detector[3][quantization]
    assert custom_operators(model_bytes) == ["CUSTOM:TFLite_Detection_PostProcess"]
    assert not [op for op in operator_names(model_bytes) if "Flex" in op]
    runtime = TFLiteModel.from_bytes(model_bytes)
    assert runtime.output_shapes == [(1, 5, 4), (1, 5), (1, 5), (1,)]
    assert runtime.input_dtype == (np.uint8 if quantization == "int8" else np.float32)


def test_fp32_detections_equal_the_keras_post_processing(detector):
    model, anchors, images, files = detector
    runtime = TFLiteModel.from_bytes(files["fp32"])
    found = 0
    for image in images[:6]:
        boxes, classes, scores = _keras(model, anchors, image)
        t_boxes, t_classes, t_scores = _tflite(runtime, image)
        assert len(t_scores) == len(scores)
        np.testing.assert_allclose(t_scores, scores, atol=1e-4)
        np.testing.assert_allclose(t_boxes, boxes, atol=1e-4)
        np.testing.assert_array_equal(t_classes, classes)
        found += len(scores)
    assert found > 0


@pytest.mark.parametrize("quantization", ["int8", "int16x8"])
def test_quantized_detections_stay_close_to_keras(detector, quantization):
    model, anchors, images, files = detector
    runtime = TFLiteModel.from_bytes(files[quantization])
    for image in images[:6]:
        boxes, classes, scores = _keras(model, anchors, image)
        t_boxes, t_classes, t_scores = _tflite(runtime, image)
        assert abs(len(t_scores) - len(scores)) <= 2
        # The quantized best box is one of the Keras detections, of its class, with a similar score (an
        # untrained head has near-ties between neighbouring anchors, so not necessarily the first).
        assert abs(t_scores[0] - scores[0]) < 0.1
        assert any(c == t_classes[0] and np.abs(b - t_boxes[0]).max() < 0.1 for b, c in zip(boxes, classes))


def test_demo_draws_the_detectors_boxes(detector, tmp_path):
    model, anchors, images, files = detector
    (tmp_path / "model.tflite").write_bytes(files["fp32"])
    frame = np.round(images[0]).astype(np.uint8)
    source = str(tmp_path / "frame.png")
    cv2.imwrite(source, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    summary = run_demo(str(tmp_path / "model.tflite"), source, output=str(tmp_path / "out"), headless=True,
                       quiet=True, min_score=0.0)
    boxes, classes, scores = _keras(model, anchors, images[0])
    assert summary["predictions"][0][1:3] == (int(classes[0]), str(classes[0]))
    annotated = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "frame_00000.png")), cv2.COLOR_BGR2RGB)
    y0, x0, y1, x1 = np.clip((boxes[0] * SIZE).round().astype(int), 0, SIZE - 1)
    assert np.any(annotated[(y0 + y1) // 2, x1] != frame[(y0 + y1) // 2, x1])  # the box's right edge
