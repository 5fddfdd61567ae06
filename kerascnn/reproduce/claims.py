"""The claim rules: pure functions from measured curves and numbers to
**holds / does not hold / inconclusive at this scale**, each with its rule in words.

Noise. A difference counts only when it exceeds the noise of the numbers compared:

- with two or more seeds per network, the *spread between seeds*: max − min of the
  final values over the seeds (the larger of the two networks' spreads);
- with one seed, the *epoch-to-epoch fluctuation*: the largest change between
  consecutive points of the curve over its last ``last`` intervals (the larger of the
  two networks'). It includes the curve's remaining trend, so it over-states the noise
  and errs towards "inconclusive", never towards "holds";
- with one seed and a one-point curve (``--points 1``) there is no interval to measure
  the noise over: every comparison is "inconclusive", and the claim says why.

Layer responses (Figure 7) are paired layer by layer between a ResNet and the plain
net of the same depth (the same stack of 3×3 layers); the rule is a two-sided sign
test over the layers (binomial, p < 0.05), the median of the per-layer ratios printed
beside it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = [
    "HOLDS",
    "DOES_NOT_HOLD",
    "INCONCLUSIVE",
    "Claim",
    "Estimate",
    "final_estimate",
    "degradation_claims",
    "responses_claims",
    "shortcuts_claims",
    "sign_test",
]

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive at this scale"


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim's verdict. ``line()`` is what reports print."""

    key: str
    statement: str
    outcome: str
    rule: str
    detail: str
    numbers: dict

    def line(self) -> str:
        return (f"({self.key}) {self.outcome.upper()}: {self.statement}. "
                f"Measured: {self.detail}. Rule: {self.rule}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A network's final value (mean over seeds) and its noise."""

    value: float
    noise: float  # nan when it cannot be measured
    method: str
    finals: tuple

    @property
    def measured(self) -> bool:
        return math.isfinite(self.noise)


def final_estimate(curves, last=3) -> Estimate:
    """The final value of one curve per seed and its noise (module docstring).

    Args:
      curves: a sequence of 1-D sequences, one per seed (errors at each curve point).
      last: one seed: the number of final intervals whose largest change is the noise.
    """
    curves = [np.asarray(c, np.float64).reshape(-1) for c in curves]
    if not curves or any(c.size == 0 for c in curves):
        raise ValueError("`curves` must hold at least one non-empty curve. "
                         f"Received: curves with sizes {[c.size for c in curves]}")
    finals = tuple(float(c[-1]) for c in curves)
    if len(curves) >= 2:
        return Estimate(float(np.mean(finals)), float(max(finals) - min(finals)),
                        f"spread between {len(curves)} seeds (max - min of the final "
                        "values)", finals)
    tail = curves[0][-(last + 1):]
    if tail.size < 2:
        return Estimate(finals[0], math.nan,
                        "not measurable: one seed and a curve of one point (no interval "
                        "between points; use two or more points or seeds)", finals)
    noise = float(np.max(np.abs(np.diff(tail))))
    return Estimate(finals[0], noise,
                    f"one seed: largest change between consecutive curve points over "
                    f"the last {tail.size - 1} intervals", finals)


def _num(x):
    return f"{x:.2f}" if math.isfinite(x) else "not measurable"


def _pair_noise(a: Estimate, b: Estimate):
    """The larger noise of two networks and how it was measured (nan when either
    cannot be measured)."""
    for e in (a, b):
        if not e.measured:
            return math.nan, e.method
    method = a.method if a.noise >= b.noise else b.method
    return max(a.noise, b.noise), method


def _higher(key, statement, quantity, high, low, estimates):
    """Claim that ``high``'s value exceeds ``low``'s (both keys of ``estimates``,
    values (label, Estimate))."""
    (hl, he), (ll, le) = estimates[high], estimates[low]
    noise, method = _pair_noise(he, le)
    diff = he.value - le.value
    if not math.isfinite(noise):
        outcome = INCONCLUSIVE
    elif diff > noise:
        outcome = HOLDS
    elif diff < -noise:
        outcome = DOES_NOT_HOLD
    else:
        outcome = INCONCLUSIVE
    rule = (f"holds if the {quantity} of {hl} exceeds {ll}'s by more than the noise, "
            f"does not hold if it is lower by more than the noise, else inconclusive; "
            f"noise: {method} (the larger of the two networks')")
    detail = (f"{hl} {_num(he.value)} %, {ll} {_num(le.value)} %, difference "
              f"{diff:+.2f} points, noise {_num(noise)}")
    return Claim(key, statement, outcome, rule, detail,
                 {high: he.value, low: le.value, "difference": diff, "noise": noise})


def _not_worse(key, statement, quantity, deep, shallow, estimates):
    (dl, de), (sl, se) = estimates[deep], estimates[shallow]
    noise, method = _pair_noise(de, se)
    diff = de.value - se.value
    if not math.isfinite(noise):
        outcome = INCONCLUSIVE
    else:
        outcome = HOLDS if diff <= noise else DOES_NOT_HOLD
    rule = (f"holds if the {quantity} of {dl} is below {sl}'s or above it by no more "
            f"than the noise, else does not hold (inconclusive when the noise cannot be "
            f"measured); noise: {method} (the larger of the two networks')")
    detail = (f"{dl} {_num(de.value)} %, {sl} {_num(se.value)} %, difference "
              f"{diff:+.2f} points, noise {_num(noise)}")
    return Claim(key, statement, outcome, rule, detail,
                 {deep: de.value, shallow: se.value, "difference": diff, "noise": noise})


def degradation_claims(train_curves, roles, labels=None, last=3) -> list[Claim]:
    """Claims (a), (b), (c) of the degradation study from training-error curves.

    Args:
      train_curves: ``{network key: [curve per seed]}``, training error (%) per point.
      roles: ``{"plain_shallow", "plain_deep", "resnet_shallow", "resnet_deep"}`` →
        network keys.
      labels: network key → display name (default the key).
      last: see :func:`final_estimate`.
    """
    roles = dict(roles)
    labels = dict(labels or {})
    est = {k: (labels.get(k, k), final_estimate(train_curves[k], last))
           for k in (roles["plain_shallow"], roles["plain_deep"],
                     roles["resnet_shallow"], roles["resnet_deep"])}
    ps, pd, rs, rd = (roles[r] for r in ("plain_shallow", "plain_deep",
                                         "resnet_shallow", "resnet_deep"))
    q = "final training error"
    return [
        _higher("a", f"the deeper plain net ({est[pd][0]}) has higher training error "
                f"than {est[ps][0]} (degradation, not overfitting)", q, pd, ps, est),
        _not_worse("b", f"with shortcuts the deeper net ({est[rd][0]}) is no worse than "
                   f"{est[rs][0]} in training error", q, rd, rs, est),
        _higher("c", f"{est[rd][0]} has lower training error than {est[pd][0]}", q,
                pd, rd, est),
    ]


def sign_test(smaller: int, n: int) -> tuple[float, float]:
    """One-sided binomial p-values (p = 1/2) of ``smaller`` successes in ``n``:
    ``(P[X >= smaller], P[X <= smaller])``."""
    if n <= 0:
        return 1.0, 1.0
    pmf = [math.comb(n, k) / 2.0 ** n for k in range(n + 1)]
    return float(sum(pmf[smaller:])), float(sum(pmf[:smaller + 1]))


def responses_claims(stds, pairs, labels=None, alpha=0.05) -> list[Claim]:
    """Figure 7's claim for each ``(plain key, resnet key)`` pair: the ResNet's
    layer responses are smaller than the plain net's.

    Args:
      stds: ``{network key: per-layer std}`` in layer order; the two nets of a pair
        must have the same number of 3×3 layers.
      pairs: ``[(plain_key, resnet_key), ...]``.
      alpha: the sign test's level (two one-sided tests at ``alpha / 2`` each).
    """
    labels = dict(labels or {})
    claims = []
    for i, (plain, res) in enumerate(pairs):
        p = np.asarray(stds[plain], np.float64)
        r = np.asarray(stds[res], np.float64)
        if p.shape != r.shape:
            raise ValueError(f"{plain} and {res} must have the same number of 3x3 "
                             f"layers. Received: {p.size} and {r.size}")
        n = int(p.size)
        smaller = int(np.sum(r < p))
        p_small, p_large = sign_test(smaller, n)
        ratio = r / np.where(p > 0, p, np.nan)
        median = float(np.nanmedian(ratio)) if n else float("nan")
        sorted_below = float(np.mean(np.sort(r)[::-1] < np.sort(p)[::-1])) if n else 0.0
        if p_small < alpha / 2:
            outcome = HOLDS
        elif p_large < alpha / 2:
            outcome = DOES_NOT_HOLD
        else:
            outcome = INCONCLUSIVE
        pl, rl = labels.get(plain, plain), labels.get(res, res)
        rule = (f"two-sided sign test over the {n} paired 3x3 layers: holds if "
                f"{rl}'s std is smaller in significantly many layers (p < {alpha}), "
                f"does not hold if larger in significantly many, else inconclusive")
        detail = (f"{rl} smaller in {smaller} of {n} layers (p = {p_small:.3g}), "
                  f"median ratio {rl}/{pl} {median:.3f}, sorted {rl} curve below "
                  f"{pl}'s at {100 * sorted_below:.0f} % of positions")
        claims.append(Claim(chr(ord("a") + i),
                            f"{rl}'s layer responses are smaller than {pl}'s",
                            outcome, rule, detail,
                            {"layers": n, "smaller": smaller, "p_smaller": p_small,
                             "p_larger": p_large, "median_ratio": median,
                             "sorted_below_fraction": sorted_below}))
    return claims


def shortcuts_claims(accuracies, order, labels=None) -> list[Claim]:
    """Table 3's ordering ``order[0] <= order[1] <= ...`` by accuracy (%).

    Args:
      accuracies: ``{network key: [final test accuracy per seed]}``.
      order: network keys from the expected worst to the expected best (A, B, C).
    """
    labels = dict(labels or {})
    acc = {k: np.asarray(accuracies[k], np.float64).reshape(-1) for k in order}
    seeds = min(a.size for a in acc.values())
    means = {k: float(np.mean(a)) for k, a in acc.items()}
    spreads = {k: float(np.max(a) - np.min(a)) for k, a in acc.items()}
    steps, parts = [], []
    for lo, hi in zip(order[:-1], order[1:]):
        noise = max(spreads[lo], spreads[hi])
        diff = means[hi] - means[lo]
        status = "ordered" if diff > noise else ("reversed" if diff < -noise else "within")
        steps.append(status)
        parts.append(f"{labels.get(hi, hi)} - {labels.get(lo, lo)} = {diff:+.2f} "
                     f"points (spread {noise:.2f}: {status})")
    names = " <= ".join(labels.get(k, k) for k in order)
    rule = ("each step of the ordering compares the mean accuracy over seeds against "
            "the larger spread between seeds (max - min) of the two options: holds if "
            "every step is ordered by more than the spread, does not hold if any step "
            "is reversed by more than it, else inconclusive; fewer than 2 seeds: "
            "inconclusive (no spread)")
    if seeds < 2:
        outcome = INCONCLUSIVE
    elif "reversed" in steps:
        outcome = DOES_NOT_HOLD
    elif all(s == "ordered" for s in steps):
        outcome = HOLDS
    else:
        outcome = INCONCLUSIVE
    detail = ", ".join(f"{labels.get(k, k)} {means[k]:.2f} % (spread {spreads[k]:.2f})"
                       for k in order) + "; " + "; ".join(parts)
    return [Claim("a", f"accuracy {names} (Table 3's ordering)", outcome, rule, detail,
                  {"means": means, "spreads": spreads, "steps": steps, "seeds": seeds})]
