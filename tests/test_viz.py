"""graphgrad.viz: the files it writes (valid, sized, not blank, written atomically), its handling
of None, nan and inf, the diverged marking, the choice of log axes, and its errors."""

from __future__ import annotations

import builtins
import math
import os
import threading

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from graphgrad.viz import plot_history, plot_lr_find, plot_schedule, plots
from graphgrad.viz.plots import _history_figure, _lr_find_figure, _schedule_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RED = plots.COLOURS["bad"]


def healthy_epochs(count=12):
    return [
        {
            "epoch": e,
            "train_loss": 2.0 * 0.8**e,
            "val_loss": 2.2 * 0.8**e,
            "metric": 1 - 0.8**e,
            "lr": 0.1 * 0.5 ** (e // 4),
            "grad_norm": 3.0 * 0.9**e,
        }
        for e in range(1, count + 1)
    ]


def diverged_history(message="loss became nan at epoch 6; the learning rate is too high"):
    epochs = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": None, "lr": 0.5, "grad_norm": 1.0},
        {"epoch": 2, "train_loss": 0.8, "val_loss": 0.9, "lr": 0.5, "grad_norm": 2.0},
        {"epoch": 3, "train_loss": 50.0, "val_loss": math.nan, "lr": 0.5, "grad_norm": 1e3},
        {"epoch": 4, "train_loss": 1e6, "val_loss": math.inf, "lr": 0.5, "grad_norm": 1e8},
        {"epoch": 5, "train_loss": math.inf, "lr": 0.5, "grad_norm": math.inf},
        {"epoch": 6, "train_loss": math.nan, "lr": 0.5, "grad_norm": math.nan},
    ]
    return {"epochs": epochs, "verdict": {"kind": "diverged", "message": message}}


def read_png(path):
    """The picture's pixels, after checking that the file is a PNG and not a blank canvas."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(path)
    assert pixels[..., :3].std() > 0.05  # axes, curves and text, not one flat colour
    return pixels


def texts(fig):
    """Every string drawn on the figure: titles, labels, annotations, legend entries."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def red_vertical_lines(ax):
    """The red lines from axvline: two points at one x."""
    return [
        line for line in ax.get_lines()
        if line.get_color() == RED and len(line.get_xdata()) == 2
        and line.get_xdata()[0] == line.get_xdata()[1]
    ]  # fmt: skip


# --- files -------------------------------------------------------------------------------------


def test_plot_history_writes_png_of_expected_size(tmp_path):
    target = tmp_path / "history.png"
    assert plot_history({"epochs": healthy_epochs()}, target, title="run 1") == target
    height, width, _ = read_png(target).shape
    assert (width, height) == (8 * plots.DPI, round(8.5 * plots.DPI))


def test_plot_lr_find_writes_png(tmp_path):
    lrs = np.logspace(-5, 0, 40)
    losses = 2.0 - np.tanh(np.log10(lrs) + 3) + np.where(lrs > 0.1, 100 * lrs, 0)
    target = plot_lr_find(lrs, losses, 1e-3, str(tmp_path / "lr.png"))
    height, width, _ = read_png(target).shape
    assert width / height == pytest.approx(7.0 / 4.5, rel=0.01)


def test_plot_schedule_writes_png_with_and_without_momentum(tmp_path):
    rates = [0.1 * (1 + math.cos(math.pi * s / 50)) / 2 for s in range(50)]
    one = read_png(plot_schedule(rates, tmp_path / "lr.png"))
    two = read_png(plot_schedule(rates, tmp_path / "both.png", momenta=[0.9] * 50))
    assert one.shape[0] / one.shape[1] == pytest.approx(4.0 / 7.0, rel=0.01)
    assert two.shape[0] / two.shape[1] == pytest.approx(5.5 / 7.0, rel=0.01)


