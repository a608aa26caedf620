"""Semantic segmentation: LR-ASPP, Mobile DeepLabv3 or the PIDE segmenter, trained on the shapes
or a user's image and mask folders; mIoU of the Keras model and of each ``.tflite`` on
held-out images, and the pixel agreement of their class maps."""
import numpy as np

from mobilekit.tasks.base import Task, uint8_images
from models.segmentation_data import load_segmentation_data
from models.segmentation_train import confusion_matrix, iou_from_confusion, mean_iou, predict_masks, train_segmenter
from tflite.converter import convert
from tflite.validation import tflite_masks

CALIBRATION_IMAGES = 100


class Segment(Task):
    """Segmenters (``models.segmentation_train``): per-pixel class probabilities out, background first."""

    name = "segment"
    summary = "semantic segmentation (mIoU)"
    data_help = "'shapes' or a folder with images/ and masks/"
    defaults = {"arch": "lr_aspp", "backbone": "mobilenet_v3_large", "data": "shapes", "image_size": 96,
                "alpha": 1.0, "output_stride": 16, "epochs": 16, "batch_size": 32, "learning_rate": 5e-3,
                "patience": 8, "seed": 0, "train_images": 1200, "validation_images": 150, "test_images": 200}
    options = (*Task.options, "patience", "train_images", "validation_images", "test_images")
    quality = ("tflite_miou", "test mIoU")
    quickstart_name = "quickstart_segment"
    clip = {"name": "test_shapes.avi", "title": "demo: int8 segmenter on held-out shapes", "frames": 40,
            "frame_size": 192}

    def load_data(self, config):
        return load_segmentation_data(config["data"], config["image_size"], seed=config["seed"],
                                      train=config["train_images"], validation=config["validation_images"],
                                      test=config["test_images"])

    def labels(self, data):
        return ["background", *data["train"].class_names]

    def count(self, data, split):
        return len(data[split].images)

    def fit(self, model, data, path, config):
        return train_segmenter(model, data, path, self.classes(data), epochs=config["epochs"],
                               batch_size=config["batch_size"], learning_rate=config["learning_rate"],
                               patience=config["patience"], seed=config["seed"])

    def evaluate(self, model, data, config):
        labels = self.labels(data)
        scores = mean_iou(predict_masks(model, data["test"].images * 255.0), data["test"].masks, len(labels))
        return {"test_miou": scores["miou"]}, {"class_iou": dict(zip(labels, scores["class_iou"]))}

    def reference(self, model, data, config):
        masks = predict_masks(model, data["test"].images * 255.0)
        return {"masks": masks, "keras_miou": mean_iou(masks, data["test"].masks, self.classes(data))["miou"]}

    def calibration_data(self, data):
        """The first ``CALIBRATION_IMAGES`` training images, pixels 0..255."""
        return data["train"].images[:CALIBRATION_IMAGES] * 255.0

    def convert(self, model, config, data, quantization):
        return convert(model, quantization, representative_data=self.calibration_data(data))

    def validate(self, model_bytes, model, data, reference):
        predicted = tflite_masks(model_bytes, data["test"].images * 255.0)
        confusion = confusion_matrix(predicted, data["test"].masks, self.classes(data))
        return {"keras_miou": reference["keras_miou"], "tflite_miou": iou_from_confusion(confusion)["miou"],
                "pixel_agreement": float(np.mean(predicted == reference["masks"]))}

    def describe(self, row):
        return (f"{row['file']}: {row['size_bytes'] / 1e6:.2f} MB, mIoU {row['tflite_miou']:.4f} "
                f"(Keras {row['keras_miou']:.4f}), pixel agreement {row['pixel_agreement']:.4f}")

    def clip_images(self, data):
        return uint8_images(data["test"].images[:self.clip["frames"]]), None


SEGMENT = Segment()
