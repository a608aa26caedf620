"""Object detection: SSDLite on a backbone, trained on the shapes, a Pascal VOC folder or a COCO
JSON file; mAP of the Keras model and of each ``.tflite`` (ending in
``TFLite_Detection_PostProcess``) on the held-out split."""
from mobilekit.tasks.base import Task, uint8_images
from models.detection_data import detection_splits
from models.detection_metrics import detection_map, keras_detections
from models.detection_train import anchor_config, small_input_head, train_detector
from models.ssdlite import model_anchors
from tflite.detection_export import DETECTION_QUANTIZATIONS, convert_detector
from tflite.validation import tflite_detections


class Detect(Task):
    """SSDLite detectors (``models.detection_train``): boxes, classes and scores out."""

    name = "detect"
    summary = "object detection (mAP)"
    data_help = "'shapes', a Pascal VOC folder or a COCO .json file"
    defaults = {"arch": "ssdlite", "backbone": "mobilenet_v2", "data": "shapes", "image_size": 96, "alpha": 0.35,
                "epochs": 25, "batch_size": 32, "learning_rate": 4e-3, "seed": 0, "train_images": 1500,
                "validation_images": 150, "test_images": 300}
    options = (*Task.options, "train_images", "validation_images", "test_images")
    quantizations = DETECTION_QUANTIZATIONS
    quality = ("tflite_map50", "test mAP@0.5")
    quickstart_name = "quickstart_detect"
    clip = {"name": "test_images.avi", "title": "demo: int8 detector on held-out images", "frames": 40,
            "frame_size": 192}

    def config(self, options):
        """The head for inputs below ``models.detection_train.SMALL_INPUT`` reads finer taps with its
        own anchors; the config records them, so the run is rebuilt as it was trained."""
        config = super().config(options)
        return {**config, **small_input_head(config["image_size"])}

    def load_data(self, config):
        return detection_splits(config["data"], config["image_size"], seed=config["seed"],
                                train=config["train_images"], validation=config["validation_images"],
                                test=config["test_images"])

    def labels(self, data):
        return list(data["train"].class_names)

    def count(self, data, split):
        return len(data[split].images)

    def fit(self, model, data, path, config):
        history = train_detector(model, data, path, anchor_config(config), epochs=config["epochs"],
                                 batch_size=config["batch_size"], learning_rate=config["learning_rate"],
                                 seed=config["seed"])
        return model, history

    def evaluate(self, model, data, config):
        return {f"test_{key}": value for key, value in _keras_map(model, data, config).items()}, {}

    def reference(self, model, data, config):
        return {f"keras_{key}": value for key, value in _keras_map(model, data, config).items()}

    def convert(self, model, config, data, quantization):
        return convert_detector(model, model_anchors(model, anchor_config(config)), quantization,
                                representative_data=data["train"].images * 255.0)

    def validate(self, model_bytes, model, data, reference):
        scores = detection_map(tflite_detections(model_bytes, data["test"].images), data["test"])
        return {**reference, **{f"tflite_{key}": value for key, value in scores.items()}}

    def describe(self, row):
        return (f"{row['file']}: {row['size_bytes'] / 1e6:.2f} MB, mAP@0.5 {row['tflite_map50']:.4f} "
                f"(Keras {row['keras_map50']:.4f}), mAP@[.5:.95] {row['tflite_map']:.4f} "
                f"(Keras {row['keras_map']:.4f})")

    def clip_images(self, data):
        return uint8_images(data["test"].images[:self.clip["frames"]]), None

    def demo_figures(self, summary, labels):
        return {"frames_with_detections": sum(p[1] >= 0 for p in summary["predictions"])}


def _keras_map(model, data, config):
    """mAP@0.5 and mAP@[.5:.95] of the Keras detector on the test split."""
    anchors = model_anchors(model, anchor_config(config))
    return detection_map(keras_detections(model, data["test"].images, anchors), data["test"])


DETECT = Detect()
