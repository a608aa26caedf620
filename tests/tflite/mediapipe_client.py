"""MediaPipe Tasks as a client of the kit's ``.tflite`` files: run one file on one image, print JSON.

Run by the Python of a virtual environment with ``mediapipe`` (it depends on opencv-contrib-python, which
clashes with the kit's opencv-python-headless, so not the kit's own)::

    .venv-mediapipe/bin/python tests/tflite/mediapipe_client.py MODEL.tflite classify|detect|segment IMAGE...

Prints one JSON object: ``metadata`` (name, min_parser_version and output tensor names, parsed with
MediaPipe's own generated metadata_schema.fbs code: an independent reader of the kit's metadata) and
``images``, one result per image: classify: ``categories`` (index, label, score; best first); detect:
``detections`` (label, index, score, ``box`` [x, y, width, height] in pixels); segment: ``labels``,
``mask_shape``, ``class_counts`` (pixels per class of the category mask), ``confidence_means`` and ``mask``
(the category mask as nested lists). MediaPipe's errors go to stderr with exit status 1.
"""
import json
import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb
from mediapipe.tasks.metadata import schema_py_generated as model_fb
from mediapipe.tasks.python import BaseOptions, vision


def metadata(path):
    """Name, min_parser_version and output names of the file's TFLITE_METADATA, or None."""
    with open(path, "rb") as f:
        data = f.read()
    model = model_fb.ModelT.InitFromObj(model_fb.Model.GetRootAs(data, 0))
    entry = next((m for m in model.metadata or () if m.name == b"TFLITE_METADATA"), None)
    if entry is None:
        return None
    buffer = bytes(model.buffers[entry.buffer].data)
    assert metadata_fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0), "no M001 identifier"
    parsed = metadata_fb.ModelMetadataT.InitFromObj(metadata_fb.ModelMetadata.GetRootAs(buffer, 0))
    outputs = parsed.subgraphMetadata[0].outputTensorMetadata or []
    return {"name": parsed.name.decode(), "min_parser_version": parsed.minParserVersion.decode(),
            "output_names": [t.name.decode() for t in outputs]}


def classify(options, images):
    with vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(options, max_results=-1)) as task:
        results = [task.classify(image) for image in images]
    return [{"categories": [{"index": c.index, "label": c.category_name, "score": c.score}
                            for c in result.classifications[0].categories]} for result in results]


def detect(options, images):
    with vision.ObjectDetector.create_from_options(vision.ObjectDetectorOptions(options)) as task:
        return [_detections(task.detect(image)) for image in images]


def _detections(result):
    detections = []
    for detection in result.detections:
        box, best = detection.bounding_box, detection.categories[0]
        detections.append({"label": best.category_name, "index": best.index, "score": best.score,
                           "box": [box.origin_x, box.origin_y, box.width, box.height]})
    return {"detections": detections}


def segment(options, images):
    segmenter_options = vision.ImageSegmenterOptions(options, output_category_mask=True)
    with vision.ImageSegmenter.create_from_options(segmenter_options) as task:
        return [_masks(task.labels, task.segment(image)) for image in images]


def _masks(labels, result):
    mask = result.category_mask.numpy_view()
    return {"labels": labels, "mask_shape": list(mask.shape), "mask": mask.tolist(),
            "class_counts": np.bincount(mask.ravel(), minlength=len(labels)).tolist(),
            "confidence_means": [float(m.numpy_view().mean()) for m in result.confidence_masks]}


def main(model, task, *images):
    run = {"classify": classify, "detect": detect, "segment": segment}[task]
    found = run(BaseOptions(model_asset_path=model), [mp.Image.create_from_file(image) for image in images])
    print(json.dumps({"mediapipe": mp.__version__, "metadata": metadata(model), "images": found}))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    try:
        main(*sys.argv[1:])
    except Exception as exc:  # one line for the caller, whatever MediaPipe raised
        sys.exit(f"mediapipe_client: {type(exc).__name__}: {' '.join(str(exc).split())}")
