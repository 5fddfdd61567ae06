"""Running a study: check the data, plan (:mod:`~kerascnn.reproduce.plan`), train
every variant and seed through ``kerascnn train``'s code
(:mod:`~kerascnn.reproduce.runs`), measure, decide the claims and write the report
(:mod:`~kerascnn.reproduce.report`).

Layout of ``<output_dir>`` (default ``runs/reproduce/<study>/``)::

    plan.json                 settings, calibration, iterations (written once)
    mean.npy                  the per-pixel mean of the training images (once)
    nets/<key>-s<seed>/       one training run folder per network and seed
                              (recipe.json, history.csv, checkpoints/, backup/,
                              test_metrics.json, completed.json: kerascnn train's)
    results.json              every number of the study, the claims
    results.md                the table and one line per claim
    claims.txt                one line per claim with its rule
    figure6.png / figure7.png the figure

Running the same command again resumes: at the first unfinished run, and in it at the
first unfinished curve point.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings

from kerascnn.reproduce import report as reports
from kerascnn.reproduce.plan import plan_study
from kerascnn.reproduce.recipes import Settings, native_size, variant_recipe
from kerascnn.reproduce.runs import finished, run_folder, train_variant
from kerascnn.reproduce.studies import Study
from kerascnn.training import run_dir as rd

__all__ = ["Settings", "run_study", "study_data", "default_output_dir"]


def default_output_dir(study_name: str) -> str:
    return os.path.join("runs", "reproduce", study_name)


def _log(msg):
    rd.log(msg, who="reproduce")


def study_data(study, settings, output_dir, log) -> dict:
    """Checks the paths and splits (before any image is read), loads the sources as
    the runs will, and computes the training images' mean once
    (``<output_dir>/mean.npy``); returns what the plan records of them."""
    from kerascnn.training import experiment

    probe = {"points": 1, "iterations_per_point": 1, "augment":
             settings.resolved_augment(), "image_size": settings.image_size or 32}
    recipe = variant_recipe(study, study.networks[0], settings, probe, 0)
    experiment.check_paths(recipe, export=False)
    train, curve, test = experiment.load_sources(recipe)  # subsets as the runs take them
    size = settings.image_size or native_size(train)
    recipe = variant_recipe(study, study.networks[0], settings,
                            dict(probe, image_size=size), 0)
    os.makedirs(output_dir, exist_ok=True)
    experiment.resolve_mean(recipe, train, output_dir)
    return {"image_size": size, "augment": probe["augment"],
            "train_examples": train.num_examples, "test_examples": curve.num_examples,
            "final_test_examples": test.num_examples}


def _train_all(study, settings, plan, output_dir, strategy, log) -> dict:
    runs = {}
    for seed in range(plan["seeds"]):
        for net in study.networks:
            runs.setdefault(net.key, {})[seed] = train_variant(
                study, net, seed, settings, plan, output_dir, strategy=strategy, log=log)
    return runs


def _responses(study, settings, output_dir, nets_study, nets_dir, strategy, started, log):
    from kerascnn._io import read_json

    if nets_study is None:
        from kerascnn.reproduce.studies import get_study

        nets_study = get_study(study.nets_from)
    nets_dir = nets_dir or default_output_dir(nets_study.name)
    plan = read_json(os.path.join(nets_dir, "plan.json"))
    if plan is not None:
        log(f"using the {nets_study.name} networks of {nets_dir} (data "
            f"{plan['settings']['data']}, {plan['iterations']} iterations each; its "
            "plan's settings replace this command's)")
        fields = {f.name for f in dataclasses.fields(Settings)}
        settings = dataclasses.replace(settings, **{
            k: v for k, v in plan["settings"].items() if k in fields})
    missing = [n.key for n in study.networks if not finished(run_folder(nets_dir, n, 0))]
    if missing:
        log(f"the {nets_study.name} networks {', '.join(missing)} are not trained "
            f"in {nets_dir}: training them now (the {nets_study.name} study's "
            f"budget, {settings.budget_minutes or nets_study.budget_minutes} min)")
    one = dataclasses.replace(nets_study, networks=study.networks)
    if plan is None:
        data = study_data(one, settings, nets_dir, log)
        plan = plan_study(nets_study, settings, data, nets_dir, started=started,
                          strategy=strategy, log=log)
    plan = dict(plan, seeds=1)
    runs = _train_all(one, settings, plan, nets_dir, strategy, log)
    measured = study.measure(study, runs,
                             lambda net, seed: variant_recipe(one, net, settings, plan, seed),
                             log)
    return plan, reports.responses_report(study, measured, runs, nets_dir, output_dir)


def run_study(study: Study, settings: Settings, output_dir=None, *,
              nets_study: Study | None = None, nets_dir=None, strategy=None,
              log=_log) -> dict:
    """Runs (or resumes) ``study`` and writes its report; returns ``results.json``'s
    content.

    For a study that measures another's networks (``responses``), ``nets_study``
    and ``nets_dir`` say which study and folder hold them; networks missing there are
    trained first (with that study's plan), and the log says so.
    """
    from kerascnn.training.strategy import precision_scope

    with precision_scope():  # the caller's dtype policy again afterwards
        return _run_study(study, settings, output_dir, nets_study=nets_study,
                          nets_dir=nets_dir, strategy=strategy, log=log)


def _run_study(study, settings, output_dir, *, nets_study, nets_dir, strategy, log):
    from kerascnn.training.strategy import check_global_batch, select_strategy, set_precision

    started = time.time()
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    output_dir = output_dir or default_output_dir(study.name)
    os.makedirs(output_dir, exist_ok=True)
    set_precision(settings.precision)
    strategy = select_strategy(strategy or settings.strategy)  # before any data is read
    check_global_batch(strategy, settings.batch_size)
    if study.nets_from:
        plan, report = _responses(study, settings, output_dir, nets_study, nets_dir,
                                  strategy, started, log)
    else:
        data = study_data(study, settings, output_dir, log)
        plan = plan_study(study, settings, data, output_dir, started=started,
                          strategy=strategy, log=log)
        runs = _train_all(study, settings, plan, output_dir, strategy, log)
        if study.measure is not None:  # beyond the curves (vgg, googlenet: protocols)
            runs = study.measure(study, runs, lambda net, seed: variant_recipe(
                study, net, settings, plan, seed), log)
        report = reports.curves_report(study, runs, output_dir)
    report.update({
        "study": study.name,
        "title": study.title,
        "paper": study.paper,
        "plan": plan,
        "wall_seconds_this_invocation": time.time() - started,
        "budget_minutes": (settings.budget_minutes or study.budget_minutes)
        if not (settings.iterations or settings.epochs) else None,
    })
    reports.write_reports(study, report, output_dir, log)
    return report
