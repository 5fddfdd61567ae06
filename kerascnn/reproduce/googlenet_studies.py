"""The study of Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, on a
scaled GoogLeNet (:func:`kerascnn.applications.GoogLeNetScaled`: Table 1's nine
inception modules and both auxiliary heads at 1/8 width after a 28×28 stem).

``googlenet`` checks two claims:

- §5: the auxiliary classifiers' losses (weight 0.3) change the final error by a
  small amount ("relatively minor (around 0.5 %)"). Two variants of the SAME network
  (both built with the heads, ``aux_logits=True``), one trained with
  ``aux_loss_weight=0.3``, the other with 0: the heads are then in the graph but add
  nothing to the loss, so no gradient of theirs reaches the trunk. This is the
  paper's comparison (the heads are "discarded at inference time": only their
  training signal differs) and it pairs the runs: for one seed both variants start
  from the same weights and see the same batches (every layer is created in the same
  order; each dropout layer has its own seed). The noise rule of
  :mod:`~kerascnn.reproduce.claims` decides it on the final test error.
- Table 3: more test crops lower the error (1 → 10 → 144 crops: 10.07, 9.15, 7.89 %
  top-5 for one GoogLeNet). The protocols of :mod:`kerascnn.evaluation.protocols`
  on the trained network with aux losses (its first seed, the first 500 test images:
  155 network inputs an image): ``center`` (the run's own
  view: shorter side 32 = 28 × 256/224, centre 28×28), ``10crop`` (corners + centre of
  that, and mirrors) and ``144crop`` (shorter side 32, 36, 40, 44 = the paper's 256,
  288, 320, 352 × 28/224; 3 squares × 6 views × 2 flips). Fashion-MNIST's images are
  square, so the three squares of a scale coincide: 48 distinct views of the 144.
  Each step is decided by a sign test on the images whose correctness differs between
  the two protocols (:func:`~kerascnn.reproduce.claims.sign_test`).

Training departs from the paper the way the scaled network needs (the recipe
``googlenet_scaled_fashion_mnist``'s departures): the paper's random-sized crops with
the area range cut to [0.35, 1] (the 144-crop's smallest view covers (224/352)² ≈
0.40 of its square; 8 % of a 28×28 image is an 8×8 patch), random interpolation and
flips but no photometric distortion (grey images), SGD momentum 0.9 at a constant
rate (the paper's −4 % every 8 epochs is constant over a run of a few epochs; the
other studies' /10 at 50 % and 75 % of the run is not used), lr 0.01 (the Caffe
reference model's; the network has no batch norm), no Polyak averaging.
"""

from __future__ import annotations

import math
import os

import numpy as np

from kerascnn.reproduce import claims as rules
from kerascnn.reproduce import plots
from kerascnn.reproduce.study import Network, Study, as_number, series

__all__ = ["STUDIES", "PAPER_SETTINGS", "CROP_PROTOCOLS", "aux_claim", "crop_claims",
           "measure_crops"]

AUX_WEIGHT = 0.3  # §5
PAPER_AUX_EFFECT = 0.5  # §5: "around 0.5 %" of final error
PAPER_PARAMS = 6_998_552  # GoogLeNet without the auxiliary heads (PAPERS.md)
SCALED_PARAMS = 95_348  # GoogLeNetScaled at 28x28x1, 10 classes (tests count it)
# protocol, crops, the paper's top-5 error (Table 3, one model)
CROP_PROTOCOLS = (("center", 1, 10.07), ("10crop", 10, 9.15), ("144crop", 144, 7.89))
IMAGE_SIZE = 28
EVAL_RESIZE = 32  # 28 x 256 / 224: the paper's 256 for a 224 crop, scaled
ALPHA = 0.05
CROP_SEEDS = 1  # the crops are measured on the first seed's network (155 views an image)
CROP_EXAMPLES = 500  # ... on the first 500 images of the final test subset

