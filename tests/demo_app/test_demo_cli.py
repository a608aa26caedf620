"""``python -m demo_app`` in fresh processes: no TensorFlow imported, one-line errors, exit codes."""
import numpy as np
import pytest
from demo_helpers import run_python, write_rgb

TF_FREE_SCRIPT = """
import sys
import demo_app
for model in sys.argv[1:3]:
    summary = demo_app.run_demo(model, sys.argv[3], output=sys.argv[4], headless=True)
    assert summary["frames"] == 1, summary
loaded = sorted(m for m in sys.modules if m.split(".")[0].startswith(("tensorflow", "keras", "tf_keras"))
                or m.split(".")[0] in ("models", "tflite", "mobilekit"))
if loaded:
    print("TF-side modules imported:", loaded)
    sys.exit(1)
"""


@pytest.fixture
def image(tmp_path):
    return write_rgb(tmp_path / "frame.png", np.random.default_rng(0).integers(0, 256, (30, 40, 3), np.uint8))


def test_demo_imports_no_tensorflow(fp32_model_path, quantized_model_paths, image, tmp_path):
    result = run_python("-c", TF_FREE_SCRIPT, fp32_model_path, quantized_model_paths["uint8"], image,
                        str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / "frame_00000.png").is_file()


def test_cli_success(fp32_model_path, image, tmp_path):
    result = run_python("-m", "demo_app", "--model", fp32_model_path, "--source", image, "--headless",
                        "--output", str(tmp_path / "out.avi"))
    assert result.returncode == 0, result.stderr
    assert "1 frames: latency mean" in result.stdout and (tmp_path / "out.avi").is_file()


@pytest.fixture
def bad_inputs(tmp_path, fp32_model_path, non_image_model_path, image):
    not_model = tmp_path / "notes.tflite"
    not_model.write_text("just text\n")
    not_image = tmp_path / "fake.png"
    not_image.write_text("not a png\n")
    return {
        "not_a_model": ([str(not_model), image], "is not a TFLite model"),
        "missing_model": ([str(tmp_path / "missing.tflite"), image], "model file not found"),
        "undecodable_image": ([fp32_model_path, str(not_image)], "cannot decode image"),
        "missing_camera": ([fp32_model_path, "97"], "camera 97 could not be opened"),
        "not_an_image_model": ([non_image_model_path, image], "model input shape (1, 10) is not an image"),
    }


@pytest.mark.parametrize("case", ["not_a_model", "missing_model", "undecodable_image", "missing_camera",
                                  "not_an_image_model"])
def test_cli_bad_input_one_line_error(bad_inputs, case):
    (model, source), expected = bad_inputs[case]
    result = run_python("-m", "demo_app", "--model", model, "--source", source, "--headless")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("demo_app: error: "), result.stderr
    assert expected in lines[0] and "Traceback" not in result.stderr


def test_cli_debug_shows_traceback(bad_inputs):
    (model, source), _ = bad_inputs["not_a_model"]
    result = run_python("-m", "demo_app", "--model", model, "--source", source, "--headless", "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ValueError" in result.stderr
