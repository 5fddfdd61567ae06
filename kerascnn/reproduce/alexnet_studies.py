"""The studies of Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012, as a table (the pattern of
:mod:`~kerascnn.reproduce.resnet_studies`): each variant is a recipe of ``pipelines/``
with overrides, trained by ``kerascnn train``'s code.

- ``relu``: §3.1, Figure 1. The four-layer net of
  :func:`~kerascnn.applications.AlexNetFig1` (our layers: the paper gives none) with
  ReLU and with tanh. The paper: on CIFAR-10 the ReLU net reaches 25 % training error
  six times faster than the tanh net; no regularisation, each net's learning rate
  chosen to train it as fast as possible. Here: no weight decay, no augmentation, a
  constant rate, the same for both: :data:`RELU_RATE` (SGD, momentum 0.9; ``--lr``
  changes it), the faster of 0.01 and 0.03 for both activations in a 60-iteration
  trial on Fashion-MNIST (training error after 60 iterations, 2,000 images: ReLU
  24.6 / 19.8 %, tanh 24.8 / 19.0 %). The rule also takes several rates per
  activation (networks of one ``family`` with other ``optimizer.learning_rate``
  overrides): the one whose training-error curve has the lowest mean over the run
  (mean over seeds) is that activation's "fastest", as the paper chose. Threshold:
  ``--paper`` (CIFAR-10) the paper's 25 %; otherwise (Fashion-MNIST is easier, 25 %
  is crossed in the first few hundred iterations) **the lowest whole-percent error
  that every curve of the two chosen nets reaches**: the largest of the curves'
  minima, rounded up to the next whole percent. A curve point's training error is the
  mean over its iterations, so it is placed at the middle of them; the iteration at
  which a curve first reaches the threshold is interpolated linearly between the
  point before and the point at or below it. A curve that never reaches the
  threshold counts its whole run (a lower bound, said so).
  Claim: ReLU reaches the threshold in fewer iterations than tanh (the difference of
  the mean crossing iterations beyond the noise: the larger spread between seeds of
  the two, or with one seed one curve interval, the resolution), with the factor
  tanh/ReLU per seed, its mean and spread.
- ``alexnet-ablations``: §3.3 (LRN), §3.4 (overlapping pooling), §4.2 (dropout) on
  :func:`~kerascnn.applications.AlexNetSmall` (AlexNet's layer pattern scaled to
  small images): the full net, no LRN, non-overlapping pools (z=s=2), no dropout, the
  same recipe and budget each. Claims: LRN lowers the test error; overlapping
  pooling lowers the test error and the train/test gap; dropout narrows the gap.
  Test error: the curve's test subset at the last point. Training error for the
  gap: the trained network evaluated in inference mode (dropout off) on its training
  images (``train_metrics.json`` in each run folder, measured once): the error the
  curve records during training is measured with dropout on, which would widen the
  dropout net's training error and so fake a narrower gap.

``--paper`` is CIFAR-10 (``tfds:cifar10``): Figure 1's data at 32×32 without
augmentation (``relu``), and for the ablations 90 epochs of AlexNet's recipe (SGD,
batch 128, lr 0.01, momentum 0.9, weight decay 5e-4) with a horizontal flip, at the
scaled net's 32×32 (the paper's ablations are on ImageNet with the full AlexNet).
"""

from __future__ import annotations

import math
import os

import numpy as np

from kerascnn.reproduce import claims as rules
from kerascnn.reproduce import plots
from kerascnn.reproduce.study import Network, Study, as_number, series

__all__ = ["STUDIES", "RELU_RATE", "RELU_PAPER_THRESHOLD", "crossing", "common_threshold",
           "relu_claims", "ablation_claims", "PAPER_ALEXNET_PARAMS", "SMALL_PARAMS",
           "FIG1_PARAMS"]

RELU_RATE = 0.03  # both activations (momentum 0.9): the faster of 0.01 and 0.03 for both
RELU_PAPER_THRESHOLD = 25.0  # % training error, Figure 1 (CIFAR-10)
RELU_PAPER_FACTOR = 6.0
MIN_POINTS = 3  # fewer curve points: no crossing can be resolved (inconclusive)
PAPER_ALEXNET_PARAMS = 60_965_224  # PAPERS.md
SMALL_PARAMS = 258_746  # alexnet_small at 32x32x3, 10 classes (tests: by formula)
FIG1_PARAMS = 89_578  # alexnet_fig1 at 32x32x3, 10 classes