# --paper: CIFAR-10 (32x32 images: random-sized 28x28 crops, resize 32 = the image's
# own size at test), the full test set, long runs, float32. The paper's own setting
# (the full network on ILSVRC-2012) is `kerascnn train googlenet_imagenet`.
PAPER_SETTINGS = (("data", "tfds:cifar10"), ("image_size", IMAGE_SIZE),
                  ("iterations", 64_000), ("points", 64), ("batch_size", 128),
                  ("lr", 0.01), ("seeds", 3), ("precision", "float32"),
                  ("test_examples", 10_000), ("train_examples", None))

_LABEL = (f"scaled GoogLeNet ({SCALED_PARAMS / 1e6:.2f}M params; the paper's "
          f"{PAPER_PARAMS / 1e6:.2f}M)")


def _net(key, weight):
    return Network(key, "googlenet_scaled", f"{_LABEL}, aux loss weight {weight:g}",
                   "googlenet", 22, (("aux_logits", True), ("aux_loss_weight", weight)))


_NETS = (_net("aux", AUX_WEIGHT), _net("noaux", 0.0))

# The paper's recipe where the scaled network allows (module docstring).
_OVERRIDES = (
    ("data.policy", "googlenet"),
    ("data.policy_options", {"area": [0.35, 1.0], "photometric": False,
                             "random_interpolation": True}),
    ("data.eval_resize", EVAL_RESIZE),
    # the paper's rate falls 4 % every 8 epochs: constant over runs of a few epochs
    ("schedule.boundaries", []),
)


# -- the aux claim ---------------------------------------------------------------------
def aux_claim(test_curves, labels, key="a", last=3) -> rules.Claim:
    """§5: the auxiliary losses lower the final test error, by the noise rule.

    Args:
      test_curves: ``{"aux": [curve per seed], "noaux": [curve per seed]}``, test
        error (%) at each curve point (the last point is the final error).
      labels: ``{"aux": label, "noaux": label}``.
    """
    with_aux = rules.final_estimate(test_curves["aux"], last)
    without = rules.final_estimate(test_curves["noaux"], last)
    noises = [e for e in (with_aux, without) if not e.measured]
    noise = math.nan if noises else max(with_aux.noise, without.noise)
    method = (noises[0].method if noises else
              (with_aux if with_aux.noise >= without.noise else without).method)
    diff = without.value - with_aux.value  # > 0: the aux losses lower the error
    if not math.isfinite(noise):
        outcome = rules.INCONCLUSIVE
    elif diff > noise:
        outcome = rules.HOLDS
    elif diff < -noise:
        outcome = rules.DOES_NOT_HOLD
    else:
        outcome = rules.INCONCLUSIVE
    noise_text = f"{noise:.2f}" if math.isfinite(noise) else "not measurable"
    rule = ("holds if the final test error without the auxiliary losses exceeds the "
            "error with them by more than the noise, does not hold if it is lower by "
            f"more than the noise, else inconclusive; noise: {method} (the larger of "
            "the two variants')")
    detail = (f"final test error with aux losses {with_aux.value:.2f} %, without "
              f"{without.value:.2f} %: the aux losses change it by {-diff:+.2f} points "
              f"(the paper: about -{PAPER_AUX_EFFECT} %), noise {noise_text}")
    return rules.Claim(key, f"the auxiliary losses (weight {AUX_WEIGHT}) lower the final "
                       f"test error of the {labels['aux'].split(',')[0]}", outcome, rule,
                       detail, {"with_aux": with_aux.value, "without_aux": without.value,
                                "difference": diff, "noise": noise,
                                "paper_difference": PAPER_AUX_EFFECT})


# -- the crops claims ------------------------------------------------------------------
def _paired(fewer, more, alpha):
    """One network's sign test: ``fewer``/``more`` are per-image correctness (0/1)."""
    fewer = np.asarray(fewer, bool)
    more = np.asarray(more, bool)
    gained = int(np.sum(more & ~fewer))  # right with more crops only
    lost = int(np.sum(fewer & ~more))
    p_better, p_worse = rules.sign_test(gained, gained + lost)
    if p_better < alpha / 2:
        verdict = "lower"
    elif p_worse < alpha / 2:
        verdict = "higher"
    else:
        verdict = "within noise"
    return {"gained": gained, "lost": lost, "p_lower": p_better, "p_higher": p_worse,
            "error_fewer": 100.0 * (1 - fewer.mean()), "error_more": 100.0 * (1 - more.mean()),
            "verdict": verdict}


