"""Every measured figure that README.md and docs/ quote equals its source in the repository (a
results file, the model card, a config's header, a run's metrics), so that changing one without
the other fails; and scripts/suite_figures.py reads pytest's figures right (issue 22, item 5)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CARD = (ROOT / "src" / "fer_nla" / "weights" / "ferplus-resnet10s.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def doc(name: str) -> str:
    return flat((ROOT / "docs" / name).read_text(encoding="utf-8"))


def result(name: str) -> str:
    return (RESULTS / name).read_text(encoding="utf-8")


def row(text: str, first: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is ``first``."""
    match = re.search(rf"^\| {re.escape(first)} \|(.*)\|\s*$", text, re.M)
    assert match, f"no table row {first!r}"
    return [cell.strip().strip("*").split(" ± ")[0].strip("*") for cell in match[1].split("|")]


def pct(value: float, digits: int = 2) -> str:
    return f"{value * 100:.{digits}f}%"


def methods_part(start: str, end: str | None = None) -> str:
    """docs/methods.md from the heading ``start`` up to the heading ``end`` (tables repeat row names)."""
    text = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    begin = text.index(start)
    return text[begin:text.index(end, begin)] if end else text[begin:]


def half_up(value: float) -> int:
    return int(value + 0.5)


# --- the built-in model: the model card, its training run, a fresh evaluation ------------------

def test_builtin_model_table_and_per_class_figures_equal_the_model_card():
    predict = (ROOT / "docs" / "predict.md").read_text(encoding="utf-8")
    card8, docs8 = row(CARD, "8"), row(predict, "8")
    assert docs8 == card8[:5], (docs8, card8)  # faces, overall, mean-class, top-2, macro-F1
    card7 = row(CARD, "7 (contempt faces and output dropped)")
    assert row(predict, "7 (contempt dropped)")[:3] == card7[:3]
    card_classes = dict(re.findall(rf"({'|'.join(CLASSES)}) (\d+\.\d+)%", flat(CARD)))
    doc_classes = dict(re.findall(rf"({'|'.join(CLASSES)}) (\d+\.\d)%", flat(predict)))
    assert set(doc_classes) == set(CLASSES)
    for name in CLASSES:
        assert float(doc_classes[name]) == round(float(card_classes[name]), 1), name
    overall = card8[1]
    assert f"{overall} on FERPlus valid" in flat(README)


def test_builtin_model_training_time_and_best_epoch_equal_its_run():
    rows = [json.loads(line) for line in result("ferplus_model/metrics.jsonl").splitlines() if line.strip()]
    minutes = half_up(sum(r["seconds"] for r in rows) / 60)
    best = max(r["epoch"] for r in rows if r.get("best"))
    assert f"({minutes} min of epochs" in doc("predict.md")
    assert f"{minutes} min of epochs" in flat(CARD) and f"best epoch {best} of {len(rows)}" in flat(CARD)


@pytest.fixture(scope="module")
def builtin_valid_scores(ferplus_root) -> dict:
    from fer_nla.builtin import DEFAULT_MODEL, builtin_path
    from fer_nla.evaluate import evaluate_checkpoint

    return evaluate_checkpoint(str(builtin_path(DEFAULT_MODEL)), dataset="ferplus", root=str(ferplus_root),
                               split="valid", labels="majority", device_name="cpu")


def test_builtin_model_card_figures_are_what_the_shipped_weights_score(builtin_valid_scores):
    scores = builtin_valid_scores
    card8 = row(CARD, "8")
    assert card8[0] == f"{scores['num_samples']:,}"
    assert card8[1:5] == [pct(scores[key]) for key in ("overall_acc", "mean_acc", "top2_acc", "macro_f1")]


def test_builtin_model_card_operating_points_and_calibration_are_what_the_shipped_weights_score(builtin_valid_scores):
    scores = builtin_valid_scores
    assert set(scores["operating_points"]) >= {"train", "uniform"}
    for prior, point in scores["operating_points"].items():
        cells = row(CARD, prior)
        assert cells[:2] == [pct(point["overall_acc"]), pct(point["mean_acc"])], prior
        assert cells[2:] == [pct(point["per_class_acc"][name]) for name in CLASSES], prior
    ece = scores["ece"]
    assert f"temperature {ece['temperature']:.3f}" in flat(CARD)
    assert f"{pct(ece['before'])} uncalibrated, {pct(ece['after'])} calibrated" in flat(CARD)


