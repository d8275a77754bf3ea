"""The ``dask`` executor: the same trials run on Dask workers, an existing cluster
(``tcp://HOST:8786``) or a ``LocalCluster`` started for the sweep (``dask-local``).

The record stays outside Dask: each task opens the study's storage itself (the journal file,
which every worker must be able to reach, or an RDB URL), runs :func:`run_trial`, feeds the
pruner and writes the trial's record there before it returns. So a result that Dask loses with
a dead worker is never the only copy, and a task Dask runs again finds its trial finished and
changes nothing. A task whose worker died is lost: the driver marks its trial FAIL; if the
scheduler retries it anyway (an existing cluster keeps its own ``allowed-failures``), the retry
sees that another worker had started the trial and closes it as FAIL instead of running it.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from .choices import make_pruner
from .objective import run_trial, worker_name
from .record import mark_lost, open_storage, write_record

_STUDIES: dict = {}  # per worker process: (storage, study, pruner) -> the opened study


class DaskExecutor:
    """Runs jobs as Dask tasks; ``address`` is ``dask-local`` or a scheduler's address.

    Events: ``("done", number, summary)`` once a task has written its trial, and
    ``("lost", number, reason, worker)`` when its worker died or the task failed in Dask.
    """

    name = "dask"
    writes_record = True  # the tasks write their own trials

    def __init__(self, address: str, workers: int | None) -> None:
        self.address, self.workers = address, workers
        self.cluster = self.client = None
        self.futures: dict = {}  # future -> trial number

    def __enter__(self) -> DaskExecutor:
        import dask
        import distributed

        if self.address == "dask-local":
            # the scheduler runs in this process: a task whose worker dies fails at once
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self.cluster = distributed.LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
        else:
            self.client = distributed.Client(self.address, timeout=30)
        if self.workers is None:
            self.workers = max(1, sum(self.client.nthreads().values()))
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def size(self) -> int:
        return self.workers

    def idle(self) -> int:
        return self.workers - len(self.futures)

    def submit(self, job: dict) -> None:
        key = f"graphgrad-trial-{job['number']}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(run_on_dask, job, key=key, pure=False, retries=0)
        self.futures[future] = job["number"]

    def prune(self, number: int) -> None:
        """Nothing to do: a Dask task asks the pruner in the storage itself."""

    def events(self, timeout: float) -> list:
        import distributed

        if not self.futures:
            return []
        with contextlib.suppress(distributed.TimeoutError, TimeoutError):
            distributed.wait(list(self.futures), timeout=timeout, return_when="FIRST_COMPLETED")
        found = []
        for future in [f for f in self.futures if f.done()]:
            number = self.futures.pop(future)
            if future.status == "finished":
                found.append(("done", number, future.result()))
            else:
                error = future.exception()
                found.append(("lost", number, f"its Dask task failed: {type(error).__name__}: "
                              f"{error}", None))
            future.release()
        return found

    def running(self) -> list:
        return list(self.futures.values())

    def close(self) -> None:
        for future in list(self.futures):
            future.cancel()
        self.futures.clear()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None


def run_on_dask(job: dict) -> dict:
    """A Dask task: run one trial against the storage and write its record there."""
    import distributed
    from optuna.trial import Trial

    study = _study(job["storage"], job["study"], job["pruner"])
    trial = Trial(study, job["trial_id"])
    here = worker_name(f"dask worker {distributed.get_worker().address}")
    frozen = study._storage.get_trial(job["trial_id"])
    if frozen.state.is_finished():  # Dask ran a finished task again: keep the first result
        return {"state": frozen.state.name, "value": frozen.value}
    if frozen.user_attrs.get("started_on"):  # a retry after the first worker died
        mark_lost(study, job["trial_id"], job["number"], "its worker "
                  f"({frozen.user_attrs['started_on']}) died; Dask retried the task on {here}")
        return {"state": "FAIL", "value": None}
    trial.set_user_attr("started_on", here)

    def send_report(step, value):
        trial.report(value, step)
        return trial.should_prune()

    record = run_trial(job["objective"], job, send_report, here)
    write_record(study, job["trial_id"], job["number"], record)
    return {"state": record["state"], "value": record["value"]}


def _study(url: str, name: str, pruner: str):
    import optuna

    key = (url, name, pruner)
    if key not in _STUDIES:
        _STUDIES[key] = optuna.load_study(study_name=name, storage=open_storage(url),
                                          pruner=make_pruner(pruner))
    return _STUDIES[key]