# -- relu ---------------------------------------------------------------------------


def crossing(iterations, errors, threshold):
    """The iteration at which a curve first reaches ``threshold`` (linear between the
    point before and the first point at or below it); ``(iteration, reached)``: a
    curve that never reaches it gives its last iteration and False; one whose first
    point is already at or below it gives that point's iteration (an upper bound)."""
    x = np.asarray(iterations, np.float64)
    e = np.asarray(errors, np.float64)
    if x.size == 0 or x.size != e.size:
        raise ValueError("`iterations` and `errors` must be non-empty and of one length. "
                         f"Received: {x.size} and {e.size}")
    below = np.flatnonzero(e <= threshold)
    if below.size == 0:
        return float(x[-1]), False
    i = int(below[0])
    if i == 0:
        return float(x[0]), True
    x0, x1, e0, e1 = x[i - 1], x[i], e[i - 1], e[i]
    return float(x0 + (e0 - threshold) * (x1 - x0) / (e0 - e1)), True


def common_threshold(curves):
    """The lowest whole-percent error every curve reaches: the largest of the curves'
    minima, rounded up (the offline threshold of ``relu``)."""
    lows = [float(np.nanmin(np.asarray(c, np.float64))) for c in curves]
    return float(math.ceil(max(lows)))


def _midpoints(iterations):
    """Each point's iterations' middle (a point's training error is their mean)."""
    it = np.asarray(iterations, np.float64)
    width = it[0] if it.size == 1 else it[1] - it[0]
    return it - width / 2.0, float(width)


def relu_claims(curves, families, labels=None, threshold=None):
    """Figure 1's claim from training-error curves.

    Args:
      curves: ``{network key: {seed: (iterations, training error %)}}`` with
        iterations at the middle of each curve point's iterations.
      families: ``{"relu": [keys of the ReLU rates], "tanh": [keys of tanh's]}``.
      labels: key -> display name.
      threshold: the error (%) to reach; None: :func:`common_threshold` of the two
        chosen nets' curves.
    Returns:
      ``[Claim]`` (one: "a").
    """
    labels = dict(labels or {})

    def area(key):  # mean training error over the curve, mean over seeds
        return float(np.mean([np.nanmean(np.asarray(e, np.float64))
                              for _, e in curves[key].values()]))

    chosen = {f: min(keys, key=area) for f, keys in families.items()}
    relu, tanh = chosen["relu"], chosen["tanh"]
    seeds = sorted(set(curves[relu]) & set(curves[tanh]))
    rule_threshold = ("the paper's 25 %" if threshold is not None else
                      "the lowest whole-percent error every curve of the two chosen nets "
                      "reaches (the largest curve minimum, rounded up)")
    if threshold is None:
        threshold = common_threshold([curves[k][s][1] for k in (relu, tanh) for s in seeds])
    cross = {k: [crossing(*curves[k][s], threshold) for s in seeds] for k in (relu, tanh)}
    c_r = np.array([c for c, _ in cross[relu]])
    c_t = np.array([c for c, _ in cross[tanh]])
    reached_r = all(r for _, r in cross[relu])
    reached_t = all(r for _, r in cross[tanh])
    resolution = max(float(np.diff(curves[k][s][0]).max()) if len(curves[k][s][0]) > 1
                     else math.nan for k in (relu, tanh) for s in seeds)
    if len(seeds) >= 2:
        noise = max(float(np.ptp(c_r)), float(np.ptp(c_t)))
        method = f"spread between {len(seeds)} seeds (max - min of the crossing iterations)"
    else:
        noise = resolution
        method = "one seed: one curve interval (the crossing's resolution)"
    diff = float(np.mean(c_t) - np.mean(c_r))
    factors = c_t / c_r
    too_few = min(len(curves[k][s][0]) for k in (relu, tanh) for s in seeds) < MIN_POINTS
    if too_few or (not reached_r and not reached_t):
        outcome = rules.INCONCLUSIVE
    elif not math.isfinite(noise):
        outcome = rules.INCONCLUSIVE
    elif diff > noise and reached_r:
        outcome = rules.HOLDS
    elif diff < -noise and reached_t:
        outcome = rules.DOES_NOT_HOLD
    else:
        outcome = rules.INCONCLUSIVE
    lr_, lt = labels.get(relu, relu), labels.get(tanh, tanh)
    bound = "" if reached_t else " (tanh never reached it: its whole run, a lower bound)"
    bound += "" if reached_r else " (ReLU never reached it: its whole run, a lower bound)"
    detail = (f"threshold {threshold:g} % ({rule_threshold}); nets compared: {lr_}, {lt}; "
              f"iterations to reach it: ReLU {', '.join(f'{c:.0f}' for c in c_r)}, tanh "
              f"{', '.join(f'{c:.0f}' for c in c_t)}{bound}; difference {diff:+.0f} "
              f"iterations, noise {noise:.0f}; factor tanh/ReLU {np.mean(factors):.2f} "
              f"(per seed {', '.join(f'{f:.2f}' for f in factors)}, spread "
              f"{np.ptp(factors):.2f}; the paper: {RELU_PAPER_FACTOR:g}x at 25 % on "
              "CIFAR-10)")
    rule = ("holds if the tanh net's mean crossing iteration exceeds the ReLU net's by "
            "more than the noise (and ReLU reaches the threshold), does not hold if it is "
            "lower by more than the noise, else inconclusive (also when neither reaches "
            f"it, or a curve has fewer than {MIN_POINTS} points); noise: {method}; the iteration is interpolated linearly between "
            "curve points, each point at the middle of its iterations")
    return [rules.Claim(
        "a", "the ReLU net reaches the training-error threshold in fewer iterations than "
        "the tanh net (Figure 1: six times faster)", outcome, rule, detail,
        {"threshold": threshold, "relu": relu, "tanh": tanh,
         "relu_iterations": c_r.tolist(), "tanh_iterations": c_t.tolist(),
         "relu_reached": reached_r, "tanh_reached": reached_t, "difference": diff,
         "noise": noise, "factor_mean": float(np.mean(factors)),
         "factors": factors.tolist(), "factor_spread": float(np.ptp(factors))})]


