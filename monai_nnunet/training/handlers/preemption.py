"""Preemption: SIGTERM or SIGINT (what schedulers send before they kill a job) stops training after the iteration
in progress, with ``checkpoint_latest.pth`` written at that iteration, and the run exits with an error."""

from __future__ import annotations

import signal
import threading

from ignite.engine import Engine, Events

from monai_nnunet.training.handlers.training_log import log_line

__all__ = ["PreemptionHandler", "TrainingPreempted"]


class TrainingPreempted(RuntimeError):
    """Training was stopped by a signal; ``-c`` resumes it at the iteration it reached."""


class PreemptionHandler:
    """Turns SIGTERM / SIGINT into a stop at the end of the current iteration.

    On a signal it sets ``engine.state.stop_requested`` (the signal's name); at the end of the iteration, after the
    :class:`~monai_nnunet.training.handlers.NnUNetCheckpointSaver` has written ``checkpoint_latest.pth``, it raises
    :class:`TrainingPreempted`, which ends the run (and its data workers) with a non-zero exit. A second signal
    before then stops at once. Attach it after the checkpoint saver. The previous signal handlers are restored when
    the run ends.

    Args:
        signals: the signals to catch.
        log_file: ``training_log.txt``.
    """

    def __init__(self, signals: tuple = (signal.SIGTERM, signal.SIGINT), log_file=None) -> None:
        self.signals = tuple(signals)
        self.log_file = log_file
        self._previous: dict = {}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.install)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self.restore)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self.exception_raised)

    def install(self, engine: Engine) -> None:
        engine.state.stop_requested = None
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set in the main thread

        def request_stop(signum, frame):
            if engine.state.stop_requested:  # a second signal: stop now
                raise KeyboardInterrupt
            engine.state.stop_requested = signal.Signals(signum).name

        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, request_stop)

    def restore(self, engine: Engine) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def exception_raised(self, engine: Engine, error: BaseException) -> None:
        self.restore(engine)
        raise error

    def iteration_completed(self, engine: Engine) -> None:
        name = getattr(engine.state, "stop_requested", None)
        if not name:
            return
        epoch_length = engine.state.epoch_length
        message = (f"stopped by {name} after iteration {engine.state.iteration} (epoch {engine.state.epoch - 1}, "
                   f"iteration {(engine.state.iteration - 1) % epoch_length + 1} of {epoch_length}); "
                   f"checkpoint_latest.pth holds it: resume with -c")
        log_line(self.log_file, message)
        raise TrainingPreempted(message)
