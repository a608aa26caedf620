"""Stopping training cleanly on Ctrl-C (SIGINT) or SIGTERM.

While ``stop_on_signals()`` is active, either signal only records itself; the ``StopOnSignal``
callback then raises ``TrainingInterrupted`` at the next step or epoch boundary, after the
epoch's checkpoint callbacks have run (put it last in the callback list). The last complete
epoch's checkpoint is kept, and the process exits ``exit_code`` (128 + the signal number: 130
for SIGINT, 143 for SIGTERM, as shells report a process ended by a signal).
"""
import contextlib
import signal
import threading

from keras_layers.keras_api import keras

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on signal ``signum`` after ``epochs`` complete epochs (``history``: their logs).

    A ``KeyboardInterrupt``, so that nothing catching ``Exception`` swallows it."""

    def __init__(self, signum, epochs=0, history=None):
        super().__init__(f"training interrupted by {signal.Signals(signum).name} after {epochs} complete epoch(s)")
        self.signum, self.epochs, self.history = signum, epochs, history or {}

    @property
    def exit_code(self):
        return 128 + self.signum


class SignalFlag:
    """The first of ``SIGNALS`` received (None until one arrives)."""

    def __init__(self):
        self.signum = None

    def __call__(self, signum, frame):
        self.signum = self.signum or signum


@contextlib.contextmanager
def stop_on_signals():
    """Record SIGINT / SIGTERM in the yielded ``SignalFlag`` instead of acting on them; the previous
    handlers come back on exit. Outside the main thread (where Python takes no handlers) the flag
    simply never rises."""
    flag = SignalFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {signum: signal.signal(signum, flag) for signum in SIGNALS}
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class StopOnSignal(keras.callbacks.Callback):
    """Raise ``TrainingInterrupted`` at the first step or epoch boundary after ``flag`` rose."""

    def __init__(self, flag, completed_epochs):
        super().__init__()
        self.flag, self.completed_epochs = flag, completed_epochs

    def _check(self):
        if self.flag.signum is not None:
            raise TrainingInterrupted(self.flag.signum, self.completed_epochs())

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()
