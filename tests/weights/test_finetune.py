"""Fine-tuning from a pretrained weights file: new classifier, the trunk carried over
exactly (checked against a PyTorch forward of the file), the new head learning alone
for the head epochs, then the whole net; and a whole ``train`` run from a recipe with
``model.weights`` (trains, evaluates, exports with the weights' mean).

The weights file is a torchvision-format ResNet-18 (``torch.save`` of random weights
with non-trivial batch-norm statistics) made here; images are 32x32.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from _torch_references import randomize_torch, torch_modules
from kerascnn.weights import sets

SIZE = 32
COLOURS = {"blue": (40, 40, 200), "green": (40, 200, 40), "red": (200, 40, 40)}


@pytest.fixture(scope="module")
def pth(tmp_path_factory):
    import torch

    m = torch_modules()
    model = randomize_torch(m["ResNet"](m["BasicBlock"], [2, 2, 2, 2]), seed=1)
    path = tmp_path_factory.mktemp("w") / "resnet18_test.pth"
    torch.save(model.state_dict(), str(path))
    return str(path), model


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 3)):
        for name, colour in COLOURS.items():
            os.makedirs(root / split / name)
            for i in range(n):
                noise = rng.integers(-40, 40, (SIZE, SIZE, 3))
                img = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(img).save(root / split / name / f"{i}.png")
    return str(root)


def _torch_features(model, images):
    import torch

    from _torch_references import TORCHVISION_MEAN, TORCHVISION_STD

    x = (images / 255.0 - TORCHVISION_MEAN) / TORCHVISION_STD
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32))
    with torch.no_grad():
        y = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        y = model.layer4(model.layer3(model.layer2(model.layer1(y))))
        return torch.flatten(model.avgpool(y), 1).numpy()


def _features(model, images):
    import keras

    head = model.get_layer("predictions")
    return keras.Model(model.inputs[0], head.input)(images, training=False).numpy()


def test_new_classifier_keeps_the_pretrained_trunk(pth):
    from kerascnn.training.finetune import finetune_model, head_layers

    path, torch_model = pth
    model = finetune_model("resnet18", path, 3, (SIZE, SIZE, 3))
    assert model.output_shape == (None, 3)
    assert head_layers(model) == ["predictions"]
    assert model.get_layer("predictions").activation.__name__ == "softmax"
    images = np.random.default_rng(2).uniform(0, 255, (2, SIZE, SIZE, 3))
    mean = np.asarray(sets.TORCHVISION_MEAN_RGB)
    np.testing.assert_allclose(_features(model, (images - mean).astype(np.float32)),
                               _torch_features(torch_model, images), rtol=2e-4, atol=2e-4)


def test_replace_classifier_of_googlenet_replaces_aux_heads_too():
    from kerascnn.applications import get_model
    from kerascnn.training.finetune import head_layers, replace_classifier

    def build(c):
        return get_model("googlenet", aux_logits=True, input_shape=(96, 96, 3), classes=c)

    old = build(1000)
    new = replace_classifier(old, 4, build)
    assert type(new) is type(old)
    assert sorted(head_layers(new)) == ["aux1_predictions", "aux2_predictions", "predictions"]
    shapes = {v.path: tuple(v.shape) for v in new.weights}
    assert shapes["aux1_predictions/kernel"][-1] == 4 and shapes["predictions/bias"] == (4,)
    old_w = {v.path: v.numpy() for v in old.weights}
    new_w = {v.path: v.numpy() for v in new.weights}
    np.testing.assert_array_equal(new_w["aux1_fc/kernel"], old_w["aux1_fc/kernel"])
    assert not np.array_equal(new_w["aux1_predictions/kernel"][:, :4],
                              old_w["aux1_predictions/kernel"][:, :4])


def test_head_epochs_hold_the_trunk_then_everything_learns(pth):
    import keras

    from kerascnn.training.optimizers import L2SGD
    from kerascnn.training.finetune import FineTuneSchedule, finetune_model, head_patterns

    model = finetune_model("resnet18", pth[0], 3, (SIZE, SIZE, 3))
    model.compile(optimizer=L2SGD(0.05, l2=1e-4, head=head_patterns(model)),
                  loss="sparse_categorical_crossentropy", jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.uniform(-100, 100, (8, SIZE, SIZE, 3)).astype(np.float32)
    y = rng.integers(0, 3, 8)

    def snapshot():
        return {v.path: v.numpy().copy() for v in model.trainable_variables}

    schedule = FineTuneSchedule(head_epochs=1, factor=0.1)
    before = snapshot()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[schedule])
    after_head = snapshot()
    for path, value in before.items():
        changed = not np.array_equal(value, after_head[path])
        assert changed == path.startswith("predictions/"), path
    # Epoch 2 (as a resumed run would start it): the whole network learns.
    model.fit(x, y, batch_size=4, epochs=2, initial_epoch=1, verbose=0, callbacks=[schedule])
    after = snapshot()
    body = [p for p in after if not p.startswith("predictions/")]
    assert all(not np.array_equal(after[p], after_head[p]) for p in body if "kernel" in p)
    assert float(model.optimizer.body_scale.numpy()) == pytest.approx(0.1)


TINY = """
name = "ft"
departures = "a test recipe"
[model]
name = "resnet18"
weights = "{weights}"
[data]
source = "{source}"
train_split = "train"
validation_split = "val"
test_split = "val"
policy = "cifar"
policy_options = {{ pad = 0, random_crop = false }}
image_size = {size}
pca = "none"
[optimizer]
learning_rate = 0.01
finetune_lr_factor = 0.1
[schedule]
name = "constant"
[training]
epochs = 2
head_epochs = 1
batch_size = 8
steps_per_epoch = 2
jit_compile = "false"
"""


def _recipe(pth, folder):
    """The fine-tuning recipe over ``folder``: three epochs, the first the head's."""
    import tomllib

    from kerascnn.training.recipe import parse_recipe

    text = TINY.format(weights=pth[0], source=folder, size=SIZE).replace(
        "epochs = 2\n", "epochs = 3\n")
    return parse_recipe(tomllib.loads(text), where="ft.toml")


