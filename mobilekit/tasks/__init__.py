"""The kit's applications: classify, detect, segment (see ``mobilekit.tasks.base.Task``)."""
from mobilekit.tasks.classify import CLASSIFY
from mobilekit.tasks.detect import DETECT
from mobilekit.tasks.segment import SEGMENT

TASKS = {task.name: task for task in (CLASSIFY, DETECT, SEGMENT)}


def get_task(name):
    """The task called ``name``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: expected one of {', '.join(TASKS)}")
    return TASKS[name]
