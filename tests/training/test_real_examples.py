"""Every metric of a run on an image folder is over its real
examples. Keras 3.15 fitted a one-pass dataset of unknown size until it ran out and
counted one more, empty, batch of the static batch size: on 3 classes the training
top-5 error (0 by definition: every label is among 5 of 3 classes) read 25 %."""

import csv
import json
import os

import numpy as np
import pytest
from tinyrun import TINY, make_folder

pytestmark = pytest.mark.tf_only  # tf.data


def test_one_pass_epochs_count_only_real_batches(tmp_path):
    import keras

    from kerascnn.data import eval_dataset, load_source
    from kerascnn.data.preprocessing import Preprocessing
    from kerascnn.training.recipe import load_recipe
    from kerascnn.training.trainer import train

    folder = make_folder(str(tmp_path / "data"), per_class_train=8, per_class_test=4)
    path = tmp_path / "tiny.toml"
    # steps = 0: an epoch is one pass of 24 images, 3 batches of 8
    path.write_text(TINY.format(source=folder, lr=0.05, epochs=2, steps=0, batch=8))
    run = str(tmp_path / "run")
    result = train(load_recipe(str(path)), output_dir=run, export=False, verbose=0)
    with open(os.path.join(run, "history.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:
        assert float(row["top5_error"]) == 0.0 and float(row["top5_accuracy"]) == 1.0
        assert float(row["val_top5_error"]) == 0.0
        # a top-1 error over 24 examples is a multiple of 100/24 %
        wrong = float(row["top1_error"]) * 24 / 100
        assert wrong == pytest.approx(round(wrong), abs=1e-4)

    # the validation (= test split here) and test metrics, recomputed from the
    # trained network's outputs on the 12 test images
    model = keras.saving.load_model(os.path.join(run, "checkpoints", "last.keras"))
    prep, _ = Preprocessing.load(run)
    source = load_source(folder, "test")
    images, labels = [], []
    for x, y in eval_dataset(source, batch_size=5, preprocessing=prep):
        images.append(x.numpy())
        labels.append(y.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert len(labels) == 12
    probs = np.asarray(model.predict(images, verbose=0))
    rank = (probs > probs[np.arange(12), labels][:, None]).sum(axis=1)
    top1 = 100.0 * np.mean(rank >= 1)
    metrics = json.load(open(os.path.join(run, "test_metrics.json")))
    assert metrics["num_examples"] == 12
    assert metrics["top1_error"] == pytest.approx(top1, abs=1e-3)
    assert metrics["top5_error"] == 0.0
    assert float(rows[-1]["val_top1_error"]) == pytest.approx(top1, abs=1e-3)
    assert result.history["top5_error"] == [0.0, 0.0]


def test_a_pass_short_of_a_batch_is_completed_from_the_next_pass():
    """An image that fails to decode leaves a pass one batch short: the declared
    number of steps still holds (the first batches of the next pass complete it), and
    a full pass never opens the next one (each epoch reads its own pass)."""
    import tensorflow as tf

    from kerascnn.training.experiment import _exact_steps

    opened = []

    def one_pass():  # the pipeline's one-pass dataset: a new pass per iterator
        opened.append(len(opened) + 1)
        yield opened[-1]

    passes = tf.data.Dataset.from_generator(
        one_pass, output_signature=tf.TensorSpec([], tf.int64))
    batches = passes.flat_map(  # pass 2 lost a batch
        lambda p: tf.data.Dataset.range(tf.where(tf.equal(p, 2), tf.constant(2, tf.int64),
                                                 tf.constant(3, tf.int64))).map(
            lambda i: p * 10 + i))
    ds = _exact_steps(batches, 3)
    assert int(ds.cardinality()) == 3
    epochs = [list(ds.as_numpy_iterator()) for _ in range(3)]
    assert epochs == [[10, 11, 12], [20, 21, 30], [40, 41, 42]]
    assert opened == [1, 2, 3, 4]


# the same under MirroredStrategy: test_distribution.py (its one process of two
# logical CPUs)
