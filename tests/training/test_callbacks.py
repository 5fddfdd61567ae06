"""Callbacks: atomic checkpoints, NaN stop naming the last good checkpoint, the
continuous CSV history, plateau state across a resume, curves, schedules."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from kerascnn.training import callbacks as cb
from kerascnn.training.metrics import default_metrics
from kerascnn.training.optimizers import L2SGD

pytestmark = pytest.mark.tf_only  # tf.data / tf.distribute / SavedModel


def _model(lr=0.1):
    inp = keras.Input((4,))
    out = keras.layers.Dense(3, activation="softmax", name="fc")(inp)
    model = keras.Model(inp, out)
    model.compile(L2SGD(lr, momentum=0.9), "sparse_categorical_crossentropy",
                  metrics=default_metrics())
    return model


def _data(n=32, poison_from=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = rng.integers(0, 3, n)
    if poison_from is not None:
        x[poison_from:] = np.inf
    return x, y


def test_checkpoint_csv_curves_summary(tmp_path, capsys):
    x, y = _data()
    model = _model()
    ckpt = cb.AtomicCheckpoint(str(tmp_path / "ckpt"), monitor="val_top1_error")
    csv_path, png = str(tmp_path / "history.csv"), str(tmp_path / "curves.png")
    plateau = cb.PlateauSchedule(str(tmp_path / "plateau.json"), patience=0, min_delta=100.0)
    model.fit(x, y, batch_size=8, epochs=3, validation_data=(x, y), verbose=0,
              callbacks=[plateau, ckpt, cb.HistoryCSV(csv_path), cb.EpochSummary(),
                         cb.CurvePlot(csv_path, png)])
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["best.keras", "last.keras", "state.json"]
    restored = keras.saving.load_model(ckpt.last_path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    lines = open(csv_path).read().splitlines()
    header = lines[0].split(",")
    assert header[0] == "epoch" and "val_top1_error" in header and "learning_rate" in header
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    # the first epoch sets the best value; after it min_delta=100 % never counts as
    # an improvement: the lr is divided by 10 after epochs 2 and 3, and the CSV holds
    # the rate used *during* each epoch
    lrs = [float(r["learning_rate"]) for r in rows]
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.01], rtol=1e-5)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-3)
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 100
    out = capsys.readouterr().out
    assert "Epoch 3: lr 0.01 |" in out and "val top-1 error" in out
    state = json.load(open(tmp_path / "plateau.json"))
    assert state["epoch"] == 3


def test_plateau_state_survives_restart(tmp_path):
    path = str(tmp_path / "p.json")
    with open(path, "w") as f:
        json.dump({"epoch": 4, "best": 12.5, "wait": 2, "cooldown_counter": 1}, f)
    plateau = cb.PlateauSchedule(path, patience=3)
    plateau.set_model(_model())
    plateau.on_train_begin()
    plateau.on_epoch_begin(4)  # resumed after 4 epochs
    assert (plateau.best, plateau.wait, plateau.cooldown_counter) == (12.5, 2, 1)


def test_resume_reads_the_counters_of_the_epoch_it_resumes_at(tmp_path):
    """The plateau counters and the checkpoint's best value were
    written for epoch 4, then the run was killed while epoch 4's backup was written;
    it resumes at epoch 3 (the backup's) with the counters and best of epoch 3."""
    model = _model()
    plateau = cb.PlateauSchedule(str(tmp_path / "p.json"), monitor="val_loss", patience=2)
    ckpt = cb.AtomicCheckpoint(str(tmp_path / "ckpt"), monitor="val_loss")
    for c in (plateau, ckpt):
        c.set_model(model)
        c.on_train_begin()
    for epoch, val in enumerate([5.0, 4.0, 4.5, 3.0]):  # epochs 1-4
        for c in (plateau, ckpt):
            c.on_epoch_begin(epoch)
            c.on_epoch_end(epoch, {"val_loss": val, "loss": 1.0})
    assert (plateau.best, plateau.wait, ckpt.best) == (3.0, 0, 3.0)
    # a new process resuming from the backup of epoch 3
    plateau = cb.PlateauSchedule(str(tmp_path / "p.json"), monitor="val_loss", patience=2)
    ckpt = cb.AtomicCheckpoint(str(tmp_path / "ckpt"), monitor="val_loss")
    for c in (plateau, ckpt):
        c.set_model(model)
        c.on_train_begin()
        c.on_epoch_begin(3)
    assert (plateau.best, plateau.wait, plateau.cooldown_counter) == (4.0, 1, 0)
    assert ckpt.best == 4.0
    # epoch 4 trained again: its entry replaced, the later ones dropped
    plateau.on_epoch_end(3, {"val_loss": 3.5})
    ckpt.on_epoch_end(3, {"val_loss": 3.5, "loss": 1.0})
    state = json.load(open(tmp_path / "p.json"))
    assert sorted(state["epochs"], key=int) == ["1", "2", "3", "4"]
    assert state["epochs"]["4"]["best"] == 3.5 and state["epoch"] == 4
    assert json.load(open(tmp_path / "ckpt" / "state.json"))["best_by_epoch"] == {
        "1": 5.0, "2": 4.0, "3": 4.0, "4": 3.5}


def test_history_csv_drops_rows_trained_again(tmp_path):
    path = str(tmp_path / "h.csv")
    with open(path, "w") as f:
        f.write("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n")
    log = cb.HistoryCSV(path)
    log.set_model(_model())
    log.on_epoch_begin(2)  # resumed from the backup of epoch 2
    log.on_epoch_end(2, {"loss": 0.7})
    lines = open(path).read().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]
    assert lines[-1].split(",")[lines[0].split(",").index("loss")] == "0.7"