@pytest.fixture(scope="module")
def finetuned(pth, folder, tmp_path_factory):
    """One uninterrupted fine-tuning run with its export (the run of the test below and
    the reference of the resumed run), and a copy of its run folder as it was on disk
    at the end of the head epoch, after that epoch's backup: what a run interrupted
    there leaves (its lock released), which the resume test resumes."""
    import shutil

    import keras

    from kerascnn.training import experiment as ex
    from kerascnn.training.trainer import train

    root = tmp_path_factory.mktemp("finetuned")
    export_dir, run, interrupted = root / "saved_models", root / "run", root / "interrupted"

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                shutil.copytree(run, interrupted)
                os.remove(interrupted / "run.lock")

    build = ex.build_callbacks

    def with_snapshot(*args, **kwargs):
        cbs = build(*args, **kwargs)
        cbs.all.append(Snapshot())  # after the backup of epoch 0
        return cbs

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ex, "build_callbacks", with_snapshot)
        result = train(_recipe(pth, folder), output_dir=str(run), export_dir=str(export_dir),
                       verbose=0)
    return result, export_dir, interrupted


def test_finetune_run_trains_evaluates_and_exports(finetuned):
    result, export_dir, _ = finetuned
    assert not result.diverged
    assert len(result.history["loss"]) == 3
    assert result.test_metrics is not None and 0.0 <= result.test_metrics["top1_error"] <= 100.0
    doc = json.loads((export_dir / "ft" / "1" / "assets.extra" / "kerascnn.json").read_text())
    assert doc["class_names"] == sorted(COLOURS)
    np.testing.assert_allclose(doc["preprocessing"]["mean"], sets.TORCHVISION_MEAN_RGB,
                               rtol=1e-6)
    assert doc["preprocessing"]["resize"] == round(SIZE * 256 / 224)


def test_recipe_weights_are_checked_at_parse(pth):
    import tomllib

    from kerascnn.training.recipe import RecipeError, parse_recipe

    doc = tomllib.loads(TINY.format(weights="imagenet_v9", source="x", size=SIZE))
    with pytest.raises(RecipeError, match="model.weights.*'imagenet'"):
        parse_recipe(doc, where="ft.toml")
    doc["model"]["weights"] = "imagenet"
    assert parse_recipe(doc, where="ft.toml").model.weights == "imagenet"


def test_finetune_run_resumes_on_the_same_schedule(pth, folder, finetuned, capsys):
    """Interrupted after the head epoch, resumed: the same weights as a run that was
    not interrupted (the multipliers follow from the epoch the run resumes at)."""
    from kerascnn.training.trainer import train

    recipe = _recipe(pth, folder)
    reference, _, interrupted = finetuned  # uninterrupted, the same recipe
    # what the interrupted run left: the head epoch trained and backed up, no more
    meta = json.load(open(interrupted / "backup" / "training_metadata.json"))
    assert meta["epoch"] == 1
    assert not (interrupted / "trained.json").exists()
    capsys.readouterr()
    resumed = train(recipe, output_dir=str(interrupted), export=False, verbose=0)
    printed = capsys.readouterr().out
    assert f"resuming ft in {interrupted} at the train stage" in printed
    # epochs 2 and 3 only: not from the start
    assert "Epoch 1:" not in printed and "Epoch 2:" in printed and "Epoch 3:" in printed
    assert float(resumed.model.optimizer.body_scale.numpy()) == pytest.approx(0.1)
    for a, b in zip(reference.model.weights, resumed.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