def crop_claims(correct, alpha=ALPHA, first_key="b") -> list[rules.Claim]:
    """Table 3: each step 1 → 10 → 144 crops lowers the error.

    Args:
      correct: ``{seed: {protocol: per-image correctness (0/1 sequence)}}`` of one
        trained network per seed, protocols of :data:`CROP_PROTOCOLS`, on the same
        images.
    """
    out = []
    seeds = sorted(correct)
    for i, ((fewer, nf, pf), (more, nm, pm)) in enumerate(
            zip(CROP_PROTOCOLS[:-1], CROP_PROTOCOLS[1:])):
        tests = {s: _paired(correct[s][fewer], correct[s][more], alpha) for s in seeds}
        verdicts = [t["verdict"] for t in tests.values()]
        if verdicts and all(v == "lower" for v in verdicts):
            outcome = rules.HOLDS
        elif verdicts and all(v == "higher" for v in verdicts):
            outcome = rules.DOES_NOT_HOLD
        else:
            outcome = rules.INCONCLUSIVE
        rule = (f"per seed, a two-sided sign test over the images whose correctness "
                f"differs between {nf} and {nm} crops (p < {alpha}): holds if the error "
                f"with {nm} crops is significantly lower for every seed, does not hold if "
                "significantly higher for every seed, else inconclusive")
        detail = "; ".join(
            f"seed {s}: {t['error_fewer']:.2f} % -> {t['error_more']:.2f} % "
            f"({t['gained']} images right only with {nm} crops, {t['lost']} only with "
            f"{nf}; p = {min(t['p_lower'], t['p_higher']):.3g}: {t['verdict']})"
            for s, t in tests.items()) + f" (the paper: {pf} -> {pm} % top-5)"
        out.append(rules.Claim(
            chr(ord(first_key) + i), f"{nm} crops give a lower error than {nf} "
            f"({'the centre crop' if nf == 1 else f'{nf} crops'}; Table 3)", outcome,
            rule, detail, {"tests": {str(s): t for s, t in tests.items()},
                           "paper": [pf, pm]}))
    return out


def measure_crops(study, runs, recipe_of, log) -> dict:
    """Table 3's protocols on the first :data:`CROP_SEEDS` seeds of the network
    trained with aux losses (its ``checkpoints/last.keras``, the run's own
    preprocessing) over the first :data:`CROP_EXAMPLES` images of the final test
    subset; each run's result is kept in ``<run>/crops.json`` (a resumed study does not
    measure it again) and added to the run as ``crops``. Returns ``runs``."""
    from kerascnn._io import read_json, write_json
    from kerascnn.evaluation.evaluate import posteriors
    from kerascnn.evaluation.loading import load_keras_model
    from kerascnn.training import experiment

    key = study.role("crops")
    test = None
    out = {k: dict(v) for k, v in runs.items()}
    for seed in sorted(runs[key])[:CROP_SEEDS]:
        run = runs[key][seed]
        path = os.path.join(run["run_dir"], "crops.json")
        found = read_json(path)
        if found is None:
            if test is None:  # the final test subset, as the run's recipe takes it
                _, _, test = experiment.load_sources(recipe_of(study.network(key), seed))
            model = load_keras_model(os.path.join(run["run_dir"], "checkpoints", "last.keras"))
            found = {"examples": 0, "protocols": {}}
            for name, crops, _ in CROP_PROTOCOLS:
                probs, labels = posteriors(model, test, name, batch_size=50,
                                           max_examples=CROP_EXAMPLES)
                right = np.argmax(probs, axis=-1) == labels
                found["examples"] = int(len(labels))
                found["protocols"][name] = {
                    "crops": crops, "error": float(100.0 * (1 - right.mean())),
                    "correct": "".join("1" if r else "0" for r in right)}
                log(f"{key} seed {seed}: {name} ({crops} views) error "
                    f"{found['protocols'][name]['error']:.2f} % on {len(labels)} test images")
            write_json(path, found)
            del model
        out[key][seed] = dict(run, crops=found)
    return out


