"""The bad-input fuzz harness (``tests/fuzz_inputs.py``) on a small seeded set: every input kind,
mutated, through the command line and the Python API, ends in a result or in one error line that
names it; never a traceback, a crash or a hang. Under a minute on 2 cores."""
import json
import os
import subprocess
import sys

from tests.fuzz.kinds import KINDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = 110


def test_a_small_seeded_fuzz_run_ends_every_case_in_a_result_or_one_error_line(tmp_path):
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, os.path.join("tests", "fuzz_inputs.py"), "--cases", str(CASES), "--seed",
                           "0", "--report", str(report)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    counts = json.loads(report.read_text())["counts"]
    assert set(counts) == set(KINDS)
    for kind, outcomes in counts.items():  # each kind was refused at least once, so the check can fail
        assert outcomes.get("error", 0) >= 1, (kind, outcomes)
