"""ACC and BWT from an accuracy matrix A[i, j] (accuracy on task j after training task i), by hand."""

from __future__ import annotations

import math

import pytest

from neurosim.continual import MethodResult, acc, bwt
from neurosim.continual.report import report_markdown
from neurosim.continual.train import summarize

# Four tasks. Diagonal (just learnt): 95, 90, 85, 80. Last row (final): 60, 70, 80, 80.
A = [
    [95.0, 10.0, 12.0, 9.0],
    [75.0, 90.0, 11.0, 10.0],
    [65.0, 80.0, 85.0, 8.0],
    [60.0, 70.0, 80.0, 80.0],
]


def test_acc_is_the_mean_of_the_last_row():
    assert acc(A) == pytest.approx((60 + 70 + 80 + 80) / 4)  # 72.5


def test_bwt_is_the_mean_final_minus_just_learnt_over_earlier_tasks():
    # (60 − 95) + (70 − 90) + (80 − 85) = −35 − 20 − 5 = −60, over the 3 earlier tasks
    assert bwt(A) == pytest.approx(-20.0)
    # the last task never counts, and gains count positive
    assert bwt([[50.0, 0.0], [58.0, 99.0]]) == pytest.approx(8.0)


def test_entries_above_the_diagonal_do_not_matter():
    other = [row[:] for row in A]
    other[0][3] = other[1][2] = 100.0
    assert (acc(other), bwt(other)) == (acc(A), bwt(A))


def test_single_task_has_no_bwt_and_bad_shapes_are_refused():
    assert acc([[42.0]]) == 42.0 and math.isnan(bwt([[42.0]]))
    with pytest.raises(ValueError, match=r"square \[N, N\] .* got shape \(2, 3\)"):
        bwt([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match="missing"):
        acc([[90.0, 1.0], [float("nan"), 80.0]])
    with pytest.raises(ValueError, match=r"square \[N, N\] .* rows of lengths \[1, 2, 3\].*nan"):
        bwt([[90], [70, 88], [60, 80, 85]])  # lower-triangular lists


def test_a_multitask_runs_single_row_has_an_acc_and_no_bwt_as_its_method_result_says():
    # before: acc(r.matrix) of a multitask result raised "must be square [N, N] ... got shape (1, 3)"
    row = [[90.0, 80.0, 70.0]]
    r = MethodResult("multitask", 0, row, 1.0)
    assert acc(row) == r.acc == pytest.approx(80.0)
    assert math.isnan(bwt(row)) and math.isnan(r.bwt)
    with pytest.raises(ValueError, match=r"\[1, N\] have missing"):
        acc([[90.0, float("nan")]])
    with pytest.raises(ValueError, match=r"square \[N, N\] with N >= 1 \(or one row of final accuracies \[1, N\]\), "
                                         r"got shape \(2, 3\)"):
        acc([[1, 2, 3], [4, 5, 6]])


def test_method_results_and_their_summary():
    runs = [MethodResult("hlop", 0, A, 2.0), MethodResult("hlop", 1, [[90.0, 0.0], [88.0, 92.0]], 4.0)]
    assert runs[1].acc == 90.0 and runs[1].bwt == -2.0
    s = summarize(runs)
    assert s["acc_mean"] == pytest.approx((72.5 + 90.0) / 2) and s["acc_std"] == pytest.approx(17.5 / 2 ** 0.5)  # ddof 1
    assert s["bwt_mean"] == pytest.approx(-11.0) and s["seconds_mean"] == 3.0
    joint = MethodResult("multitask", 0, [[90.0, 80.0]], 1.0)  # one row: final accuracies only
    assert joint.acc == 85.0 and math.isnan(joint.bwt) and joint.as_dict()["bwt"] is None
    assert "bwt_mean" not in summarize([joint])
    one = summarize(runs[:1])  # one seed: no spread measured, and the report does not print "± 0.00"
    assert one["acc_std"] is None and one["bwt_std"] is None
    table = report_markdown("r", {"hlop": one}, "setting", [], seeds=[0])
    assert "| 72.50 | -20.00 |" in table and "±" not in table.split("## For reference")[0]


def test_the_multitask_panels_final_label_stays_clear_of_the_panel_on_its_left():
    from neurosim.continual.report import accuracy_heatmaps

    fig = accuracy_heatmaps({"baseline": [[90, 1, 2], [50, 90, 3], [40, 60, 90]],
                             "hlop": [[90, 1, 2], [88, 90, 3], [87, 86, 90]], "multitask": [[95, 94, 93]]})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hlop, multitask = fig.axes[1], fig.axes[2]
    assert multitask.get_title() == "multitask (joint upper bound)"
    (final,) = [t for t in multitask.get_yticklabels() if t.get_text()]
    assert final.get_text() == "final"
    # upright, the label began 10 px inside the HLOP panel
    assert final.get_window_extent(renderer).x0 > hlop.get_window_extent(renderer).x1
