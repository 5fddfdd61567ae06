"""tf.data functions traced as written, without AutoGraph.

``Dataset.map`` and ``flat_map`` run AutoGraph over the function they are given: its
source is parsed and rewritten, and so is every function it calls, each time a
pipeline is built. kerascnn's map functions are plain TensorFlow (their branches are
``tf.cond`` / ``tf.where`` already), so the rewrite changes nothing but costs: about
half the set-up time of a small training run (measured: 11-12 CPU-s against 5-6.5
for a 4-epoch run of the training tests' tiny recipe, imports excluded).
"""

from __future__ import annotations

__all__ = ["plain"]


def plain(fn):
    """``fn`` for ``Dataset.map`` / ``flat_map``, traced without AutoGraph."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)