# --- prediction speed, detectors, crop margin ---------------------------------------------------

def test_inference_speed_equals_the_inference_benchmark():
    text = result("inference_cpu.md")
    onnx = re.search(r"^\| onnxruntime \| 32 \| ([\d,]+) \|", text, re.M)[1]
    torch = re.search(r"^\| PyTorch \| 32 \| ([\d,]+) \|", text, re.M)[1]
    photo = [float(ms) for ms in re.findall(r"^\| 640x480 \|[^|]*\|[^|]*\| retinaface [^|]*\| \d+ \| ([\d.]+) \|",
                                            text, re.M)]
    assert len(photo) == 2
    span = f"{half_up(min(photo))}-{half_up(max(photo))} ms"
    predict = doc("predict.md")
    assert f"{onnx} faces/s through onnxruntime at batch 32, {torch} with PyTorch" in predict
    assert f"{span} per 640x480 photo" in predict
    assert f"a 640x480 photo takes {span} on one CPU thread" in flat(README)


def test_detector_and_crop_margin_figures_equal_their_benchmarks():
    detectors = result("detectors.md")
    retina, haar = row(detectors, "retinaface"), row(detectors, "haar")
    found, total = retina[0].split("/")
    assert retina[1] == haar[1] == "0"
    assert f"RetinaFace found {found} of {total} faces and Haar {haar[0].split('/')[0]}, neither with a false box" \
        in doc("predict.md")
    margin = result("crop_margin.md")
    loss = float(row(margin, "detector box + margin 0")[0].rstrip("%")) - \
        float(row(margin, "detector box + margin 0.1")[0].rstrip("%"))
    assert f"loses {round(loss)} points at 0.1" in doc("predict.md")


def test_serve_load_figures_equal_the_load_benchmark():
    text = flat(result("serve_load_cpu.md"))
    rate = re.search(r"\*\*([\d.]+) requests/s\*\*", text)[1]
    p50, p95, top = re.search(r"p50 (\d+) ms, p95 (\d+) ms, max (\d+) ms", text).groups()
    load = re.search(r"load average ([\d.]+) before the run", text)[1]
    sent = re.search(r"requests: (\d+), (\d+) in flight", text).groups()
    serving = doc("serving.md")
    assert f"{rate} requests/s ({round(float(rate) * 14)} faces/s), p50 {p50} ms, p95 {p95} ms, max {top} ms" in serving
    assert f"load average {load} before the run" in serving
    assert f"sends {sent[0]} photos (`group.jpg`, 1280x720, 14 faces), {sent[1]} in flight" in serving


def test_two_view_speed_up_equals_the_throughput_benchmark():
    speed_up = re.search(r"NLA batched / separate: ([\d.]+x) at 48 px", result("train_throughput_cpu.md"))[1]
    assert f"{speed_up} the images/s of two forwards at 48 px" in doc("training.md")


# --- training recipes and benchmarks --------------------------------------------------------------

def test_ferplus_cpu_table_equals_the_config_header():
    header = flat((ROOT / "configs" / "ferplus_cpu.yaml").read_text(encoding="utf-8"))
    ce = re.search(r"CE ([\d.]+) min, ([\d.]+%) overall / ([\d.]+%) mean", header).groups()
    nla = re.search(r"NLA ([\d.]+) min, ([\d.]+%) / ([\d.]+%)", header).groups()
    training = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    for loss, (minutes, overall, mean) in (("`ce`", ce), ("`nla`", nla)):
        assert row(training, loss)[:3] == [f"{minutes} min", overall, mean], loss


def test_robustness_grid_figures_equal_its_results():
    text = result("robustness.md")
    overall = text[text.index("## Overall accuracy"):text.index("## Mean class accuracy")]
    columns = row(overall, "method")
    ce, nla = row(overall, "ce"), row(overall, "nla")
    methods = methods_part("### Robustness", "### NLA when fine-tuning")
    for setting, label in (("single_vote", "single vote"), ("symmetric_30", "30% symmetric noise")):
        i = columns.index(setting)
        assert row(methods, label) == [f"{float(ce[i]):.1f}%", f"{float(nla[i]):.1f}%"], setting
    minutes, cells = re.search(r"wall time ([\d.]+) min \((\d+) cells", text).groups()
    assert f"{cells} runs, {minutes} minutes on 2 cores" in flat(methods)


