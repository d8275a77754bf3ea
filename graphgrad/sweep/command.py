"""``graphgrad sweep`` and ``graphgrad sweep-report``: the command line registers these with
:func:`add_commands`. Bad input gets one line on stderr and exit code 2, nothing written;
Ctrl-C (or SIGTERM) stops the workers, keeps every finished trial and exits with 130.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._args import positive_int, whole
from .choices import PRUNERS, SAMPLERS
from .record import JOURNAL, STUDY
from .space import DEMO_SPACES

EPILOG = ("TASK is a graphgrad task (polynomial, linear, moons, spirals, digits, or a task .py "
          "file) whose space holds fit settings, or FILE.py:FUNCTION for any function "
          "objective(params, report) -> float. Without --space, polynomial sweeps its built-in "
          "demo (lr, max_grad, lr_decay). Running the same command again resumes the sweep.")


def add_commands(commands) -> None:
    """Add ``sweep`` and ``sweep-report`` to an argparse subparsers object."""
    sweep = commands.add_parser(
        "sweep", help="many trials of a task or function in parallel; survives crashes",
        description="Search hyperparameters with Optuna on local worker processes or a Dask "
                    "cluster, keep every trial in a record that survives crashes, and write a "
                    "report (table, best settings, importances, pictures, failure sentences).",
        epilog=EPILOG)
    sweep.add_argument("task", metavar="TASK", help="a task name, a task .py file or "
                       "FILE.py:FUNCTION")
    sweep.add_argument("--space", type=Path, help="a TOML file: name = {low, high, log, step}, "
                       "{choices = [...]} or a fixed value")
    sweep.add_argument("--trials", type=positive_int, default=20,
                       help="trials in all, counting those already in the record (default 20)")
    sweep.add_argument("--workers", type=positive_int,
                       help="trials at once (default: the CPU count; on a Dask cluster its "
                            "threads)")
    sweep.add_argument("--sampler", choices=SAMPLERS, default="tpe",
                       help="tpe (default), random or grid")
    sweep.add_argument("--pruner", choices=PRUNERS, default="median",
                       help="median (default), halving or none")
    sweep.add_argument("--executor", default="local", metavar="local|dask-local|tcp://HOST:PORT",
                       help="local processes (default), a Dask LocalCluster, or an existing "
                            "Dask scheduler")
    sweep.add_argument("--storage", metavar="URL", help="an Optuna RDB URL such as "
                       "sqlite:///study.db (default: a journal file in --out)")
    sweep.add_argument("--study", default=STUDY, help=f"study name in the storage "
                       f"(default {STUDY})")
    sweep.add_argument("--out", type=Path, help="folder for the record and the report "
                       "(default runs/sweep-TASK)")
    sweep.add_argument("--seed", type=whole, default=0,
                       help="seeds the sampler, the task's data and each trial (seed + trial)")
    sweep.add_argument("--gpus", type=_gpus, metavar="0,1",
                       help="one group of workers per GPU, with CUDA_VISIBLE_DEVICES set")
    sweep.add_argument("--trials-per-gpu", type=positive_int, default=1, metavar="K",
                       help="workers per GPU (default 1)")
    sweep.set_defaults(run=run_sweep)

    report = commands.add_parser(
        "sweep-report", help="rebuild a sweep's report from its record",
        description="Read the sweep's record (DIR/study.journal or --storage) and write "
                    "trials.csv, summary.json, the pictures and index.html into DIR.")
    report.add_argument("out", type=Path, metavar="DIR")
    report.add_argument("--storage", metavar="URL", help="the RDB URL the sweep used, if any")
    report.add_argument("--study", default=STUDY, help=f"study name (default {STUDY})")
    report.set_defaults(run=run_report)


def _gpus(text: str) -> list:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or not all(part.isdigit() for part in ids):
        raise argparse.ArgumentTypeError(f"expected device numbers such as 0,1, got {text!r}")
    return [int(part) for part in ids]


def run_sweep(args) -> int:
    from .driver import SweepError, run
    from .space import SpaceError

    space = args.space
    if space is None:
        if args.task not in DEMO_SPACES:
            return _usage(f"graphgrad sweep: {args.task} has no built-in space; give --space "
                          f"FILE.toml (built-in: {', '.join(DEMO_SPACES)})")
        space = DEMO_SPACES[args.task]
    if args.gpus and args.workers:
        return _usage("graphgrad sweep: give --workers or --gpus (with --trials-per-gpu), "
                      "not both")
    stem = Path(args.task.split(":")[0]).stem
    out = args.out or Path("runs") / f"sweep-{stem}"
    workers = args.workers or (None if "://" in args.executor else _cpu_count())
    print(f"graphgrad sweep: {args.task}, {args.trials} trials on "
          f"{_where(args, workers)}; record and report in {out}", flush=True)
    if "://" in args.executor and args.storage is None:
        print(f"note: the Dask workers write their trials to {(out / JOURNAL).resolve()}, so "
              "it must be on a folder they share; or give --storage with a database URL",
              flush=True)
    try:
        result = run(args.task, space, trials=args.trials, workers=workers,
                     sampler=args.sampler, pruner=args.pruner, executor=args.executor,
                     storage=args.storage, out=out, seed=args.seed, gpus=args.gpus,
                     trials_per_gpu=args.trials_per_gpu, study_name=args.study)
    except (SpaceError, SweepError, ImportError) as exc:  # ImportError: an extra is missing
        return _usage(f"graphgrad sweep: {exc}")
    _print_summary(result.study, out)
    if result.interrupted:
        from .record import counted

        kept = len(counted(result.study.get_trials(deepcopy=False)))
        print(f"graphgrad sweep: interrupted; {kept} finished trials are kept in {out}: run "
              "the same command again to go on", file=sys.stderr)
        return 130
    return 0


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1


def _where(args, workers) -> str:
    if args.gpus:
        return (f"{len(args.gpus) * args.trials_per_gpu} local workers on GPUs "
                f"{','.join(map(str, args.gpus))}")
    if args.executor == "local":
        return f"{workers} local workers"
    if args.executor == "dask-local":
        return f"a Dask LocalCluster of {workers} workers"
    return f"the Dask cluster at {args.executor}"


def run_report(args) -> int:
    from .driver import SweepError
    from .record import open_storage, storage_url
    from .report import write_report

    if not args.out.is_dir():
        return _usage(f"graphgrad sweep-report: {args.out} is not a folder")
    if args.storage is None and not (args.out / JOURNAL).is_file():
        return _usage(f"graphgrad sweep-report: {args.out} has no {JOURNAL}; give the sweep's "
                      "--storage URL")
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=args.study,
                                  storage=open_storage(storage_url(args.out, args.storage)))
    except ImportError:
        return _usage("graphgrad sweep-report: needs Optuna: pip install 'graphgrad[sweep]'")
    except (KeyError, ValueError, SweepError) as exc:
        return _usage(f"graphgrad sweep-report: no study {args.study!r} in the record: {exc}")
    write_report(args.out, study)
    _print_summary(study, args.out)
    return 0


def _print_summary(study, out: Path) -> None:
    from .report import summarize

    summary = summarize(study)
    states = ", ".join(f"{n} {s}" for s, n in summary["states"].items())
    print(f"{summary['trials']} trials: {states}")
    best = summary["best"]
    if best:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in best["params"].items())
        print(f"best: trial {best['number']}, loss {best['value']:.4g} with {shown}")
    for sentence in summary["failures"]:
        print(sentence)
    if summary["importances"]:
        print("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                         summary["importances"].items()))
    print(f"report: {out / 'index.html'}")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _usage(message: str) -> int:
    print(message, file=sys.stderr)
    return 2
