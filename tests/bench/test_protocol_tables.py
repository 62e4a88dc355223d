"""The grid's tables under both protocols: honest (epoch chosen on validation) and the paper's
(best test epochs), what test selection adds, and NLA against SCN, RUL and EAC."""

from __future__ import annotations

import pytest

from fer_nla.bench.protocol_tables import paper_rows, protocol_gap_table, rivals_summary, rivals_table, side_by_side_table


def _row(method, setting, seed, honest, paper):
    """``honest``/``paper``: (overall, mean-class); the paper's two figures come from two epochs."""
    return {"method": method, "setting": setting, "seed": seed, "overall_acc": honest[0], "mean_acc": honest[1],
            "paper": {"best_overall": {"epoch": 3, "overall_acc": paper[0], "mean_acc": paper[1] - 0.05},
                      "best_mean": {"epoch": 5, "overall_acc": paper[0] - 0.01, "mean_acc": paper[1]}}}


ROWS = [
    _row("nla", "symmetric_30", 0, (0.70, 0.50), (0.72, 0.56)), _row("nla", "symmetric_30", 1, (0.68, 0.48), (0.71, 0.52)),
    _row("scn", "symmetric_30", 0, (0.71, 0.45), (0.72, 0.47)), _row("scn", "symmetric_30", 1, (0.69, 0.47), (0.70, 0.49)),
    _row("ce", "symmetric_30", 0, (0.74, 0.40), (0.75, 0.42)), _row("ce", "symmetric_30", 1, (0.72, 0.44), (0.73, 0.46)),
    _row("ce", "clean", 0, (0.80, 0.60), (0.90, 0.90)),  # the clean reference is no noisy setting: left out
]


def test_paper_rows_take_the_two_separately_picked_figures():
    row = paper_rows(ROWS[:1])[0]
    assert (row["overall_acc"], row["mean_acc"]) == (0.72, 0.56) and ROWS[0]["overall_acc"] == 0.70


def test_the_gap_table_averages_paper_minus_honest_per_method_and_over_all():
    table, means = protocol_gap_table(ROWS)
    lines = table.splitlines()
    assert lines[2] == "| nla | +2.50 | +2.00 .. +3.00 | +5.00 | +4.00 .. +6.00 |"
    assert lines[3] == "| scn | +1.00 | +1.00 .. +1.00 | +2.00 | +2.00 .. +2.00 |"
    assert lines[4] == "| ce | +1.00 | +1.00 .. +1.00 | +2.00 | +2.00 .. +2.00 |"
    assert lines[5] == "| **all methods** | +1.50 | +1.00 .. +3.00 | +3.00 | +2.00 .. +6.00 |"
    assert means == pytest.approx({"overall": 1.5, "mean": 3.0})


def test_nla_against_its_rivals_is_paired_by_seed_under_each_protocol_with_its_rank():
    lines = rivals_table(ROWS, rivals=("scn", "rul")).splitlines()
    assert lines[0] == ("| setting | protocol | nla - scn, overall | nla - scn, mean-class | nla's rank, overall | "
                        "nla's rank, mean-class |")
    assert lines[2] == "| symmetric_30 | honest | -1.00 | +3.00 | 3 of 3 | 1 of 3 |"
    assert lines[3] == "| symmetric_30 | paper | +0.50 | +6.00 | 2 of 3 | 1 of 3 |"
    summary = rivals_summary(ROWS, rivals=("scn", "rul"))
    assert summary["honest"]["scn"] == pytest.approx({"overall": -1.0, "mean": 3.0, "settings_ahead_mean": 1, "settings": 1,
                                                        "cells_ahead_overall": 0, "cells_ahead_mean": 2, "cells": 2})
    assert summary["paper"]["scn"]["overall"] == pytest.approx(0.5) and "rul" not in summary["paper"]


def test_both_protocols_side_by_side_are_the_means_over_noisy_cells_with_ranks():
    lines = side_by_side_table(ROWS).splitlines()
    assert lines[0] == "| method | overall, honest | overall, paper | mean-class, honest | mean-class, paper |"
    means = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert list(means)[0] == "nla"  # best honest mean-class first
    assert means["nla"] == "| nla | 69.00 (3) | 71.50 (2) | 49.00 (1) | 54.00 (1) |"
    assert means["ce"] == "| ce | 73.00 (1) | 74.00 (1) | 42.00 (3) | 44.00 (3) |" and len(lines) == 5