def _regime_tables() -> tuple[dict, dict, list[str]]:
    text = result("pretrained_regime.md")
    tables = {}
    for title, end in (("## Overall accuracy", "## Mean class accuracy"), ("## Mean class accuracy", "## NLA against CE")):
        part = text[text.index(title):text.index(end)]
        columns = row(part, "method")
        rows = re.findall(r"^\| ([a-z_]+) \|", part, re.M)
        tables[title] = {name: dict(zip(columns, row(part, name))) for name in rows if name != "method"}
    return tables["## Overall accuracy"], tables["## Mean class accuracy"], columns


NAMES = {"gce": "GCE", "class_balanced": "class-balanced", "logit_adjusted": "logit-adjusted",
         "label_smoothing": "label smoothing", "sce": "SCE", "focal": "focal", "ce": "CE", "nla": "NLA"}


def test_pretrained_regime_figures_equal_its_results():
    overall, mean, _ = _regime_tables()
    methods = methods_part("### NLA when fine-tuning", "### NLA against SCN")
    for setting, label in (("single_vote", "single vote"), ("symmetric_30", "30% symmetric"),
                           ("imbalance_100", "imbalance 100")):
        best_overall = max(overall, key=lambda m: float(overall[m][setting]))
        best_mean = max(mean, key=lambda m: float(mean[m][setting]))
        assert row(methods, label) == [
            f"{overall['ce'][setting]} / {mean['ce'][setting]}", f"{overall['nla'][setting]} / {mean['nla'][setting]}",
            f"{NAMES[best_overall]} {overall[best_overall][setting]}", f"{NAMES[best_mean]} {mean[best_mean][setting]}",
        ], setting
    text = flat(result("pretrained_regime.md"))
    minutes, cells = re.search(r"wall time ([\d.]+) min \((\d+) cells", text).groups()
    start = re.search(r"it scores ([\d.]+)% overall, ([\d.]+)% mean-class", text).groups()
    assert f"fits {cells} runs (grid and NLA's ablation) in {minutes} minutes" in flat(methods)
    assert f"{start[0]}% overall, {start[1]}% mean-class on FERPlus valid" in flat(methods)
    assert f"the pretrained start scores {start[0]} / {start[1]}" in flat(methods)


def test_nla_ablation_table_equals_the_regime_results():
    text = result("pretrained_regime.md")
    ablation = text[text.index("## NLA's ablation"):]
    methods = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    variants = {"nla": "reference (NAW + consistency summed over the batch)", "nla_naw_only": "NAW only (`lam_c=0`)",
                "nla_consistency_only": "consistency only (`lam_b=0`)", "nla_no_schedule": "no schedule",
                "nla_detached": "NAW weights detached (`detach_weights=true`)",
                "nla_consistency_mean": "consistency averaged (`consistency_reduction=mean`)"}
    for variant, label in variants.items():
        cells = []
        for setting in ("single_vote", "symmetric_30"):
            found = re.search(rf"^\| {variant} \| {setting} \| ([\d.]+) ± [\d.]+ \| ([\d.]+) ±", ablation, re.M)
            cells.append(f"{found[1]} / {found[2]}")
        assert row(methods, label) == cells, variant


def _noisy_means(rows: list[dict], metric: str) -> dict[str, float]:
    methods = sorted({r["method"] for r in rows})
    return {m: sum(r[metric] for r in rows if r["method"] == m) / sum(r["method"] == m for r in rows) for m in methods}


def _rank(means: dict[str, float], method: str) -> str:
    return f"{sorted(means, key=lambda m: -means[m]).index(method) + 1} of {len(means)}"


