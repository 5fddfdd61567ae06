"""The claim rules on synthetic curves whose answer is known."""

import numpy as np
import pytest

from kerascnn.reproduce import claims
from kerascnn.reproduce.claims import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE

ROLES = {"plain_shallow": "p20", "plain_deep": "p56",
         "resnet_shallow": "r20", "resnet_deep": "r56"}


def _curve(final, n=10, start=90.0, wiggle=0.0, seed=0):
    """A decreasing error curve from ``start`` to ``final`` with optional noise."""
    rng = np.random.default_rng(seed)
    c = final + (start - final) * np.exp(-np.arange(n) / 2.0)
    c[-1] = final
    return c + wiggle * rng.standard_normal(n) * (np.arange(n) < n - 1)


def _outcomes(found):
    return {c.key: c.outcome for c in found}


def test_degradation_curves_hold():
    # plain-56 trains to 20 %, plain-20 to 10 %; ResNet-56 to 5 %, ResNet-20 to 8 %
    curves = {"p20": [_curve(10.0)], "p56": [_curve(20.0)],
              "r20": [_curve(8.0)], "r56": [_curve(5.0)]}
    found = claims.degradation_claims(curves, ROLES)
    assert _outcomes(found) == {"a": HOLDS, "b": HOLDS, "c": HOLDS}
    a = found[0]
    assert a.numbers["difference"] == pytest.approx(10.0)
    # one seed: the noise is the largest change over the last 3 intervals
    expected = max(np.max(np.abs(np.diff(_curve(20.0)[-4:]))),
                   np.max(np.abs(np.diff(_curve(10.0)[-4:]))))
    assert a.numbers["noise"] == pytest.approx(expected)
    assert "Rule:" in a.line() and "HOLDS" in a.line()


def test_no_degradation_does_not_hold():
    # the deeper plain net trains *better*; the deeper ResNet clearly worse
    curves = {"p20": [_curve(20.0)], "p56": [_curve(10.0)],
              "r20": [_curve(5.0)], "r56": [_curve(15.0)]}
    found = _outcomes(claims.degradation_claims(curves, ROLES))
    assert found["a"] == DOES_NOT_HOLD
    assert found["b"] == DOES_NOT_HOLD
    assert found["c"] == DOES_NOT_HOLD  # ResNet-56 15 % vs plain-56 10 %


def test_resnet_worse_than_plain_does_not_hold():
    curves = {"p20": [_curve(10.0)], "p56": [_curve(10.0)],
              "r20": [_curve(10.0)], "r56": [_curve(30.0)]}
    found = _outcomes(claims.degradation_claims(curves, ROLES))
    assert found["c"] == DOES_NOT_HOLD
    assert found["a"] == INCONCLUSIVE  # equal finals: within any noise


def test_overlapping_seeds_inconclusive():
    # two seeds each; plain-56 higher on average but its seeds overlap plain-20's
    curves = {"p20": [_curve(10.0), _curve(14.0)], "p56": [_curve(11.0), _curve(15.0)],
              "r20": [_curve(8.0), _curve(9.0)], "r56": [_curve(7.0), _curve(8.0)]}
    found = claims.degradation_claims(curves, ROLES)
    a = found[0]
    assert a.outcome == INCONCLUSIVE
    assert a.numbers["noise"] == pytest.approx(4.0)  # spread: 15 - 11 = 14 - 10
    assert a.numbers["difference"] == pytest.approx(1.0)
    assert "spread between 2 seeds" in a.rule


def test_epoch_fluctuation_makes_a_small_gap_inconclusive():
    # a gap of 1 point; the curves still jump by 3 (plain-20) and 5 (plain-56)
    # points between their last points
    p20 = np.array([50, 30, 20, 14, 11, 14, 11.0])
    p56 = np.array([60, 40, 25, 17, 15, 17, 12.0])
    found = claims.degradation_claims({"p20": [p20], "p56": [p56], "r20": [p20],
                                       "r56": [p20]}, ROLES)
    assert found[0].outcome == INCONCLUSIVE
    assert found[0].numbers["noise"] == pytest.approx(5.0)
    assert found[0].numbers["difference"] == pytest.approx(1.0)


