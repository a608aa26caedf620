"""A run's folder ``RUNS_ROOT/<name>/`` (``runs/<name>/``) and its report.

``report.json`` holds every figure of the run, machine-readable, as named sections: a
section is either a flat dict (shown as a two-column table) or a list of flat dicts
(shown as a table with one row each). ``report.md`` is rendered from it.
"""
import json
import os

from models.files import write_text

RUNS_ROOT = "runs"
CHECKPOINT_FOLDER = "checkpoint"  # runs/<name>/checkpoint/: the resumable checkpoint of the last epoch
LOGS_FOLDER = "logs"  # runs/<name>/logs/: TensorBoard logs


def run_path(name):
    """``RUNS_ROOT/name``, the folder of run ``name`` (not created)."""
    if not name or os.sep in name or name in {".", ".."}:
        raise ValueError(f"run name {name!r} must be a plain folder name")
    return os.path.join(RUNS_ROOT, name)


def run_dir(name):
    """Create (if needed) and return the folder of run ``name``."""
    path = run_path(name)
    os.makedirs(path, exist_ok=True)
    return path


def load_trained_run(name):
    """``(path, config, model)`` of the trained run ``name``, or a one-line error naming the
    ``mobilekit train`` command that makes it (an unreadable model or report is one too)."""
    from mobilekit.model_export import load_keras_model

    path = run_path(name)
    model_path = os.path.join(path, "model.keras")
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"no trained model at {model_path}: run `mobilekit train --name {name}` first")
    config = load_report(path).get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"run {name}: the config in {os.path.join(path, 'report.json')} is not a JSON object: "
                         f"expected the one `mobilekit train` writes")
    return path, config, load_keras_model(model_path)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def _table(section):
    if isinstance(section, dict):
        rows = [f"| {key} | {_cell(value)} |" for key, value in section.items()]
        return "\n".join(["| | |", "|---|---|", *rows])
    columns = list(dict.fromkeys(key for row in section for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in section]
    return "\n".join(lines)


def render_markdown(report, title):
    """The report as markdown: one heading and table per section; ``figures`` become images and a
    plain string (the run's ``status``) one line."""
    parts = [f"# {title}"]
    for name, section in report.items():
        if name == "figures":
            parts += [f"![{os.path.splitext(f)[0]}]({f})" for f in section]
        elif isinstance(section, str):
            parts.append(f"{name}: **{section}**")
        elif section:
            parts += [f"## {name}", _table(section)]
    return "\n\n".join(parts) + "\n"


def load_report(path):
    """The sections of ``path/report.json`` (an empty dict when there is none yet)."""
    report_path = os.path.join(path, "report.json")
    if not os.path.exists(report_path):
        return {}
    try:
        with open(report_path, "rb") as f:
            report = json.load(f)
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, nested too deep
        raise ValueError(f"run report {report_path} is not JSON ({' '.join(str(error).split())[:120]}): expected "
                         f"the report.json the kit writes") from None
    if not isinstance(report, dict):
        raise ValueError(f"run report {report_path} is not a JSON object: expected the report.json the kit writes")
    return report


def update_report(path, **sections):
    """Merge ``sections`` into ``path/report.json`` and re-render ``report.md``; return the report."""
    report = {**load_report(path), **sections}
    write_text(os.path.join(path, "report.json"), json.dumps(report, indent=2) + "\n")
    write_text(os.path.join(path, "report.md"), render_markdown(report, os.path.basename(os.path.abspath(path))))
    return report