def test_identity_regime_figures_equal_its_results():
    from fer_nla.bench.protocol_tables import paper_rows

    data = json.loads(result("identity_regime/pretrained_regime.json"))
    meta, rows = data["meta"], data["rows"]
    noisy = [r for r in rows if r["setting"] != "clean"]
    part = methods_part("### NLA against SCN", "### The label audit")
    text = flat(part)
    by_protocol = {"honest": noisy, "paper": paper_rows(noisy)}
    summaries = {"reference": meta["nla_against_rivals"], "consistency averaged":
                 meta["variants_against_rivals"]["nla_consistency_mean"]}
    for label, summary in summaries.items():
        method = "nla" if label == "reference" else "nla_consistency_mean"
        for protocol, chosen in by_protocol.items():
            diffs = " | ".join(f"{summary[protocol][r]['overall']:+.2f} / {summary[protocol][r]['mean']:+.2f}"
                               for r in ("scn", "rul", "eac"))
            ranks = f"{_rank(_noisy_means(chosen, 'overall_acc'), method)} | {_rank(_noisy_means(chosen, 'mean_acc'), method)}"
            assert f"| {protocol} | {label} | {diffs} | {ranks} |" in part, (protocol, label)
    assert f"({len(rows)} cells, {meta['seconds'] / 60:.1f} minutes on 2 cores" in text
    gap = meta["protocol_gap"]
    assert f"reads {gap['overall']:+.2f} points of overall and {gap['mean']:+.2f} of mean-class accuracy" in text
    honest, paper = (_noisy_means(c, "mean_acc") for c in by_protocol.values())
    overall = _noisy_means(noisy, "overall_acc")
    assert f"({pct(honest['logit_adjusted'])} honest, {pct(paper['logit_adjusted'])} paper;" in text
    assert f"({pct(overall['nla_consistency_mean'])} on average, honest)" in text
    assert f"accuracy ({pct(honest['nla_consistency_mean'])})" in text
    assert f"EAC reaches {pct(honest['eac'])} mean-class" in text
    one_class = {m: sum(abs(r["mean_acc"] - 1 / 8) < 1e-9 for r in noisy if r["method"] == m) for m in ("gce", "scn")}
    assert f"GCE predicts one class in all {one_class['gce']} of its noisy cells" in text
    assert f"SCN predicts a single class in {one_class['scn']} of its 18 noisy cells" in text
    cells = {p: [meta["nla_against_rivals"][p][r]["cells_ahead_mean"] for r in ("scn", "rul", "eac")] for p in by_protocol}
    assert all(meta["nla_against_rivals"][p][r]["cells"] == 18 for p in by_protocol for r in ("scn", "rul", "eac"))
    assert (f"in {cells['honest'][0]}, {cells['honest'][1]} and {cells['honest'][2]} of 18 cells (honest; "
            f"{cells['paper'][0]}, {cells['paper'][1]} and {cells['paper'][2]} under the paper protocol)") in text
    clean = [r for r in rows if r["setting"] == "clean"]
    assert (f"reaches {pct(sum(r['overall_acc'] for r in clean) / len(clean))} overall and "
            f"{pct(sum(r['mean_acc'] for r in clean) / len(clean))} mean-class accuracy") in text
    by_cell = {(r["method"], r["setting"], r["seed"]): r for r in noisy}
    ahead_of_ce = sum(r["mean_acc"] > by_cell[("ce", s, seed)]["mean_acc"] for (m, s, seed), r in by_cell.items() if m == "nla")
    assert f"in {ahead_of_ce} of 18 cells it is ahead" in text
    settings = sorted({r["setting"] for r in noisy})
    variant = [_noisy_means([r for r in noisy if r["setting"] == s], "overall_acc") for s in settings]
    leads = [v["nla_consistency_mean"] - max(x for m, x in v.items() if m != "nla_consistency_mean") for v in variant]
    assert min(leads) > 0 and f"in {sum(d < 0.002 for d in leads)} of them (honest) by less than 0.2 points" in text
    nla_minus_ce = [100 * (sum(r["mean_acc"] for r in noisy if r["method"] == "nla" and r["setting"] == s)
                           - sum(r["mean_acc"] for r in noisy if r["method"] == "ce" and r["setting"] == s)) / 3
                    for s in {r["setting"] for r in noisy}]
    assert max(nla_minus_ce) < 0 and f"(by {-max(nla_minus_ce):.2f} to {-min(nla_minus_ce):.2f} points;" in text
    epochs = meta["ce_fit_epochs"]["single_vote"]
    assert f"at epochs {', '.join(map(str, epochs[:-1]))} and {epochs[-1]}" in text
    readme = flat(README[README.index("## Does NLA help?"):README.index("## Documentation")])
    assert f"adds {gap['overall']:.2f} points of overall and {gap['mean']:.2f} of mean-class accuracy" in readme
    assert "NLA is ahead of SCN, RUL and EAC in overall and mean-class accuracy on average over the settings" in readme
    assert all(v[metric] > 0 for protocol in meta["nla_against_rivals"].values() for v in protocol.values()
               for metric in ("overall", "mean"))
    last = {s: [pct(sum(r["history"][-1][k] for r in noisy if r["method"] == "ce" and r["setting"] == s) / 3)
                for k in ("train_acc", "train_acc_clean")] for s in ("single_vote", "symmetric_30")}
    assert f"ends at {last['single_vote'][0]} against {last['single_vote'][1]}" in text
    assert f"{last['symmetric_30'][0]} on the given labels against {last['symmetric_30'][1]}" in text


