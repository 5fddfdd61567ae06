"""The study of Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", ICLR 2015, as a table: ``vgg``, Table 3 and Table 5 on VGG nets
scaled to 32×32 images (:mod:`kerascnn.applications.vgg_scaled`: Table 1's
configurations A, A-LRN, B, C, D, E with their layer patterns, 8-16-32-64-64 filters,
fc 64), each trained by ``kerascnn train``'s code (:mod:`kerascnn.reproduce.recipes`).

Claims (Table 3, single test scale; Table 5, §4.3):

(a) LRN does not improve net A (A-LRN 29.7 vs A 29.6 % top-1);
(b) depth lowers the error: A → B → D → E (29.6, 28.7, 27.0, 27.3 at S = 256; E is
    below D with scale jittering, 25.5 vs 25.6);
(c) 3×3 convs beat 1×1 at the same depth: D below C (27.0 vs 28.1 at S = 256);
(d) scale jittering at training lowers the error: D with S ~ U[256, 512] 25.6 vs 27.0
    with S = 256 (tested at Q = 384 and Q = 256);
(e) dense and multi-crop evaluation are complementary: their combination (averaged
    softmax) beats each (Table 5: D 24.8 dense, 24.6 multi-crop, 24.4 both).

The recipe, scaled: SGD with momentum 0.9, L2 5e-4, the paper's learning rate 1e-2
(divided by 10 at 50 % and 75 % of the run, :mod:`~kerascnn.reproduce.recipes`; the
paper divides it when the validation accuracy stops, three times in 74 epochs), the
mean RGB (here: the one channel's mean) subtracted; the training scale S is the
shorter side after isotropic rescaling, then a random 32×32 crop (the paper's 224):
S = 32 is the paper's S = 256 (the whole image), S ~ U[32, 64] its [256, 512] (the
same ratio of 2). Every network is tested on the same view: the image rescaled to
Q = 32, its centre 32×32 crop (the whole image).

Where we depart from the paper: the data (offline Fashion-MNIST, 28×28 grey, rescaled
to 32; ``--data`` for others), widths and input size (see the builder), Glorot's
initialisation for every net (the paper's footnote in §3.1, instead of N(0, 1e-2) and
initialising the deeper nets from A), batch 128 (the paper's 256), no flip or colour
shift (``--augment`` is refused: the training scale is this study's augmentation),
``--lr`` is refused (the paper's 1e-2: at 4e-2 net A diverges), one seed, a few
hundred iterations. Claim (e) is measured on the scale-jittered D (as Table 5's nets
were trained with S ~ U[256, 512]) with the paper's Q = {S_min, (S_min+S_max)/2,
S_max} = {32, 48, 64} for both the dense and the multi-crop (5×5 grid, flips, 3
scales: 150 crops) evaluation, on the curve's test images.

Noise rules: (a)-(d) compare final test errors with the rule of
:mod:`kerascnn.reproduce.claims` (the spread between seeds, or with one seed the
largest change between consecutive curve points over the last three intervals); (e)
is a paired sign test on the test images: for each of dense and multi-crop, the images
that exactly one of the two protocols (the combination, the single one) classifies
correctly; it holds if the combination wins significantly many of them against both
(one-sided binomial p < 0.025 each, two-sided 0.05), does not hold if it loses
significantly many against either, else inconclusive.
"""

from __future__ import annotations

import os

import numpy as np

from kerascnn.reproduce import claims as rules
from kerascnn.reproduce import plots
from kerascnn.reproduce.study import Network, Study, as_number, series

__all__ = ["STUDIES", "PAPER_SETTINGS", "SCALED_PARAMS", "PAPER_PARAMS", "label",
           "TRAIN_SCALE", "JITTER_SCALE", "PROTOCOLS",
           "ordering_claim", "protocols_claim", "measure_protocols"]

TRAIN_SCALE = (32, 32)  # the paper's S = 256: the whole image
JITTER_SCALE = (32, 64)  # the paper's S ~ U[256, 512]
PROTOCOLS = ("dense", "multicrop", "dense+multicrop")
ALPHA = 0.05
PROTOCOLS_FILE = "protocols.json"

# The paper's setting (``--paper``): ILSVRC-2012 is not downloadable, so the nearest
# public one: CIFAR-10 at 32 px, batch 256, 74 epochs (370k iterations is ImageNet's).
PAPER_SETTINGS = (("data", "tfds:cifar10"), ("epochs", 74), ("points", 74),
                  ("batch_size", 256), ("precision", "float32"),
                  ("test_examples", 10_000), ("train_examples", None))


