"""A fork server for the fuzz cases: the parent imports TensorFlow and the kit once (and runs no
TensorFlow op: forking a process whose runtime threads have started is unsafe), then forks one
child per case, ``jobs`` at a time. Each child runs its case in its own process group with its
output in a file; the parent kills the group when the case runs past ``timeout`` and sees a crash
as a signal in ``waitpid``.

Outcomes: ``ok`` (exit 0); ``error``: a non-zero exit whose output holds no traceback and exactly
one error line (``mobilekit: error: ...``, ``mobilekit train: error: ...`` from argparse,
``demo_app: error: ...``) that names one of the case's ``names``; ``unnamed``: such a line that
names none of them; ``traceback``; ``crash`` (killed by a signal); ``hang`` (timed out);
``bad-exit`` (a non-zero exit without one error line or a traceback).
"""
import os
import re
import shutil
import signal
import sys
import time
import traceback
from typing import NamedTuple

OUTCOMES = ("ok", "error", "unnamed", "traceback", "crash", "hang", "bad-exit")
FAILURES = ("unnamed", "traceback", "crash", "hang", "bad-exit")
ERROR_LINE = re.compile(r"^(mobilekit|demo_app)( [\w-]+)?: error: ")


class Case(NamedTuple):
    """One fuzz case: its input ``kind``, the ``mutation`` made, the ``entry`` point run on it
    (``("cli", argv)`` or ``("api", function name in fuzz.api, args)``), the ``names`` an error
    line must mention one of, and the ``folder`` it runs in."""

    index: int
    kind: str
    mutation: str
    entry: tuple
    names: tuple
    folder: str

    @property
    def entry_name(self):
        return self.entry[1][0] if self.entry[0] == "cli" else f"api:{self.entry[1]}"


class Result(NamedTuple):
    case: Case
    outcome: str
    seconds: float
    output: str


def preload():
    """Import what the children run (TensorFlow, the kit, the API entry points) without running an op."""
    from mobilekit.cli import build_parser
    from mobilekit.quiet_tensorflow import import_tensorflow_quietly

    import_tensorflow_quietly()
    build_parser()
    from tests.fuzz import api  # noqa: F401


def _fork(target, log):
    """Fork a child that runs ``target()`` in its own process group, its output going to ``log``, and
    exits with the code ``target`` returns; the parent gets the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(descriptor, 1)
        os.dup2(descriptor, 2)
        code = target()
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001 - everything else shows as it would to a user
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)


def _entry(case):
    """Run ``case``'s entry point in its folder (in the child); its exit code."""
    os.chdir(case.folder)
    if case.entry[0] == "cli":
        from mobilekit.cli import main

        return main(list(case.entry[1]))
    from tests.fuzz.api import call

    return call(case.entry[1], *case.entry[2])


def in_child(function, log, *args):
    """Run ``function(*args)`` in a forked child (e.g. work that runs TensorFlow ops, which the parent
    must not); a RuntimeError with its output when it fails."""
    _, status = os.waitpid(_fork(lambda: function(*args), log), 0)
    if os.waitstatus_to_exitcode(status):
        with open(log, errors="replace") as f:
            raise RuntimeError(f"{function.__name__} failed in a child process:\n{f.read()[-3000:]}")


def classify(case, status, output):
    """The outcome of ``case`` from its ``waitpid`` status (None: timed out) and output."""
    if status is None:
        return "hang"
    if os.WIFSIGNALED(status):
        return "crash"
    if "Traceback (most recent call last)" in output:
        return "traceback"
    if os.WEXITSTATUS(status) == 0:
        return "ok"
    lines = [line for line in output.splitlines() if ERROR_LINE.match(line)]
    if len(lines) != 1:
        return "bad-exit"
    message = ERROR_LINE.sub("", lines[0])
    return "error" if any(name in message for name in case.names) else "unnamed"


def run(cases, jobs=2, timeout=120.0, progress=None, keep=False):
    """Run ``cases`` (an iterable; each made when its turn comes), ``jobs`` at a time; the ``Result``s
    in the order they finish. A case's folder is removed afterwards unless it failed or ``keep``."""
    pending, running, results = iter(cases), {}, []
    while True:
        while len(running) < jobs:
            case = next(pending, None)
            if case is None:
                break
            log = os.path.join(case.folder, "..", f"{os.path.basename(case.folder)}.log")
            running[_fork(lambda case=case: _entry(case), log)] = (case, log, time.monotonic())
        if not running:
            return results
        pid, status = os.waitpid(-1, os.WNOHANG)
        finished = [(pid, status)] if pid else []
        now = time.monotonic()
        for late in [p for p, (_, _, start) in running.items() if p != pid and now - start > timeout]:
            os.killpg(late, signal.SIGKILL)
            os.waitpid(late, 0)
            finished.append((late, None))
        if not finished:
            time.sleep(0.02)
        for pid, status in finished:
            results.append(_finish(*running.pop(pid), status, keep))
            if progress:
                progress(results[-1])


def _finish(case, log, start, status, keep):
    """The ``Result`` of a finished child; its folder is removed unless it failed or ``keep``."""
    with open(log, errors="replace") as f:
        output = f.read()
    os.remove(log)
    result = Result(case, classify(case, status, output), time.monotonic() - start, output)
    if result.outcome not in FAILURES and not keep:
        shutil.rmtree(case.folder, ignore_errors=True)
    return result