def test_one_point_curves_are_inconclusive_and_say_why():
    # --iterations 2 --points 1: each curve is one point; the gaps are large (10 and
    # 15 points) but with one seed there is no interval to measure the noise over
    curves = {"p20": [[10.0]], "p56": [[20.0]], "r20": [[8.0]], "r56": [[5.0]]}
    found = claims.degradation_claims(curves, ROLES)
    assert _outcomes(found) == {"a": INCONCLUSIVE, "b": INCONCLUSIVE, "c": INCONCLUSIVE}
    for claim in found:
        assert "noise not measurable" in claim.line()
        assert "one seed and a curve of one point" in claim.rule
        assert np.isnan(claim.numbers["noise"])
    # one more point is enough: the change between the two points is the noise
    two = {k: [np.array([v[0][0] + 1.0, v[0][0]])] for k, v in curves.items()}
    found = claims.degradation_claims(two, ROLES)
    assert _outcomes(found) == {"a": HOLDS, "b": HOLDS, "c": HOLDS}
    assert found[0].numbers["noise"] == pytest.approx(1.0)
    # two seeds of one point each: their spread is the noise
    seeds = {k: [v[0], [v[0][0] + 0.5]] for k, v in curves.items()}
    assert _outcomes(claims.degradation_claims(seeds, ROLES))["a"] == HOLDS


def test_final_estimate_rejects_empty():
    with pytest.raises(ValueError, match="curves"):
        claims.final_estimate([[]])


def test_sign_test_matches_binomial():
    # P[X >= 8] for X ~ B(10, 1/2) = (45 + 10 + 1) / 1024
    hi, lo = claims.sign_test(8, 10)
    assert hi == pytest.approx(56 / 1024)
    assert lo == pytest.approx(1 - 11 / 1024)  # 1 - P[X >= 9]


def test_responses_claims():
    rng = np.random.default_rng(0)
    plain = rng.uniform(1.0, 2.0, 19)
    smaller = {"plain20": plain, "resnet20": plain * 0.6}
    larger = {"plain20": plain, "resnet20": plain * 1.5}
    mixed = {"plain20": plain, "resnet20": plain * np.where(np.arange(19) % 2, 0.8, 1.2)}
    pair = [("plain20", "resnet20")]
    assert claims.responses_claims(smaller, pair)[0].outcome == HOLDS
    assert claims.responses_claims(larger, pair)[0].outcome == DOES_NOT_HOLD
    c = claims.responses_claims(mixed, pair)[0]
    assert c.outcome == INCONCLUSIVE
    assert c.numbers["smaller"] == 9  # odd indices 1..17
    assert claims.responses_claims(smaller, pair)[0].numbers["median_ratio"] == \
        pytest.approx(0.6)
    with pytest.raises(ValueError, match="same number"):
        claims.responses_claims({"plain20": plain, "resnet20": plain[:5]}, pair)


def test_shortcuts_claims():
    order = ["A", "B", "C"]
    ordered = {"A": [90.0, 90.2], "B": [91.0, 91.1], "C": [92.0, 91.9]}
    reversed_ = {"A": [92.0, 92.1], "B": [91.0, 91.1], "C": [92.5, 92.4]}
    overlapping = {"A": [90.0, 91.0], "B": [90.5, 91.2], "C": [90.8, 91.5]}
    assert claims.shortcuts_claims(ordered, order)[0].outcome == HOLDS
    assert claims.shortcuts_claims(reversed_, order)[0].outcome == DOES_NOT_HOLD
    c = claims.shortcuts_claims(overlapping, order)[0]
    assert c.outcome == INCONCLUSIVE
    assert c.numbers["steps"] == ["within", "within"]
    one_seed = {"A": [90.0], "B": [91.0], "C": [92.0]}
    assert claims.shortcuts_claims(one_seed, order)[0].outcome == INCONCLUSIVE