# Trainable weights of kerascnn.applications.vgg_scaled.ScaledVGG(config) as the study
# trains it (width 8, fc 64, 32x32x1 Fashion-MNIST, 10 classes; 3-channel data: 144
# more), stated here so that the study table imports no TensorFlow;
# tests/applications/test_vgg_scaled.py checks them against the built nets and a hand
# count.
SCALED_PARAMS = {"A": 153_386, "A-LRN": 153_386, "B": 156_290, "C": 165_666,
                 "D": 239_394, "E": 322_498}
# PAPERS.md: the full-size nets (224x224x3, 1000 classes).
PAPER_PARAMS = {"A": 132_863_336, "A-LRN": 132_863_336, "B": 133_047_848,
                "C": 133_638_952, "D": 138_357_544, "E": 143_667_240}


def label(config) -> str:
    """How outputs name a scaled net: ``VGG-A scaled (153.4k params; paper A 132.9M)``."""
    return (f"VGG-{config} scaled ({SCALED_PARAMS[config] / 1e3:.1f}k params; paper "
            f"{config} {PAPER_PARAMS[config] / 1e6:.1f}M)")


def _policy(scale):
    return {"scale": list(scale), "lighting": 0.0, "flip": False}


def _net(config, key=None, scale=None):
    name = {"A": "vgg_a", "A-LRN": "vgg_a_lrn"}.get(config, f"vgg_{config.lower()}")
    text = label(config)
    overrides = ()
    if scale is not None:
        text = text.replace(" scaled (", f" scaled, S in [{scale[0]}, {scale[1]}] (")
        overrides = (("data.policy_options", _policy(scale)),)
    depth = 11 if config in ("A", "A-LRN") else {"B": 13, "C": 16, "D": 16, "E": 19}[config]
    return Network(key or name, "scaled_vgg", text, "vgg_scaled", depth,
                   (("config", config),), overrides)


def _estimates(study, runs, keys):
    out = {}
    for key in keys:
        curves = [[as_number(r["test_error"]) for r in runs[key][s]["history"]]
                  for s in sorted(runs[key])]
        out[key] = (study.network(key).label, rules.final_estimate(curves))
    return out


def ordering_claim(key, statement, order, estimates) -> rules.Claim:
    """The error decreases along ``order`` (keys of ``estimates``: ``(label,
    Estimate)``): each step compared against the larger noise of its two networks."""
    steps, parts, noises = [], [], []
    for lo, hi in zip(order[:-1], order[1:]):
        (ll, le), (hl, he) = estimates[lo], estimates[hi]
        noise = max(le.noise, he.noise) if le.measured and he.measured else float("nan")
        diff = le.value - he.value  # > 0: the deeper net is better
        if not np.isfinite(noise):
            status = "not measurable"
        else:
            status = "lower" if diff > noise else ("higher" if diff < -noise else "within")
        steps.append(status)
        noises.append(noise)
        parts.append(f"{hl.split(' (')[0]} {he.value:.2f} vs {ll.split(' (')[0]} "
                     f"{le.value:.2f} %: {-diff:+.2f} points ({status}, noise {noise:.2f})")
    if "not measurable" in steps:
        outcome = rules.INCONCLUSIVE
    elif "higher" in steps:
        outcome = rules.DOES_NOT_HOLD
    elif all(s == "lower" for s in steps):
        outcome = rules.HOLDS
    else:
        outcome = rules.INCONCLUSIVE
    method = estimates[order[0]][1].method
    rule = ("each step of the order compares the final test errors against the larger "
            "noise of its two networks: holds if every step lowers the error by more "
            "than the noise, does not hold if any step raises it by more than the noise, "
            f"else inconclusive; noise: {method}")
    return rules.Claim(key, statement, outcome, rule, "; ".join(parts),
                       {"order": list(order), "steps": steps, "noise": noises,
                        "errors": {k: estimates[k][1].value for k in order}})