def test_own_label_set_figures_equal_their_results():
    rows = json.loads(result("identity_regime/own_label_sets/pretrained_regime.json"))["rows"]

    def mean(method: str, setting: str, value) -> float:
        chosen = [value(r) for r in rows if r["method"] == method and r["setting"] == setting]
        return sum(chosen) / len(chosen)

    part = methods_part("**Label sets of our own.**", "### The label audit")
    methods = ("ce", "logit_adjusted", "nla", "nla_consistency_mean", "scn", "rul", "eac")
    for setting in ("runner_up", "to_neutral"):
        cells = [f"{pct(mean(m, setting, lambda r: r['overall_acc']))[:-1]} / {pct(mean(m, setting, lambda r: r['mean_acc']))[:-1]}"
                 for m in methods]
        noise = pct(mean("ce", setting, lambda r: r["train_noise_rate"]), 1)
        assert f"| `{setting}` ({noise}) | " + " | ".join(cells) + " |" in part, setting
    text = flat(part)
    gap = 100 * (mean("nla", "runner_up", lambda r: r["mean_acc"]) - mean("ce", "runner_up", lambda r: r["mean_acc"]))
    assert f"trails CE by {-gap:.2f} points of mean-class accuracy" in text
    close = 100 * (mean("ce", "runner_up", lambda r: r["mean_acc"]) - mean("nla_consistency_mean", "runner_up", lambda r: r["mean_acc"]))
    assert f"within {close:.2f} points of CE's" in text
    neutral = [mean(m, "to_neutral", lambda r: r["per_class_acc"]["neutral"]) for m in ("ce", "nla", "scn", "rul", "eac")]
    assert f"call {100 * min(neutral):.1f}% to {100 * max(neutral):.0f}% of neutral faces" in text
    noisy = [r for r in rows if r["method"] == "ce" and r["setting"] == "to_neutral"]
    adds = [sum(100 * (r["paper"][k]["overall_acc" if k == "best_overall" else "mean_acc"] - r[m]) for r in noisy) / len(noisy)
            for k, m in (("best_overall", "overall_acc"), ("best_mean", "mean_acc"))]
    assert f"adds {adds[0]:.2f} points of overall and {adds[1]:.2f} of mean-class accuracy to CE" in text
    assert all(e == 1 for e in json.loads(result("identity_regime/own_label_sets/pretrained_regime.json"))["meta"]
               ["ce_fit_epochs"]["to_neutral"]) and 'CE "fits" these labels from the first epoch' in text


def test_label_audit_benchmark_figures_equal_audit_json():
    data = json.loads(result("audit.json"))
    summary = data["summary"]
    methods = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    for key, label in (("nla_signals", "audit score, NLA run"), ("ce_signals", "audit score, CE run"),
                       ("cleanlab", "cleanlab, 5-fold out-of-fold CE")):
        s = summary[key]
        assert row(methods, label) == [str(int(s["training_runs"])), f"{s['precision_at_k']:.3f}", f"{s['roc_auc']:.3f}"]
    text = flat(methods)
    assert f"({summary['ce_signals']['roc_auc']:.4f} against {summary['cleanlab']['roc_auc']:.4f})" in text
    assert f"{data['seconds'] / 60:.1f} minutes on 2 cores" in text
    assert f"{half_up(summary['cleanlab']['flagged']):,} flagged" in text
    assert f"{half_up(summary['ce_signals']['flagged']):,} flagged" in text
    assert f"({half_up(summary['nla_signals']['flagged']):,})" in text
    cl = summary["cleanlab"]
    assert f"precision {cl['precision_flagged']:.2f} and recall {cl['recall_flagged']:.2f}" in text


