"""A study's report: ``results.json`` (every number: the plan, every curve point, the
claims with their rules and numbers), ``results.md`` (the table and one line per
claim), ``claims.txt`` (one line per claim with its rule) and the study's figure, all
written atomically (:mod:`kerascnn._io`)."""

from __future__ import annotations

import math
import os

import numpy as np

from kerascnn._io import atomic_write, write_json
from kerascnn.reproduce.studies import as_number, paper_numbers

__all__ = ["curves_report", "responses_report", "write_reports"]


def _clean(obj):
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        obj = float(obj)
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _claims(found) -> dict:
    return {"claims": [c.to_dict() for c in found], "claim_lines": [c.line() for c in found]}


def curves_report(study, runs, output_dir) -> dict:
    """The report of a study that trains: ``runs`` is ``{key: {seed: run}}``."""
    nets = {}
    for key, by_seed in runs.items():
        seeds = sorted(by_seed)
        finals_train = [as_number(by_seed[s]["final_train_error"]) for s in seeds]
        finals_test = [as_number(by_seed[s]["final_test_error"]) for s in seeds]
        nets[key] = {
            "label": study.network(key).label,
            "seeds": {str(s): by_seed[s] for s in seeds},
            "final_train_error_mean": float(np.mean(finals_train)),
            "final_train_error_spread": float(np.ptp(finals_train)),
            "final_test_error_mean": float(np.mean(finals_test)),
            "final_test_error_spread": float(np.ptp(finals_test)),
            "train_seconds": float(sum(as_number(by_seed[s]["seconds"]) for s in seeds)),
            "paper": paper_numbers(study, key),
        }
    figure = study.draw(study, runs, output_dir)
    return {"networks": nets, **_claims(study.decide(study, runs)),
            "figures": [os.path.basename(figure)]}


def responses_report(study, measured, runs, nets_dir, output_dir) -> dict:
    """The report of a study that measures trained networks (``responses``)."""
    figure = study.draw(study, measured, output_dir)
    return {
        "networks": {k: dict(v, label=study.network(k).label,
                             final_test_error=runs[k][0]["final_test_error"])
                     for k, v in measured.items()},
        "nets_dir": nets_dir,
        **_claims(study.decide(study, measured)),
        "figures": [os.path.basename(figure)],
    }


def _responses_table(nets) -> list[str]:
    rows = ["| network | 3x3 layers | mean std | median std | max std | test error (%) |",
            "|---|---|---|---|---|---|"]
    for v in nets.values():
        s = np.asarray(v["std"])
        rows.append(f"| {v['label']} | {s.size} | {s.mean():.3f} | {np.median(s):.3f} | "
                    f"{s.max():.3f} | {as_number(v['final_test_error']):.2f} |")
    return rows


def _table(study, report) -> list[str]:
    nets = report["networks"]
    if study.nets_from:
        return _responses_table(nets)
    plan = report["plan"]
    paper_col = ("paper ImageNet ResNet-34 top-1 (%)" if study.name == "shortcuts"
                 else "paper CIFAR-10 test error (%)")
    quantities = [q for _, numbers in study.paper_numbers for q in numbers]
    if quantities and quantities[0].startswith("ImageNet"):  # vgg: the quantity's name
        paper_col = "paper " + quantities[0].replace("_", " ") + " (%)"
    # a study without per-network paper numbers (relu, alexnet-ablations, googlenet:
    # the paper's figures are in its claim lines) has no paper column
    paper = [f" {paper_col} |"] if quantities else []
    rows = [f"| network | seeds | iterations | final training error (%) | "
            f"final test error (%) |{''.join(paper)} training time (s) |",
            "|---|---|---|---|---|" + "---|" * len(paper) + "---|"]
    for v in nets.values():
        paper_value = next(iter((v.get("paper") or {}).values()), None)
        n = len(v["seeds"])

        def spread(name):
            return f" (spread {v[name + '_spread']:.2f})" if n > 1 else ""

        cell = [f" {'-' if paper_value is None else paper_value} |"] if paper else []
        rows.append(
            f"| {v['label']} | {n} | {plan['iterations']} | "
            f"{v['final_train_error_mean']:.2f}{spread('final_train_error')} | "
            f"{v['final_test_error_mean']:.2f}{spread('final_test_error')} |"
            f"{''.join(cell)} {v['train_seconds']:.0f} |")
    return rows


def write_reports(study, report, output_dir, log):
    plan = report["plan"]
    lines = [f"# {study.title}", "",
             f"Plan: {plan['iterations']} iterations of {plan['settings']['batch_size']} "
             f"per network ({plan['how']}); data {plan['settings']['data']} "
             f"({plan['train_examples']} training images, {plan['image_size']}x"
             f"{plan['image_size']}, augmentation {plan['augment']}); wall time of this "
             f"invocation {report['wall_seconds_this_invocation']:.0f} s.", "",
             *_table(study, report), "", "Paper: " + study.paper, "", "## Claims", ""]
    lines += [f"- {line}" for line in report["claim_lines"]]
    lines += ["", *[f"![{f}]({f})" for f in report["figures"]], ""]
    atomic_write(os.path.join(output_dir, "results.md"), "\n".join(lines))
    atomic_write(os.path.join(output_dir, "claims.txt"),
                 "\n".join(report["claim_lines"]) + "\n")
    write_json(os.path.join(output_dir, "results.json"), _clean(report))
    log(f"{study.name}: wrote {output_dir}/results.md, results.json, claims.txt, "
        + ", ".join(report["figures"]))
    for line in report["claim_lines"]:
        log(line)