def protocols_claim(key, measured, label, alpha=ALPHA) -> rules.Claim:
    """Claim (e) from per-image correctness (``measured``: :func:`measure_protocols`'s
    record, or None when the network was not measured)."""
    statement = (f"dense and multi-crop evaluation are complementary: on {label} their "
                 "combination (averaged softmax) has a lower error than each")
    rule = (f"paired sign test on the test images, for each of dense and multi-crop: "
            f"of the images that exactly one of the two (the combination, it) "
            f"classifies correctly, holds if the combination wins significantly many "
            f"against both (one-sided binomial p < {alpha / 2}), does not hold if it "
            f"loses significantly many against either, else inconclusive")
    if not measured:
        return rules.Claim(key, statement, rules.INCONCLUSIVE, rule,
                           "not measured (the network's run is missing or diverged)", {})
    errors, wins, outcomes, parts = measured["errors"], measured["wins"], [], []
    for single in ("dense", "multicrop"):
        won, lost = wins[single]
        n = won + lost
        p_better, p_worse = rules.sign_test(won, n)
        outcomes.append("better" if p_better < alpha / 2 else
                        "worse" if p_worse < alpha / 2 else "within")
        parts.append(f"vs {single}: combination right and {single} wrong on {won} "
                     f"images, the reverse on {lost} (p = {p_better:.3g} one-sided, "
                     f"{outcomes[-1]})")
    if "worse" in outcomes:
        outcome = rules.DOES_NOT_HOLD
    elif all(o == "better" for o in outcomes):
        outcome = rules.HOLDS
    else:
        outcome = rules.INCONCLUSIVE
    detail = (f"top-1 error on {measured['examples']} test images, Q = "
              f"{','.join(map(str, measured['scales']))}: "
              + ", ".join(f"{p} {errors[p]:.2f} %" for p in PROTOCOLS) + "; "
              + "; ".join(parts))
    return rules.Claim(key, statement, outcome, rule, detail,
                       {"errors": errors, "wins": wins, "outcomes": outcomes,
                        "examples": measured["examples"]})


def _vgg_claims(study, runs):
    role = dict(study.roles)
    keys = sorted({role[r] for r in ("A", "A-LRN", "B", "C", "D", "E", "D-jitter")})
    est = _estimates(study, runs, keys)
    q = "final test error"

    def name(r):
        return est[role[r]][0].split(" (")[0]

    measured_key = role["protocols"]
    measured = (runs.get(measured_key, {}).get(0) or {}).get("protocols")
    return [
        rules._not_worse("a", f"LRN does not improve net A: {name('A')} is not worse than "
                         f"{name('A-LRN')}", q, role["A"], role["A-LRN"], est),
        ordering_claim("b", "depth lowers the error: "
                       + " > ".join(name(r) for r in ("A", "B", "D", "E")),
                       [role[r] for r in ("A", "B", "D", "E")], est),
        rules._higher("c", f"3x3 convs beat 1x1 at the same depth: {name('C')} has a "
                      f"higher error than {name('D')}", q, role["C"], role["D"], est),
        rules._higher("d", f"scale jittering at training lowers the error: "
                      f"{name('D')} has a higher error than {name('D-jitter')}", q,
                      role["D"], role["D-jitter"], est),
        protocols_claim("e", measured, name("protocols")),
    ]


def _vgg_figure(study, runs, folder):
    role = dict(study.roles)

    def keys(*names):
        return list(dict.fromkeys(role[n] for n in names))

    panels = [("LRN: A vs A-LRN", series(study, runs, keys("A", "A-LRN"))),
              ("depth: A, B, D, E", series(study, runs, keys("A", "B", "D", "E"))),
              ("3x3 vs 1x1: D vs C", series(study, runs, keys("C", "D"))),
              ("scale jittering: D, S fixed vs S in [32, 64]",
               series(study, runs, keys("D", "D-jitter")))]
    return plots.training_curves(panels, os.path.join(folder, "table3.png"),
                                 title=study.title)


def _correct(probs, labels):
    return np.argmax(probs, axis=-1) == labels