# --- the test suite's figures: generated by scripts/suite_figures.py ---------------------------

def _suite_figures():
    if "suite_figures" not in sys.modules:  # its dataclass needs the module registered while it runs
        spec = importlib.util.spec_from_file_location("suite_figures", ROOT / "scripts" / "suite_figures.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["suite_figures"] = module
        spec.loader.exec_module(module)
    return sys.modules["suite_figures"]


def test_suite_figures_reads_pytest_summary_lines():
    figures = _suite_figures().parse_output(
        "....s..\n...\n1 failed, 917 passed, 3 skipped, 2 deselected, 12 warnings in 194.12s (0:03:14)\n")
    assert figures.counts == {"failed": 1, "passed": 917, "skipped": 3, "deselected": 2, "warnings": 12}
    assert figures.total == 921 and figures.seconds == pytest.approx(194.12)
    assert _suite_figures().parse_output("= 5 passed, 1 error in 2.50s =").counts == {"passed": 5, "errors": 1}
    with pytest.raises(ValueError):
        _suite_figures().parse_output("collected 0 items\n")


def test_suite_figures_reads_a_junit_file_and_writes_the_report(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0" failures="2" '
                     'skipped="7" tests="920" time="201.5"></testsuite></testsuites>')
    module = _suite_figures()
    figures = module.parse_junit(junit)
    assert figures.counts == {"passed": 911, "failed": 2, "skipped": 7} and figures.total == 920
    out = tmp_path / "test_suite.md"
    assert module.main(["--junit", str(junit), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| 920 | 911 passed, 2 failed, 7 skipped | 3m22s (201.5 s) |" in text
    assert "- machine: " in text and "torch " in text and "- date: " in text


def test_the_generated_suite_figures_file_has_a_count_time_and_machine():
    path = RESULTS / "test_suite.md"
    if not path.is_file():
        pytest.skip("benchmarks/results/test_suite.md is not generated yet: python scripts/suite_figures.py")
    text = path.read_text()
    assert re.search(r"^\| \d+ \| \d+ passed.* \| \d+m\d\ds \(", text, re.M)
    assert "- machine: " in text and "- software: Python " in text


def test_the_demo_figures_in_readme_equal_the_demo_run():
    """README's quick start quotes the demo's wall time and validation accuracy as
    ``scripts/demo_figures.py`` measured them (benchmarks/results/demo_train.md)."""
    source = RESULTS / "demo_train.md"
    if not source.is_file():
        pytest.skip("benchmarks/results/demo_train.md not written yet: run python scripts/demo_figures.py")
    text = source.read_text(encoding="utf-8")
    wall = re.search(r"wall time: \*\*(\d+m\d+s)\*\*", text)[1]
    accuracy = re.search(r"validation accuracy \(best epoch, \d+\): \*\*([\d.]+%)\*\*", text)[1]
    quick = flat(README[README.index("## Quick start"):README.index("## Test")])
    assert f"{wall}, validation accuracy {accuracy}" in quick


# --- issue 23: the balanced candidates and the built-in model's default prior --------------------

def test_balanced_candidate_tables_are_what_their_json_holds_and_the_card_uses_the_rule_winner():
    spec = importlib.util.spec_from_file_location("balanced_candidates", ROOT / "benchmarks" / "balanced_candidates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = json.loads(result("balanced_candidates.json"))
    text = result("balanced_candidates.md")
    assert module.table(results) in text and module.curves_table(results) in text
    ranked = sorted(results, key=lambda r: (r["merit"]["qualifies"], r["merit"]["mean_acc"]), reverse=True)
    shipped = next(r for r in results if r["name"] == "shipped")
    assert ranked[0]["merit"]["mean_acc"] - shipped["merit"]["mean_acc"] < 0.005  # no candidate beats it by the tie band
    tau = shipped["merit"]["tau"]
    assert f"--default-tau {tau:g}" in flat(CARD) and f"`pi ** {1 - tau:g}`" in flat(CARD)
    assert pct(shipped["merit"]["mean_acc"]) in row(CARD, "default")