def _correct(runs, key):
    return {s: {p: [c == "1" for c in r["crops"]["protocols"][p]["correct"]]
                for p, _, _ in CROP_PROTOCOLS}
            for s, r in runs[key].items() if r.get("crops")}


def _claims(study, runs):
    keys = {"aux": study.role("aux"), "noaux": study.role("noaux")}
    curves = {role: [[as_number(r["test_error"]) for r in runs[k][s]["history"]]
                     for s in sorted(runs[k])] for role, k in keys.items()}
    labels = {role: study.network(k).label for role, k in keys.items()}
    return [aux_claim(curves, labels), *crop_claims(_correct(runs, study.role("crops")))]


def _figure(study, runs, folder):
    """Left: training curves with and without the aux losses (Figure-6 style); right:
    test error against the number of crops per seed, beside Table 3's."""
    plt = plots._pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for s in series(study, runs, [study.role("aux"), study.role("noaux")]):
        colour = plots._COLOURS[s["colour"] % len(plots._COLOURS)]
        left.plot(s["iterations"], s["train_error"], color=colour, linewidth=0.8)
        left.plot(s["iterations"], s["test_error"], color=colour, linewidth=2.2,
                  label=s["label"].split(", ")[-1])
    handles, names = left.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    left.legend(unique.values(), unique.keys(), title="thin: train, bold: test",
                fontsize=8, title_fontsize=8)
    left.set_title(_LABEL, fontsize=9)
    left.set_xlabel("iterations")
    left.set_ylabel("error (%)")
    left.grid(alpha=0.3)
    crops = [c for _, c, _ in CROP_PROTOCOLS]
    key = study.role("crops")
    for seed, run in sorted(runs[key].items()):
        if run.get("crops"):
            errs = [run["crops"]["protocols"][p]["error"] for p, _, _ in CROP_PROTOCOLS]
            right.plot(crops, errs, "o-", label=f"scaled, seed {seed} (top-1)")
    right.plot(crops, [e for _, _, e in CROP_PROTOCOLS], "s--", color="grey",
               label="paper, ImageNet (top-5, Table 3)")
    right.set_xscale("log")
    right.set_xticks(crops, [str(c) for c in crops])
    right.set_xlabel("crops per image")
    right.set_ylabel("error (%)")
    right.set_title("Table 3: more crops, lower error?", fontsize=9)
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.suptitle(study.title, fontsize=10)
    fig.tight_layout()
    return plots._save(fig, os.path.join(folder, "figure_googlenet.png"))


STUDIES = {
    "googlenet": Study(
        name="googlenet",
        title=("GoogLeNet (scaled): auxiliary losses (§5) and 1/10/144 test crops "
               "(Table 3)"),
        networks=_NETS,
        seeds=2,
        budget_minutes=22.0,
        recipe="googlenet_scaled_fashion_mnist",
        overrides=_OVERRIDES,
        roles=(("aux", "aux"), ("noaux", "noaux"), ("crops", "aux")),
        measure=measure_crops,
        decide=_claims,
        draw=_figure,
        paper_settings=PAPER_SETTINGS,
        # lr: the Caffe reference model's (no batch norm); 6 curve points: each point
        # costs an evaluation, and the budget buys few iterations on 2 cores
        settings=(("lr", 0.01), ("points", 6)),
        paper=("ILSVRC-2014, GoogLeNet (6,998,552 params without the aux heads): the "
               "auxiliary classifiers' losses (weight 0.3) have a relatively minor "
               "effect, about 0.5 % (§5); one model's top-5 error with 1, 10, 144 crops "
               "is 10.07, 9.15, 7.89 % (Table 3)."),
    ),
}