def measure_protocols(study, runs, recipe_of, log) -> dict:
    """Claim (e)'s measurement: the ``protocols`` network (seed 0, its
    ``checkpoints/last.keras``) evaluated dense and multi-crop on the curve's test
    images (:func:`kerascnn.evaluation.evaluate.posteriors`), Q = {S_min,
    (S_min+S_max)/2, S_max} of its training scale; the combination is the average of
    the two posteriors (what ``dense+multicrop`` computes). Written to
    ``<study folder>/protocols.json`` and read back when the study is run again.
    Returns ``runs`` with the record under the run's ``"protocols"``."""
    from kerascnn._io import read_json, write_json
    from kerascnn.evaluation.evaluate import posteriors
    from kerascnn.evaluation.loading import load_keras_model
    from kerascnn.training import experiment

    key = study.role("protocols")
    run = (runs.get(key) or {}).get(0)
    if run is None or run["diverged"]:
        log(f"protocols: {key} seed 0 is missing or diverged; claim (e) not measured")
        return runs
    folder = run["run_dir"]
    recipe = recipe_of(study.network(key), 0)
    scale = tuple(int(s) for s in recipe.data.policy_options["scale"])
    path = os.path.join(os.path.dirname(os.path.dirname(folder)), PROTOCOLS_FILE)
    record = read_json(path)
    how = f"read back from {path}"
    if record is None or record.get("run_dir") != folder:
        how = f"written to {path}"
        _, curve, _ = experiment.load_sources(recipe)
        model = load_keras_model(os.path.join(folder, "checkpoints", "last.keras"))
        probs = {}
        for protocol in ("dense", "multicrop"):
            probs[protocol], labels = posteriors(
                model, curve, protocol, batch_size=50, train_scale=scale)
        probs["dense+multicrop"] = (probs["dense"] + probs["multicrop"]) / 2.0
        right = {p: _correct(v, labels) for p, v in probs.items()}
        both = right["dense+multicrop"]
        record = {
            "network": key, "run_dir": folder, "examples": int(labels.size),
            "scales": list(dict.fromkeys((scale[0], (scale[0] + scale[1]) // 2, scale[1]))),
            "errors": {p: float(100.0 * (1.0 - np.mean(right[p]))) for p in PROTOCOLS},
            "wins": {p: [int(np.sum(both & ~right[p])), int(np.sum(~both & right[p]))]
                     for p in ("dense", "multicrop")},
        }
        write_json(path, record)
        del model
    log(f"protocols {key}: " + ", ".join(f"{p} {record['errors'][p]:.2f} %"
                                         for p in PROTOCOLS)
        + f" top-1 error on {record['examples']} test images ({how})")
    runs[key][0] = dict(run, protocols=record)
    return runs


_NETS = (_net("A"), _net("A-LRN"), _net("B"), _net("C"), _net("D"), _net("E"),
         _net("D", "vgg_d_jitter", JITTER_SCALE))
_T3 = "ImageNet_top-1_error_Table_3"

STUDIES = {
    "vgg": Study(
        name="vgg",
        title="VGG Table 3 and Table 5 on VGG nets scaled to 32x32 (A, A-LRN, B, C, D, E)",
        networks=_NETS,
        seeds=1,
        budget_minutes=28.0,
        recipe="scaled_vgg_cifar10",
        overrides=(("data.policy", "vgg"), ("data.policy_options", _policy(TRAIN_SCALE)),
                   ("data.image_size", 32), ("data.eval_resize", 32),
                   ("data.mean", "rgb"), ("optimizer.learning_rate", 0.01),
                   ("optimizer.weight_decay", 5e-4)),
        roles=(("A", "vgg_a"), ("A-LRN", "vgg_a_lrn"), ("B", "vgg_b"), ("C", "vgg_c"),
               ("D", "vgg_d"), ("E", "vgg_e"), ("D-jitter", "vgg_d_jitter"),
               ("protocols", "vgg_d_jitter")),
        measure=measure_protocols,
        decide=_vgg_claims,
        draw=_vgg_figure,
        paper_settings=PAPER_SETTINGS,
        paper_numbers=(("vgg_a", {_T3: 29.6}), ("vgg_a_lrn", {_T3: 29.7}),
                       ("vgg_b", {_T3: 28.7}), ("vgg_c", {_T3: 28.1}),
                       ("vgg_d", {_T3: 27.0}), ("vgg_e", {_T3: 27.3}),
                       ("vgg_d_jitter", {_T3: 25.6})),
        paper=("ILSVRC-2012 val, single test scale, top-1 error (Table 3): A 29.6, "
               "A-LRN 29.7 (LRN does not help), B 28.7, C 28.1, D 27.0, E 27.3 (S = 256; "
               "with S ~ U[256, 512]: C 27.3, D 25.6, E 25.5): depth helps, 3x3 beats "
               "1x1 (D vs C), scale jittering helps. Table 5 (D, multi-scale trained, "
               "Q = {256, 384, 512}): dense 24.8, multi-crop 24.6, both 24.4: the two "
               "evaluations are complementary."),
    ),
}
