"""Ctrl-C during ``fit``: the first one asks the run to stop at the next step boundary, where
its state is whole and can be checkpointed; a second one stops it at once.

``TrainingInterrupted`` is what ``fit`` raises then: a ``KeyboardInterrupt`` that says what was
saved and how to continue.
"""

from __future__ import annotations

import signal
import sys
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` was interrupted (Ctrl-C). ``checkpoint`` is the path of the checkpoint to resume
    from (None when nothing was saved); ``epoch`` and ``step`` count the completed epochs and
    optimizer steps that checkpoint holds (without one, those done when the run stopped), and
    ``in_epoch`` the steps of those that belong to the next, unfinished epoch. ``str()`` says
    what was saved and how to continue: ``fit(..., resume=checkpoint)``.

    >>> error = TrainingInterrupted("runs/x/checkpoint.safetensors", 3, 30, in_epoch=6)
    >>> error.checkpoint, error.epoch, error.step
    ('runs/x/checkpoint.safetensors', 3, 30)
    >>> print(error)  # doctest: +NORMALIZE_WHITESPACE
    Training interrupted; checkpoint of 3 epochs and 6 steps of epoch 4 (step 30 in all) written
    to runs/x/checkpoint.safetensors: continue with fit(...,
    resume='runs/x/checkpoint.safetensors') and the same settings.
    >>> print(TrainingInterrupted(None, 2, 16))  # doctest: +NORMALIZE_WHITESPACE
    Training interrupted after 2 epochs (step 16 in all); nothing was saved: pass
    checkpoint_dir= to fit to have Ctrl-C save a checkpoint.
    """

    def __init__(self, checkpoint: str | None, epoch: int, step: int, *, in_epoch: int = 0,
                 reason: str | None = None) -> None:
        self.checkpoint, self.epoch, self.step = checkpoint, epoch, step
        self.in_epoch, self.reason = in_epoch, reason
        super().__init__(self._message())

    def _message(self) -> str:
        done = _progress(self.epoch, self.step, self.in_epoch)
        if self.checkpoint is None and self.reason is None:
            return (f"Training interrupted after {done}; nothing was saved: pass "
                    "checkpoint_dir= to fit to have Ctrl-C save a checkpoint.")
        if self.checkpoint is None:
            return f"Training interrupted after {done} ({self.reason}); nothing was saved."
        advice = f"continue with fit(..., resume={self.checkpoint!r}) and the same settings."
        if self.reason is None:
            return f"Training interrupted; checkpoint of {done} written to {self.checkpoint}: " \
                + advice
        return (f"Training interrupted ({self.reason}); the last checkpoint, of {done}, is "
                f"{self.checkpoint}: " + advice)

    def __reduce__(self):  # keep the attributes through pickling (e.g. from a worker process)
        return (_rebuild, (self.checkpoint, self.epoch, self.step, self.in_epoch, self.reason))


def _rebuild(checkpoint, epoch, step, in_epoch, reason) -> TrainingInterrupted:
    return TrainingInterrupted(checkpoint, epoch, step, in_epoch=in_epoch, reason=reason)


def _progress(epoch: int, step: int, in_epoch: int) -> str:
    """'3 epochs (step 24 in all)' or '3 epochs and 6 steps of epoch 4 (step 30 in all)'."""
    words = f"{epoch} epoch{'s' if epoch != 1 else ''}"
    if in_epoch:
        words += f" and {in_epoch} step{'s' if in_epoch != 1 else ''} of epoch {epoch + 1}"
    return f"{words} (step {step} in all)"


class DeferredInterrupt:
    """While active (in the main thread, when SIGINT raises KeyboardInterrupt as by default),
    the first SIGINT only sets ``requested``; the default handler is back for the next one."""

    def __init__(self, announce: bool) -> None:
        self.requested, self.announce = False, announce
        self._handler = self._previous = None

    def __enter__(self) -> DeferredInterrupt:
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous, self._handler = signal.default_int_handler, self._request
            signal.signal(signal.SIGINT, self._handler)
        return self

    def _request(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)
        if self.announce:
            print("\nCtrl-C: stopping after the current step (press Ctrl-C again to stop at "
                  "once, without saving this step)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self._handler is not None and signal.getsignal(signal.SIGINT) is self._handler:
            signal.signal(signal.SIGINT, self._previous)
