"""A study's variants as training recipes: the study's settings and plan, written as
overrides of one recipe of ``pipelines/`` (the ResNet studies: ``resnet20_cifar10``,
the paper's CIFAR recipe, He et al. 2016, §4.2), so that every network of a study is
what ``kerascnn train <recipe> --set ...`` trains.

The paper's recipe, scaled to the run: SGD, momentum 0.9, L2 weight decay 1e-4
(:class:`~kerascnn.training.optimizers.L2SGD`), batch 128, learning rate 0.1 divided
by 10 at 50 % and 75 % of the iterations (the paper's 32k and 48k of 64k), per-pixel
mean subtracted. One "epoch" of the recipe is one point of the study's curves
(``training.steps_per_epoch`` iterations, then an evaluation of the curve's test
subset, the validation split); the learning rate is divided at the curve points
nearest 50 % and 75 % of the run (exact for the default 12 points and the paper's
160). Where we depart from the paper: the default data are the offline Fashion-MNIST
without augmentation (see ``docs/reproductions.md``), and mixed_bfloat16 compute.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Settings", "LR_STEPS", "lr_boundaries", "variant_recipe", "native_size"]

LR_STEPS = (0.5, 0.75)  # the paper's 32k and 48k of 64k iterations


@dataclasses.dataclass
class Settings:
    """What a study trains with. ``None`` fields are resolved from the data or the
    budget (:func:`kerascnn.reproduce.plan.plan_study`)."""

    data: str = "fashion_mnist"
    data_dir: str | None = None
    source_options: dict = dataclasses.field(default_factory=dict)
    budget_minutes: float | None = None
    iterations: int | None = None
    epochs: int | None = None
    points: int = 12
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seeds: int | None = None
    augment: str | None = None  # none | flip | cifar (default: none for fashion_mnist)
    image_size: int | None = None
    train_examples: int | None = None
    test_examples: int = 1000
    final_test_examples: int | None = None  # None: the curve's test subset
    eval_batch_size: int = 500
    precision: str = "mixed_bfloat16"
    strategy: str = "auto"
    run_eagerly: bool = False  # tests: tiny runs skip graph tracing

    # keys that may differ when a study is resumed
    _RUNTIME = ("strategy", "budget_minutes", "data_dir", "run_eagerly")

    def plan_key(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in self._RUNTIME}

    def resolved_augment(self) -> str:
        augment = self.augment or ("none" if self.data == "fashion_mnist" else "cifar")
        if augment not in ("none", "flip", "cifar"):
            raise ValueError("`augment` must be 'none', 'flip' or 'cifar'. "
                             f"Received: augment={augment!r}")
        return augment


# the cifar policy's options per --augment: pad 4 + random crop + flip, flip, nothing
_AUGMENT = {"cifar": {}, "flip": {"pad": 0, "random_crop": False},
            "none": {"pad": 0, "random_crop": False, "flip": False}}


def lr_boundaries(points: int) -> list[int]:
    """The curve points (epochs of the recipe) at which the rate is divided by 10:
    those nearest :data:`LR_STEPS` of the run, inside it."""
    return sorted({b for b in (int(round(f * points)) for f in LR_STEPS)
                   if 0 < b < points})


def _jit_compile() -> str:
    import keras

    # TensorFlow: oneDNN's kernels beat XLA's on CPU; JAX: always XLA ("false" would
    # run every op one at a time)
    return "false" if keras.backend.backend() == "tensorflow" else "auto"


def variant_recipe(study, net, settings: Settings, plan: dict, seed: int):
    """The :class:`~kerascnn.training.recipe.Recipe` of ``net`` of ``study`` with
    ``seed``: ``plan`` gives ``points``, ``iterations_per_point``, ``image_size`` and
    ``augment``."""
    from kerascnn.training.recipe import load_recipe

    points = int(plan["points"])
    test = settings.test_examples or 0
    overrides = {
        "name": f"{study.name}-{net.key}-s{seed}",
        "data.source": settings.data,
        "data.data_dir": settings.data_dir or "",
        "data.source_options": dict(settings.source_options),
        "data.train_split": "train",
        "data.validation_split": "test",  # the curve: the test subset at every point
        "data.test_split": "test",  # the final test error
        "data.validation_from_train": 0,
        "data.validation_fraction": 0.0,
        "data.train_examples": settings.train_examples or 0,
        "data.validation_examples": test,
        "data.test_examples": settings.final_test_examples or test,
        "data.image_size": int(plan["image_size"]),
        "data.policy": "cifar",
        "data.policy_options": dict(_AUGMENT[plan["augment"]]),
        "data.mean": "per_pixel",
        "data.pca": "none",
        "optimizer.learning_rate": float(settings.lr),
        "optimizer.momentum": float(settings.momentum),
        "optimizer.weight_decay": float(settings.weight_decay),
        "schedule.name": "steps",
        "schedule.boundaries": lr_boundaries(points),
        "training.epochs": points,
        "training.steps_per_epoch": int(plan["iterations_per_point"]),
        "training.batch_size": int(settings.batch_size),
        "training.eval_batch_size": int(settings.eval_batch_size),
        "training.validation_steps": 0,
        "training.seed": int(seed),
        "training.precision": settings.precision,
        "training.jit_compile": _jit_compile(),
        "training.checkpoint_best": False,
        "training.run_eagerly": bool(settings.run_eagerly),
        **dict(study.overrides),
        **net.recipe_overrides(),
    }
    return load_recipe(study.recipe, overrides)


def native_size(source) -> int:
    """The side the study trains at when ``--image-size`` is not given: the images'
    own (in-memory arrays, a decoded split of one size), else 32 (CIFAR's)."""
    from kerascnn.training.experiment import _fixed_shorter_side

    return _fixed_shorter_side(source) or 32
