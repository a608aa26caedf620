"""Detection accuracy: COCO-style mean average precision through pycocotools.

``mAP@0.5`` is the PASCAL VOC criterion (a detection is correct when its IoU with an unclaimed
ground-truth box of its class is at least 0.5); ``mAP@[.5:.95]`` averages AP over the IoU
thresholds 0.50, 0.55, ..., 0.95 (the COCO primary metric). AP is the area under the
101-point interpolated precision-recall curve, averaged over classes.
"""
import contextlib
import io

import numpy as np

from models.box_coding import PostProcessing, postprocess


def _to_pixels(boxes, height, width):
    """Normalized ``[ymin, xmin, ymax, xmax]`` -> COCO ``[x, y, w, h]`` pixels."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) * [height, width, height, width]
    return np.stack([boxes[:, 1], boxes[:, 0], boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]], -1)


def mean_average_precision(ground_truth, detections, num_classes, image_size=(100, 100)):
    """mAP@0.5 and mAP@[.5:.95] of ``detections`` against ``ground_truth``.

    Args:
        ground_truth: ``(boxes, classes)`` lists, one ``(k, 4)`` normalized corner array and one
            ``(k,)`` 0-based class array per image.
        detections: ``(boxes, classes, scores)`` lists, one entry per image.
        num_classes: how many classes there are.
        image_size: ``(height, width)`` the normalized boxes are scaled to (only relevant to
            COCO's small/medium/large split, which is not reported).
    Returns:
        ``{"map50": ..., "map": ...}`` (0 when nothing was detected).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_boxes, gt_classes = ground_truth
    dt_boxes, dt_classes, dt_scores = detections
    if not len(gt_boxes) == len(dt_boxes) == len(dt_classes) == len(dt_scores) == len(gt_classes):
        raise ValueError(f"ground truth for {len(gt_boxes)} images but detections for {len(dt_boxes)}: expected "
                         f"one entry per image")
    height, width = image_size
    images, annotations, results = [], [], []
    for image_id, (boxes, classes) in enumerate(zip(gt_boxes, gt_classes)):
        images.append({"id": image_id, "height": height, "width": width})
        for box, label in zip(_to_pixels(boxes, height, width), classes):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "bbox": box.tolist(), "area": float(box[2] * box[3]), "iscrowd": 0})
    for image_id, (boxes, classes, scores) in enumerate(zip(dt_boxes, dt_classes, dt_scores)):
        for box, label, score in zip(_to_pixels(boxes, height, width), classes, scores):
            results.append({"image_id": image_id, "category_id": int(label), "bbox": box.tolist(),
                            "score": float(score)})
    if not results:
        return {"map50": 0.0, "map": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco = COCO()
        coco.dataset = {"images": images, "annotations": annotations,
                        "categories": [{"id": c} for c in range(num_classes)]}
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluation.params.maxDets = [1, 10, 100]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"map50": float(max(evaluation.stats[1], 0.0)), "map": float(max(evaluation.stats[0], 0.0))}


def keras_detections(model, images, anchors, settings=PostProcessing(), batch_size=64):
    """``(boxes, classes, scores)`` lists of a Keras SSDLite model over images in [0, 1]."""
    outputs = model.predict(np.asarray(images, np.float32) * 255.0, batch_size=batch_size, verbose=0)
    per_image = [postprocess(o, anchors, settings) for o in outputs]
    return tuple(list(column) for column in zip(*per_image))


def detection_map(detections, data):
    """mAP@0.5 and mAP@[.5:.95] of ``detections`` on ``data`` (a ShapesData split)."""
    return mean_average_precision((data.boxes, data.classes), detections, len(data.class_names),
                                  image_size=data.images.shape[1:3])