def test_nan_stops_and_names_last_good_checkpoint(tmp_path, capsys):
    x, y = _data(64, poison_from=40)  # batches 0-4 fine, 5+ produce inf/nan
    model = _model()
    ckpt = cb.AtomicCheckpoint(str(tmp_path / "ckpt"), monitor="top1_error")
    guard = cb.NaNGuard(ckpt)  # shares the checkpoint's Divergence
    clean = (x[:40], y[:40])
    backup = cb.SafeBackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
    model.fit(*clean, batch_size=8, epochs=1, verbose=0, callbacks=[guard, ckpt, backup])
    good = keras.saving.load_model(ckpt.last_path).get_weights()
    kept = sorted(os.listdir(tmp_path / "backup"))  # the backup of epoch 1
    assert kept == ["epoch-0001.weights.h5", "training_metadata.json"]
    # a resumed run (a new backup callback, as in a new process) that diverges
    backup = cb.SafeBackupAndRestore(str(tmp_path / "backup"), divergence=ckpt.divergence)
    assert backup.resume_point() == (1, str(tmp_path / "backup" / "epoch-0001.weights.h5"))
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
              callbacks=[guard, ckpt, backup])
    assert guard.diverged and backup.diverged and ckpt.divergence.diverged
    assert ckpt.last_path in guard.message and ckpt.last_path in capsys.readouterr().out
    # the NaN epoch was not saved over the good checkpoint, and the backup is kept
    for a, b in zip(keras.saving.load_model(ckpt.last_path).get_weights(), good):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path / "backup")) == kept
    assert not [f for f in os.listdir(tmp_path / "ckpt") if f.startswith(".tmp")]