def _paper_data(runs):
    """Whether the runs trained on CIFAR-10 (the paper's Figure 1 data: its 25 %)."""
    from kerascnn._io import read_json

    for by_seed in runs.values():
        for run in by_seed.values():
            recipe = read_json(os.path.join(run.get("run_dir") or "", "recipe.json")) or {}
            return "cifar10" in str(recipe.get("data", {}).get("source", ""))
    return False


def _relu_curves(runs):
    out = {}
    for key, by_seed in runs.items():
        for seed, run in by_seed.items():
            h = run["history"]
            mid, _ = _midpoints([r["iteration"] for r in h])
            out.setdefault(key, {})[seed] = (mid, [as_number(r["train_error"]) for r in h])
    return out


def _families(study):
    return {f: [n.key for n in study.networks if n.family == f] for f in ("relu", "tanh")}


def _relu_decide(study, runs):
    return relu_claims(_relu_curves(runs), _families(study), study.labels(),
                       RELU_PAPER_THRESHOLD if _paper_data(runs) else None)


def _relu_figure(study, runs, folder):
    """Figure 1's style: training error over iterations, ReLU solid, tanh dashed, the
    threshold dotted; the chosen (fastest) rate of each bold, the other thin."""
    plt = plots._pyplot()
    found = _relu_decide(study, runs)[0].numbers
    chosen = {found["relu"], found["tanh"]}
    curves = _relu_curves(runs)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for net in study.networks:
        colour = "#1f77b4" if net.family == "relu" else "#d62728"
        for i, seed in enumerate(sorted(curves.get(net.key, {}))):
            x, e = curves[net.key][seed]
            ax.plot(x, e, "-" if net.family == "relu" else "--", color=colour,
                    linewidth=2.0 if net.key in chosen else 0.8,
                    alpha=1.0 if net.key in chosen else 0.45,
                    label=net.label if i == 0 else None)
    ax.axhline(found["threshold"], color="black", linestyle=":", linewidth=1.0,
               label=f"threshold {found['threshold']:g} %")
    ax.set_xlabel("iterations")
    ax.set_ylabel("training error rate (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="bold: each activation's fastest rate", title_fontsize=8)
    fig.suptitle(study.title, fontsize=9)
    fig.tight_layout()
    return plots._save(fig, os.path.join(folder, "figure1.png"))


def _fig1(activation):
    return Network(activation, "alexnet_fig1",
                   f"{'ReLU' if activation == 'relu' else 'tanh'} 4-layer net",
                   activation, 4, (("activation", activation),))


# -- alexnet-ablations --------------------------------------------------------------


def ablation_claims(test_curves, train_errors, roles, labels=None, last=3):
    """§3.3, §3.4 and §4.2's claims.

    Args:
      test_curves: ``{key: [test error curve per seed]}`` (%).
      train_errors: ``{key: [final training error per seed]}`` (%, inference mode).
      roles: ``{"full", "no_lrn", "no_overlap", "no_dropout"}`` -> keys.
      labels: key -> display name.
      last: see :func:`~kerascnn.reproduce.claims.final_estimate`.
    Returns:
      claims a (LRN), b (overlapping pooling: test error), c (overlapping pooling:
      gap), d (dropout: gap).
    """
    roles = dict(roles)
    labels = dict(labels or {})
    keys = [roles[r] for r in ("full", "no_lrn", "no_overlap", "no_dropout")]
    test = {k: (labels.get(k, k), rules.final_estimate(test_curves[k], last)) for k in keys}
    gaps = {}
    for k in keys:  # the gap's curve: test curve minus the final training error
        curves = [np.asarray(c, np.float64) - float(t)
                  for c, t in zip(test_curves[k], train_errors[k])]
        gaps[k] = (labels.get(k, k), rules.final_estimate(curves, last))
    full, no_lrn, no_overlap, no_dropout = keys
    name = labels.get(full, full)
    q, g = "final test error", "train/test gap (test error minus training error)"
    return [
        rules._higher("a", f"LRN lowers the test error ({name} below "
                      f"{labels.get(no_lrn, no_lrn)}; paper: -1.4 top-1)", q,
                      no_lrn, full, test),
        rules._higher("b", f"overlapping pooling lowers the test error ({name} below "
                      f"{labels.get(no_overlap, no_overlap)}; paper: -0.4 top-1)", q,
                      no_overlap, full, test),
        rules._higher("c", "overlapping pooling narrows the train/test gap (paper: "
                      "'slightly more difficult to overfit')", g, no_overlap, full, gaps),
        rules._higher("d", "dropout narrows the train/test gap (paper: without it, "
                      "substantial overfitting)", g, no_dropout, full, gaps),
    ]


TRAIN_METRICS = "train_metrics.json"


def train_error(run_dir, log=None):
    """The trained network's top-1 error (%) on its run's training images, inference
    mode (dropout off), preprocessed as the run evaluates; measured once, then read
    from ``<run_dir>/train_metrics.json``."""
    from kerascnn._io import read_json, write_json

    path = os.path.join(run_dir, TRAIN_METRICS)
    done = read_json(path)
    if done is not None:
        return float(done["top1_error"])
    from kerascnn.evaluation.loading import load_keras_model
    from kerascnn.training import experiment
    from kerascnn.training.recipe import parse_recipe

    document = dict(read_json(os.path.join(run_dir, "recipe.json")))
    document.pop("path", None)  # where the recipe was read from, not a recipe key
    recipe = parse_recipe(document, where=os.path.join(run_dir, "recipe.json"))
    exp = experiment.assemble(recipe, run_dir)
    model = load_keras_model(os.path.join(run_dir, "checkpoints", "last.keras"))
    wrong = total = 0
    for x, y in exp.eval_dataset(exp.train_source).as_numpy_iterator():
        pred = np.argmax(model.predict_on_batch(x), axis=-1)
        y = np.argmax(y, axis=-1) if y.ndim > 1 else y.reshape(-1)
        wrong += int(np.sum(pred != y))
        total += int(y.size)
    error = 100.0 * wrong / max(1, total)
    write_json(path, {"top1_error": error, "num_examples": total,
                      "mode": "inference (dropout off)", "split": recipe.data.train_split})
    if log:
        log(f"{os.path.basename(run_dir)}: training error in inference mode "
            f"{error:.2f}% on {total} training images")
    return error


def _ablation_decide(study, runs):
    roles = dict(study.roles)
    keys = list(roles.values())
    test = {k: [[as_number(r["test_error"]) for r in runs[k][s]["history"]]
                for s in sorted(runs[k])] for k in keys}
    train = {k: [train_error(runs[k][s]["run_dir"]) for s in sorted(runs[k])] for k in keys}
    return ablation_claims(test, train, roles, study.labels())


def _ablation_figure(study, runs, folder):
    roles = dict(study.roles)
    panels = [("LRN (§3.3)", ("full", "no_lrn")),
              ("overlapping pooling (§3.4)", ("full", "no_overlap")),
              ("dropout (§4.2)", ("full", "no_dropout"))]
    return plots.training_curves(
        [(name, series(study, runs, [roles[r] for r in pair])) for name, pair in panels],
        os.path.join(folder, "figure_ablations.png"), title=study.title)


def _small(key, label, **options):
    full = {"lrn": True, "overlap": True, "dropout": 0.5}
    return Network(key, "alexnet_small", f"scaled AlexNet: {label}", "alexnet", 8,
                   tuple(sorted({**full, **options}.items())))


_CIFAR = (("data", "tfds:cifar10"), ("precision", "float32"), ("test_examples", 10_000),
          ("train_examples", None))

STUDIES = {
    "relu": Study(
        name="relu",
        title=(f"ReLU vs tanh: AlexNet's Figure 1 four-layer net (ours, "
               f"{FIG1_PARAMS / 1e3:.0f}k params; AlexNet {PAPER_ALEXNET_PARAMS / 1e6:.1f}M)"),
        networks=(_fig1("relu"), _fig1("tanh")),
        seeds=2,
        budget_minutes=25.0,
        decide=_relu_decide,
        draw=_relu_figure,
        recipe="alexnet_fig1_cifar10",
        overrides=(("schedule.name", "constant"),),
        roles=(("relu", "relu"), ("tanh", "tanh")),
        settings=(("lr", RELU_RATE), ("weight_decay", 0.0), ("points", 20),
                  ("test_examples", 200), ("augment", "none")),
        paper_settings=(*_CIFAR, ("augment", "none"), ("epochs", 35), ("points", 70),
                        ("weight_decay", 0.0), ("test_examples", 1000)),
        paper=("CIFAR-10, a four-layer convolutional net: with ReLUs it reaches 25 % "
               "training error six times faster than the same net with tanh neurons "
               "(Figure 1, §3.1; no regularisation, each net's learning rate chosen "
               "for the fastest training)."),
    ),
    "alexnet-ablations": Study(
        name="alexnet-ablations",
        title=(f"AlexNet ablations on a scaled AlexNet ({SMALL_PARAMS / 1e6:.2f}M params; "
               f"AlexNet {PAPER_ALEXNET_PARAMS / 1e6:.1f}M): LRN, overlapping pooling, "
               "dropout (§3.3, §3.4, §4.2)"),
        networks=(_small("full", "full"), _small("no_lrn", "no LRN", lrn=False),
                  _small("no_overlap", "pools 2x2/2", overlap=False),
                  _small("no_dropout", "no dropout", dropout=0.0)),
        seeds=2,
        budget_minutes=30.0,
        decide=_ablation_decide,
        draw=_ablation_figure,
        recipe="alexnet_small_cifar10",
        roles=(("full", "full"), ("no_lrn", "no_lrn"), ("no_overlap", "no_overlap"),
               ("no_dropout", "no_dropout")),
        settings=(("lr", 0.01), ("weight_decay", 5e-4), ("train_examples", 5000),
                  ("test_examples", 1000)),
        paper_settings=(*_CIFAR, ("augment", "flip"), ("epochs", 90), ("points", 90),
                        ("lr", 0.01), ("weight_decay", 5e-4)),
        paper=("ImageNet (ILSVRC-2010/2012), AlexNet: response normalisation lowers the "
               "top-1/top-5 error by 1.4/1.2 points (§3.3); overlapping pooling (z=3, "
               "s=2) lowers it by 0.4/0.3 points against z=s=2 and the net is slightly "
               "harder to overfit (§3.4); without dropout the net overfits substantially "
               "(§4.2)."),
    ),
}
