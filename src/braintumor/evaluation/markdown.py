"""The evaluation report as markdown: summary, baselines, per-class figures, confusion
matrices, the OOD, collection and outside-tumour sections, and the leakage caveat."""

from __future__ import annotations

from braintumor.evaluation.collections import render_markdown as by_collection
from braintumor.evaluation.external import render_markdown as external_markdown
from braintumor.evaluation.metrics import BASELINES
from braintumor.evaluation.ood_report import render_markdown as ood_markdown


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _summary_table(all_: dict, hard: dict | None) -> list[str]:
    rows = [("Images", lambda m: str(m["n"])),
            ("Accuracy", lambda m: _pct(m["accuracy"])),
            ("Accuracy of the head alone", lambda m: _pct(m["accuracy_head"])),
            ("Macro-F1", lambda m: _pct(m["macro_f1"])),
            ("Macro ROC AUC (one vs rest)", lambda m: _num(m["macro_auc"])),
            ("NLL, raw", lambda m: _num(m["nll"])),
            ("NLL, calibrated", lambda m: _num(m["nll_calibrated"])),
            ("ECE, raw", lambda m: _num(m["ece"])),
            ("ECE, calibrated", lambda m: _num(m["ece_calibrated"]))]
    return _table(["Metric", "All", "Hard subset"],
                  [[name, cell(all_), cell(hard) if hard else "—"] for name, cell in rows])


def _baseline_table(all_: dict, hard: dict | None) -> list[str]:
    ours = [["**This model**", _pct(all_["accuracy"]),
             _pct(hard["accuracy"]) if hard else "—", _pct(all_["macro_f1"])]]
    others = [[b.name, _pct(b.accuracy), _pct(b.hard_accuracy), _pct(b.macro_f1)]
              for b in BASELINES]
    return _table(["Model", "Accuracy (all)", "Accuracy (hard)", "Macro-F1 (all)"],
                  ours + others)


def _per_class_table(metrics: dict) -> list[str]:
    rows = [[name, _pct(m["precision"]), _pct(m["recall"]), _pct(m["f1"]), _num(m["auc"]),
             str(m["support"])] for name, m in metrics["per_class"].items()]
    return _table(["Class", "Precision", "Recall", "F1", "ROC AUC", "Support"], rows)


def confusion_text(matrix: list[list[int]], class_names: list[str]) -> str:
    """The confusion matrix as aligned plain text (rows = true, columns = predicted)."""
    corner = "true \\ predicted"
    width = max(len(corner), *(len(n) for n in class_names))
    cells = [max(len(n), *(len(str(row[k])) for row in matrix)) for k, n in enumerate(class_names)]
    lines = [corner.ljust(width) + "  " + "  ".join(n.rjust(w) for n, w in zip(
        class_names, cells, strict=True))]
    for name, row in zip(class_names, matrix, strict=True):
        lines.append(name.ljust(width) + "  " + "  ".join(
            str(v).rjust(w) for v, w in zip(row, cells, strict=True)))
    return "\n".join(lines)


def _calibration_note(model: dict, all_: dict, hard: dict | None) -> list[str]:
    memory = model.get("memory")
    if not memory:
        return ["ECE uses 15 equal-width confidence bins. \"Calibrated\" divides the logits "
                "by the model's temperature; it changes no prediction."]
    head = f"{_pct(all_['accuracy_head'])} (all)"
    if hard:
        head += f", {_pct(hard['accuracy_head'])} (hard subset)"
    seen = " and of their mirror images" if memory.get("flip") else ""
    return [f"ECE uses 15 equal-width confidence bins. \"Calibrated\" is what the service "
            f"answers: the nearest-neighbour vote of the {memory['size']} Training scans' "
            f"features{seen} (k={memory['k']}, tau={memory['tau']}), mixed with the "
            f"calibrated head "
            f"({memory['mix']:.0%}); \"raw\" is the network's head before temperature "
            f"scaling. The head alone would score {head}."]


def render_markdown(report: dict) -> str:
    """A human-readable report: summary, baselines, per-class figures, confusion matrices."""
    model, names = report["model"], report["class_names"]
    all_, hard = report["subsets"]["all"], report["subsets"].get("hard")
    note = report["hard_subset"]
    hard_line = (f"{note['matched']} of {note['listed']} listed images found"
                 if note["used"] else f"not used ({note.get('reason', '')})")
    lines = [
        "# Evaluation report",
        "",
        f"- Model: `{model['path']}` (version {model['version'] or '—'}, "
        f"architecture {model['architecture'] or '—'}, temperature {model['temperature']:.3f})",
        f"- Data: `{report['data_dir']}`, {all_['n']} images",
        f"- Hard subset: {hard_line}",
        f"- Evaluated: {report['timestamp']}",
        "",
        "## Summary",
        "",
        *_summary_table(all_, hard),
        "",
        *_calibration_note(model, all_, hard),
        "",
        "## Baselines",
        "",
        "Measured on the same Testing split; the hard subset holds the Testing images with no "
        "near-duplicate in Training.",
        "",
        *_baseline_table(all_, hard),
        "",
        "## Per class (all)",
        "",
        *_per_class_table(all_),
        "",
        "## Confusion matrix (all)",
        "",
        "```",
        confusion_text(all_["confusion_matrix"], names),
        "```",
        "",
        "![Confusion matrix](confusion_matrix.png)",
        "",
    ]
    if hard:
        lines += ["## Per class (hard subset)", "", *_per_class_table(hard), "",
                  "## Confusion matrix (hard subset)", "", "```",
                  confusion_text(hard["confusion_matrix"], names), "```", "",
                  "![Confusion matrix, hard subset](confusion_matrix_hard.png)", ""]
    lines += ["## Calibration", "", "![Reliability diagram](reliability.png)", ""]
    if report.get("ood"):
        lines += ood_markdown(report["ood"])
    if report.get("served"):
        lines += _served_lines(report["served"])
    if report.get("collections"):
        lines += by_collection(report["collections"])
    if report.get("external_tumour"):
        lines += external_markdown(report["external_tumour"])
    lines += LEAKAGE_CAVEAT
    return "\n".join(lines)


#: What every report must say about Testing, whatever its figures.
LEAKAGE_CAVEAT = [
    "## Caveat: what Testing measures",
    "",
    "In the public dataset the class is confounded with the collection (every glioma and "
    "almost every pituitary scan is figshare's contrast T1 from one hospital; most "
    "\"No Tumor\" scans are Br35H's), and patients leak across the splits: 480 figshare "
    "slices are in both Training and Testing, and 13 of the 17 figshare patients whose IDs "
    "are known have slices in both. Testing therefore rewards recognising seen collections "
    "and patients; the hard subset, the figures by collection and the tumour slices from "
    "outside the dataset are the better guides to scans from elsewhere.",
    "",
]


def _served_lines(served: dict) -> list[str]:
    return [
        "## Through the service (OOD_POLICY=reject)",
        "",
        f"Of the {served['images']} Testing scans the service answers {served['answered']} and "
        f"refuses {served['refused']} as not a brain MRI "
        f"({served['refused_but_classified_right']} of which the model would have classified "
        f"correctly). Accuracy of the answers: {_pct(served['accuracy_of_answers'])}; counting "
        f"every refusal as an error: {_pct(served['accuracy_refusals_as_errors'])}. "
        "With OOD_POLICY=warn every scan is answered, with the figures above.",
        "",
    ]
