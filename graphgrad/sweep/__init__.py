"""``graphgrad.sweep``: many trials at once, in parallel processes or on a Dask cluster, that
survive crashes (optional extras ``sweep``: Optuna; ``dask``: Dask's distributed).

:func:`run` searches a :class:`Space` (from Python or TOML) with Optuna's samplers (``tpe``,
``random``, ``grid``) and pruners (``median``, ``halving``), fed once per epoch from
``train.fit``'s History. The objective is a graphgrad task with its ``fit`` settings, or any
function ``objective(params, report) -> float``. The Optuna study is the one record (a journal
file in the output folder by default, or an RDB URL): each trial keeps its History, verdict,
final and best loss, params, state, worker, wall time and error, and running the same sweep
again resumes it. :func:`write_report` turns the record into tables, sentences and pictures.

>>> import pathlib, tempfile
>>> from graphgrad import sweep
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "train.py").write_text(
...     "def objective(params, report):\\n    return (params['x'] - 2.0) ** 2\\n")
>>> result = sweep.run(f"{folder}/train.py:objective", {"x": sweep.Float(0.0, 4.0)}, trials=4,
...                    workers=1, sampler="random", out=folder / "out", progress=False,
...                    report=False)
>>> [t.state.name for t in result.study.trials]
['COMPLETE', 'COMPLETE', 'COMPLETE', 'COMPLETE']
"""

from .choices import PRUNERS, SAMPLERS
from .driver import SweepError, SweepResult, run
from .objective import FunctionObjective, Pruned, Report, TaskObjective
from .record import open_storage, storage_url
from .report import failure_sentences, summarize, write_report
from .space import DEMO_SPACES, Categorical, Float, Int, Space, SpaceError, load_space

__all__ = [
    "DEMO_SPACES",
    "PRUNERS",
    "SAMPLERS",
    "Categorical",
    "Float",
    "FunctionObjective",
    "Int",
    "Pruned",
    "Report",
    "Space",
    "SpaceError",
    "SweepError",
    "SweepResult",
    "TaskObjective",
    "failure_sentences",
    "load_space",
    "open_storage",
    "run",
    "storage_url",
    "summarize",
    "write_report",
]