def test_epoch_schedules():
    g = cb.epoch_schedule("exponential", 0.01, decay_rate=0.96, decay_epochs=8)
    assert g.schedule(0, None) == pytest.approx(0.01)
    assert g.schedule(7, None) == pytest.approx(0.01)
    assert g.schedule(8, None) == pytest.approx(0.0096)
    assert g.schedule(17, None) == pytest.approx(0.01 * 0.96 ** 2)
    s = cb.epoch_schedule("steps", 0.1, boundaries=[82, 123])
    assert [s.schedule(e, None) for e in (0, 81, 82, 122, 123)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001])
    with pytest.raises(ValueError, match="name='cosine'"):
        cb.epoch_schedule("cosine", 0.1)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    from kerascnn._io import atomic_write

    path = str(tmp_path / "x.json")
    atomic_write(path, "old")

    with pytest.raises(TypeError):
        atomic_write(path, 123)  # fails while writing
    assert open(path).read() == "old"
    assert os.listdir(tmp_path) == ["x.json"]


def test_step_deadline_caps_the_plateau_rate(capsys):
    model = _model(lr=0.1)
    cap = cb.StepDeadline(0.1, [2, 4])
    cap.set_model(model)
    seen = []
    for epoch in range(5):
        cap.on_epoch_begin(epoch)
        seen.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
        if epoch == 2:  # the plateau divides earlier than the next deadline
            model.optimizer.learning_rate = 0.001
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.01, 0.001, 0.001], rtol=1e-5)
    assert "capped at 0.01" in capsys.readouterr().out


def _two_epochs_with_backup(tmp_path):
    x, y = _data()
    model = _model()
    ckpt = cb.AtomicCheckpoint(str(tmp_path / "ckpt"), monitor="top1_error")
    backup = cb.SafeBackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[ckpt, backup])
    return model, ckpt


def test_backup_is_written_elsewhere_then_committed(tmp_path):
    model, _ = _two_epochs_with_backup(tmp_path)
    folder = tmp_path / "backup"
    assert sorted(os.listdir(folder)) == ["epoch-0002.weights.h5", "training_metadata.json"]
    meta = json.load(open(folder / "training_metadata.json"))
    assert meta == {"epoch": 2, "batch": 0, "weights": "epoch-0002.weights.h5"}
    fresh = _model()
    backup = cb.SafeBackupAndRestore(str(folder))
    backup.set_model(fresh)
    backup.on_train_begin()
    assert fresh._initial_epoch == 2
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fresh.optimizer.iterations.numpy(),
                                  model.optimizer.iterations.numpy())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "no_metadata"])
def test_unreadable_backup_falls_back_to_the_last_checkpoint(tmp_path, capsys, damage):
    """A truncated backup (a kill or a full disk under Keras' own
    in-place write) no longer blocks every later run."""
    model, ckpt = _two_epochs_with_backup(tmp_path)
    folder = tmp_path / "backup"
    weights = folder / "epoch-0002.weights.h5"
    if damage == "truncate":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        weights.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 300)
    else:
        os.remove(folder / "training_metadata.json")
    fresh = _model()
    backup = cb.SafeBackupAndRestore(str(folder), fallback=cb.AtomicCheckpoint(ckpt.directory))
    assert backup.resume_point() == (2, ckpt.last_path)
    out = capsys.readouterr().out
    assert f"the backup in {folder} cannot be read (" in out
    assert f"resuming from {ckpt.last_path} (epoch 2)" in out and out.count("\n") == 1
    backup.set_model(fresh)
    backup.on_train_begin()
    assert fresh._initial_epoch == 2
    saved = keras.saving.load_model(ckpt.last_path)
    for a, b in zip(fresh.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fresh.optimizer.iterations.numpy(), 8)  # 2 epochs x 4


def test_unreadable_backup_without_checkpoint_starts_over(tmp_path, capsys):
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "training_metadata.json").write_text('{"epoch": 3, "weights": "w.weights.h5"}')
    (folder / ".tmp-abc.weights.h5").write_bytes(b"half")  # an interrupted write
    backup = cb.SafeBackupAndRestore(str(folder))
    assert backup.resume_point() == (0, None)
    assert "w.weights.h5 is missing" in capsys.readouterr().out
    assert not (folder / ".tmp-abc.weights.h5").exists()