@pytest.mark.parametrize(("suffix", "start"), [(".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_suffix_chooses_format(tmp_path, suffix, start):
    target = plot_schedule([0.1, 0.05, 0.01], tmp_path / f"schedule{suffix}")
    assert target.read_bytes().startswith(start)


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"'\.jpg'.*\.png, \.svg or \.pdf"):
        plot_schedule([0.1], tmp_path / "schedule.jpg")


def test_write_leaves_no_temporary_file(tmp_path):
    target = plot_history({"epochs": healthy_epochs(3)}, tmp_path / "history.png")
    assert os.listdir(tmp_path) == ["history.png"]
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600


def test_failed_save_leaves_existing_file_untouched(tmp_path, monkeypatch):
    target = tmp_path / "history.png"
    target.write_bytes(b"the previous picture")

    def broken_savefig(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_history({"epochs": healthy_epochs(3)}, target)
    assert target.read_bytes() == b"the previous picture"
    assert os.listdir(tmp_path) == ["history.png"]


def test_missing_folder_is_named_before_drawing(tmp_path, monkeypatch):
    def no_drawing(*args):
        raise AssertionError("drew a picture for a folder that does not exist")

    monkeypatch.setattr(plots, "_new_figure", no_drawing)
    missing = tmp_path / "no" / "such"
    for call in (
        lambda: plot_history({"epochs": healthy_epochs(3)}, missing / "h.png"),
        lambda: plot_lr_find([1e-3, 1e-2], [1.0, 0.5], None, missing / "lr.png"),
        lambda: plot_schedule([0.1], missing / "s.png"),
    ):
        with pytest.raises(FileNotFoundError, match="no such folder") as caught:
            call()
        assert caught.value.filename == str(missing)
        assert str(missing) in str(caught.value)


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def import_without_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_matplotlib)
    message = 'plots need matplotlib, the plot extra: pip install "graphgrad[plot]"'
    with pytest.raises(ImportError) as caught:
        plot_schedule([0.1], tmp_path / "s.png")
    assert str(caught.value) == message
    assert isinstance(caught.value.__cause__, ImportError)
    assert os.listdir(tmp_path) == []


def test_threads_draw_separate_pictures(tmp_path):
    errors = []

    def draw(index):
        try:
            read_png(plot_schedule([0.1 / (index + 1)] * 20, tmp_path / f"s{index}.png"))
        except Exception as error:  # reported to the main thread below
            errors.append(error)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(os.listdir(tmp_path)) == [f"s{i}.png" for i in range(4)]


# --- history -----------------------------------------------------------------------------------


def test_history_panels_and_log_scales():
    fig = _history_figure({"epochs": healthy_epochs()})
    loss_ax, lr_ax, grad_ax, metric_ax = fig.axes  # the metric's twin axis comes last
    assert loss_ax.get_yscale() == "log"
    assert lr_ax.get_yscale() == "linear"  # 0.1 down to 0.0125 spans 8x, not more than 10x
    assert grad_ax.get_yscale() == "log"
    assert metric_ax.get_yscale() == "linear"
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "loss", "learning rate", "gradient norm", "metric",
    ]  # fmt: skip
    assert grad_ax.get_xlabel() == "epoch"
    assert loss_ax.get_shared_x_axes().joined(loss_ax, grad_ax)
    assert fig.get_suptitle() == "Training history"
    assert {"train", "validation", "metric"} <= set(texts(fig))


def test_the_metric_is_called_by_its_name():
    from graphgrad.train import History

    history = History(epochs=healthy_epochs(), metric_name="accuracy")
    fig = _history_figure(history)
    assert fig.axes[-1].get_ylabel() == "accuracy"  # the metric's twin axis
    assert "accuracy" in texts(fig) and "metric" not in texts(fig)


def test_learning_rate_spanning_more_than_10x_gets_log_axis():
    epochs = healthy_epochs()
    for epoch in epochs:
        epoch["lr"] = 0.1 * 0.5 ** epoch["epoch"]
    assert _history_figure({"epochs": epochs}).axes[1].get_yscale() == "log"


def test_loss_with_zero_or_negative_values_stays_linear():
    epochs = [{"epoch": e, "train_loss": v} for e, v in enumerate([1.0, 0.0, -0.5], start=1)]
    assert _history_figure({"epochs": epochs}).axes[0].get_yscale() == "linear"


def test_history_accepts_object_with_to_dict(tmp_path):
    class History:
        def to_dict(self):
            return {"epochs": healthy_epochs(4)}

    fig = _history_figure(History(), title="from an object")
    assert fig.get_suptitle() == "from an object"
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 4


def test_history_with_none_nan_and_inf_plots_what_is_finite(tmp_path):
    history = diverged_history()
    fig = _history_figure(history)
    train = fig.axes[0].get_lines()[0].get_ydata()
    assert np.isfinite(train).sum() == 4  # the inf and the nan are gaps
    grad = fig.axes[2].get_lines()[0].get_ydata()
    assert np.isfinite(grad).sum() == 4
    crosses = [line for line in fig.axes[0].get_lines() if line.get_label() == "non-finite loss"]
    assert list(crosses[0].get_xdata()) == [5, 6]  # marked where the loss blew up
    read_png(plot_history(history, tmp_path / "diverged.png"))


def test_unrecorded_quantities_are_noted_not_drawn(tmp_path):
    epochs = [{"epoch": e, "train_loss": 1.0 / e, "lr": None} for e in range(1, 5)]
    fig = _history_figure({"epochs": epochs})
    assert "no learning rate recorded" in texts(fig)
    assert "no gradient norm recorded" in texts(fig)
    assert len(fig.axes) == 3  # no metric, so no twin axis
    read_png(plot_history({"epochs": epochs}, tmp_path / "sparse.png"))


def test_epochs_without_numbers_are_numbered_by_position():
    fig = _history_figure({"epochs": [{"train_loss": 1.0}, {"train_loss": 0.5}]})
    assert list(fig.axes[0].get_lines()[0].get_xdata()) == [1, 2]


def test_diverged_run_is_marked_at_its_last_epoch():
    fig = _history_figure(diverged_history())
    assert "diverged" in texts(fig)
    assert fig.axes[0].get_title(loc="left") == (
        "diverged: loss became nan at epoch 6; the learning rate is too high"
    )
    for ax in fig.axes[:3]:
        (line,) = red_vertical_lines(ax)
        assert line.get_xdata()[0] == 6


def test_long_verdict_message_is_shortened():
    fig = _history_figure(diverged_history("the loss exploded " * 40))
    title = fig.axes[0].get_title(loc="left")
    assert title.endswith("\u2026")
    assert title.count("\n") == 1
    assert all(len(line) <= plots.MESSAGE_CHARS for line in title.split("\n"))


@pytest.mark.parametrize("verdict", [None, "diverged", {"message": "no kind"}])
def test_without_a_verdict_dict_nothing_is_marked(verdict):
    fig = _history_figure({"epochs": healthy_epochs(3), "verdict": verdict})
    assert "diverged" not in texts(fig)
    assert not any(red_vertical_lines(ax) for ax in fig.axes)


def test_bad_histories_are_refused():
    with pytest.raises(TypeError, match="to_dict"):
        _history_figure([{"epoch": 1, "train_loss": 1.0}])
    with pytest.raises(ValueError, match="no epochs"):
        _history_figure({"epochs": []})


# --- learning-rate range test and schedules ----------------------------------------------------


def test_lr_find_marks_the_suggestion():
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    fig = _lr_find_figure(lrs, [2.3, 2.2, 1.4, math.nan, math.inf], 1e-2, None)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert ax.get_yscale() == "linear"  # finite losses span less than 10x
    (line,) = red_vertical_lines(ax)
    assert line.get_xdata()[0] == 1e-2
    assert "suggested lr 0.01" in [t.strip() for t in texts(fig)]


def test_lr_find_without_suggestion_and_with_exploding_loss():
    fig = _lr_find_figure([1e-3, 1e-2, 1e-1, 1.0], [2.0, 1.0, 5.0, 500.0], None, "range")
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert not red_vertical_lines(ax)
    assert fig.get_suptitle() == "range"


def test_lr_find_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="3 learning rates but 2 losses"):
        _lr_find_figure([1e-3, 1e-2, 1e-1], [1.0, 0.5], None, None)


def test_schedule_panels_and_scales():
    fig = _schedule_figure([0.1 * 0.5**s for s in range(10)], None, [0.9] * 10)
    lr_ax, momentum_ax = fig.axes
    assert lr_ax.get_yscale() == "log"  # 0.1 down to 0.0002
    assert momentum_ax.get_yscale() == "linear"
    assert momentum_ax.get_xlabel() == "step"
    assert list(lr_ax.get_lines()[0].get_xdata()) == list(range(10))


def test_schedule_with_parameter_groups_and_gaps():
    rates = [[0.1, 0.01], [None, 0.02], [math.inf, 0.03]]
    fig = _schedule_figure(rates, "groups", None)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["group 0", "group 1"]
    assert np.isfinite(ax.get_lines()[0].get_ydata()).sum() == 1
    with pytest.raises(ValueError, match="same number"):
        _schedule_figure([[0.1, 0.2], [0.1]], None, None)
    with pytest.raises(ValueError, match="no learning rates"):
        _schedule_figure([], None, None)
