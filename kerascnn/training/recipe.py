"""Training recipes: one TOML file per paper experiment, parsed strictly.

A recipe (``pipelines/<name>.toml``) has the sections ``[model]``, ``[data]``,
``[optimizer]``, ``[schedule]`` and ``[training]``, each parsed into the dataclass of
the same name below. Parsing is strict, in the spirit of tensorflow/models'
``official.core`` configs: an unknown key, a value of the wrong type or a missing
required value raises :class:`RecipeError` naming the key and the file.

Command-line overrides use dotted keys (``--set optimizer.learning_rate=0.05``);
the value is read as a TOML value (``3``, ``0.1``, ``true``, ``[256, 512]``,
``"text"``), falling back to a plain string.

Everything a recipe can get wrong is refused here, at parse time, before any data is
read (``kerascnn train`` would otherwise find a typo after a pass over the data or the
whole training): values out of range (``learning_rate <= 0``, ``steps_per_epoch < 0``,
...), a model name the registry does not know or builder options it does not take, a
policy name or policy option ``kerascnn.data.get_policy`` refuses, and a ``name`` that
is not a TF Serving model name (it names the run folder ``runs/<name>`` and the export
``saved_models/<name>``, so it must be one plain path component).

:func:`load_recipe` is the one recipe reader of every command (``train``,
``show-augmentations``, ``dataset-stats``): a path, or a name under the package's
``pipelines/`` folder (:func:`pipelines_dir`, package data), found from any working
directory and from a non-editable install.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import pathlib
import tomllib
from typing import Any

__all__ = [
    "DataConfig",
    "ModelConfig",
    "OptimizerConfig",
    "Recipe",
    "RecipeError",
    "ScheduleConfig",
    "TrainingConfig",
    "apply_overrides",
    "default_recipe_path",
    "find_recipe",
    "list_recipes",
    "load_recipe",
    "parse_recipe",
    "policy_options",
]

_MISSING = dataclasses.MISSING


class RecipeError(ValueError):
    """A recipe file (or override) that does not parse."""


@dataclasses.dataclass
class ModelConfig:
    """``[model]``: which network to build.

    name: a ``kerascnn.applications`` registry name (``resnet20``, ``vgg11``, ...).
    options: keyword arguments for the builder (``shortcut = "A"``, ``groups = 2``,
      ``aux_logits = true``); ``classes`` and ``input_shape`` come from the data.
    weights: fine-tuning: a weight set of the network (``"imagenet"``, see
      ``kerascnn models``) or the path of a 1000-class weights file; the network is
      built with it and, when the data has another number of classes, gets new
      classifiers (:mod:`kerascnn.training.finetune`). The run's mean, and its
      evaluation resize unless ``data.eval_resize`` is set, are then the set's.
      Empty: random initialisation.
    """

    name: str
    options: dict = dataclasses.field(default_factory=dict)
    weights: str = ""


@dataclasses.dataclass
class DataConfig:
    """``[data]``: where the images come from and how they are augmented.

    source: a ``kerascnn.data.load_source`` spec (``fashion_mnist``,
      ``tfds:cifar10``, ``tfds:imagenet2012``, an image folder,
      ``tfrecord:<glob>``).
    train_split / validation_split / test_split: split names; an empty
      ``validation_split`` with ``validation_from_train > 0`` holds out the last
      ``validation_from_train`` training examples (in-memory sources) instead.
      ``validation_fraction`` in (0, 1): the validation split is that fraction of
      the training split, held out per class with ``training.seed`` (image folders,
      in-memory sources; logged, and listed in the run's ``holdout.json``), and a
      ``test_split`` equal to ``validation_split`` is that hold-out too. An image
      folder without the requested split folder is refused, never replaced by
      another split (``kerascnn.data.load_source``).
    policy / policy_options: ``kerascnn.data.get_policy(policy, **policy_options)``.
    image_size: network input side; eval_resize: shorter side before the centre crop
      at evaluation (0: none); eval_pad: zero padding at evaluation (e.g. 2 pixels to
      take Fashion-MNIST's 28x28 to 32x32).
    source_options: keyword arguments of ``load_source`` for this kind of source
      (``{ num_classes = 10, label_offset = -1 }`` for TFRecord shards; an option
      the kind does not take is refused when the data are loaded).
    train_examples / validation_examples / test_examples: only the first N examples
      of that split (``Source.take``; 0: all; an image folder: the first of each
      class in turn, since it lists its files class by class); the mean is computed
      on the training examples used. A short run, or a study's curve on a subset.
    mean: ``"per_pixel"`` (computed from the training split at start, the ResNet
      CIFAR recipe), ``"rgb"`` (computed mean RGB), ``"imagenet"`` (the published
      ImageNet mean RGB, no pass over the data) or ``"none"``.
    pca: ``"imagenet"`` (published eigen-decomposition), ``"compute"`` or ``"none"``.
    """

    source: str
    policy: str
    image_size: int
    train_split: str = "train"
    validation_split: str = "validation"
    test_split: str = ""
    validation_from_train: int = 0
    validation_fraction: float = 0.0
    data_dir: str = ""
    manual_dir: str = ""
    source_options: dict = dataclasses.field(default_factory=dict)
    train_examples: int = 0
    validation_examples: int = 0
    test_examples: int = 0
    policy_options: dict = dataclasses.field(default_factory=dict)
    eval_resize: int = 0
    eval_pad: int = 0
    mean: str = "imagenet"
    pca: str = "imagenet"
    cache: bool = False
    shuffle_buffer: int = 0


@dataclasses.dataclass
class OptimizerConfig:
    """``[optimizer]``: SGD with momentum and the papers' L2 weight decay.

    weight_decay: λ of the L2 penalty; the gradient of every decayed weight gains
      λ·w before momentum (see :class:`kerascnn.training.optimizers.L2SGD`).
    decay_exclude: substrings of variable paths that are not decayed.
    ema: Polyak averaging momentum of the weights (GoogLeNet; 0: off).
    finetune_lr_factor: fine-tuning with ``training.head_epochs > 0``: after the
      head epochs the whole network learns at this times the schedule's rate.
    """

    learning_rate: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    decay_exclude: list = dataclasses.field(default_factory=list)
    ema: float = 0.0
    finetune_lr_factor: float = 0.1


@dataclasses.dataclass
class ScheduleConfig:
    """``[schedule]``: how the learning rate changes.

    name: ``"plateau"`` (divide by ``1/factor`` when the validation top-1 error has
      not improved by ``min_delta`` for ``patience`` epochs: AlexNet, VGG, ResNet),
      ``"exponential"`` (multiply by ``decay_rate`` every ``decay_epochs`` epochs:
      GoogLeNet's -4 % every 8 epochs), ``"steps"`` (divide by 10 at each of
      ``boundaries``, in epochs: the ResNet CIFAR schedule) or ``"constant"``.
    min_lr: the plateau schedule stops dividing here (the papers divide three
      times: ``min_lr = learning_rate / 1000``).
    boundaries: epochs; ``steps``: where to divide by 10. ``plateau``: optional
      deadlines: from the k-th boundary on the rate is at most
      ``learning_rate / 10^k`` even if the validation error is still improving
      (for short runs: see ``pipelines/fashion_mnist.toml``).
    """

    name: str = "plateau"
    monitor: str = "val_top1_error"
    factor: float = 0.1
    patience: int = 5
    min_delta: float = 0.0
    cooldown: int = 0
    min_lr: float = 0.0
    decay_rate: float = 0.96
    decay_epochs: int = 8
    boundaries: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TrainingConfig:
    """``[training]``: the loop.

    batch_size: per replica; the global batch is ``batch_size * replicas``.
    steps_per_epoch: 0 = one pass over the training split; else the training data
      repeat and an "epoch" (one validation, one checkpoint, one chance for the
      plateau schedule) is this many steps.
    jit_compile: XLA for the model's train step (``"auto"``, ``"true"``,
      ``"false"``: Keras' ``compile(jit_compile=...)``).
    steps_per_execution: training steps run per call of the compiled step function
      (Keras' ``compile(steps_per_execution=...)``): less Python overhead per step
      for small networks; batch-level callbacks then see every n-th step. Must
      divide ``steps_per_epoch`` when that is set.
    head_epochs: fine-tuning (``model.weights``): epochs in which only the new
      classifier learns (the rest is held), before the whole network does.
    run_eagerly: Keras' ``compile(run_eagerly=True)``: no graph is traced (debugging
      a step; tiny networks, where tracing costs more than the steps).
    """

    epochs: int
    batch_size: int
    seed: int = 0
    steps_per_epoch: int = 0
    validation_steps: int = 0
    eval_batch_size: int = 0
    precision: str = "float32"
    jit_compile: str = "auto"
    steps_per_execution: int = 1
    init_from: str = ""
    checkpoint_best: bool = True
    head_epochs: int = 0
    run_eagerly: bool = False


@dataclasses.dataclass
class Recipe:
    """A whole recipe. ``name`` defaults to the file stem; ``paper`` and
    ``departures`` are free text (the paper's section, what we changed and why)."""

    model: ModelConfig
    data: DataConfig
    optimizer: OptimizerConfig
    training: TrainingConfig
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    name: str = ""
    description: str = ""
    paper: str = ""
    departures: str = ""
    path: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig,
    "training": TrainingConfig,
}
_CHOICES = {
    ("data", "mean"): ("per_pixel", "rgb", "imagenet", "none"),
    ("data", "pca"): ("imagenet", "compute", "none"),
    ("schedule", "name"): ("plateau", "exponential", "steps", "constant"),
    ("training", "precision"): ("float32", "mixed_float16", "mixed_bfloat16"),
    ("training", "jit_compile"): ("auto", "true", "false"),
}
_POSITIVE = {("training", "epochs"), ("training", "batch_size"), ("data", "image_size"),
             ("training", "steps_per_execution"), ("optimizer", "learning_rate"),
             ("schedule", "decay_rate"), ("schedule", "decay_epochs")}
_NON_NEGATIVE = {("training", "steps_per_epoch"), ("training", "validation_steps"),
                 ("training", "eval_batch_size"), ("training", "seed"),
                 ("training", "head_epochs"),
                 ("data", "validation_from_train"), ("data", "eval_resize"),
                 ("data", "eval_pad"), ("data", "shuffle_buffer"),
                 ("data", "train_examples"), ("data", "validation_examples"),
                 ("data", "test_examples"),
                 ("optimizer", "weight_decay"), ("schedule", "patience"),
                 ("schedule", "min_delta"), ("schedule", "cooldown"), ("schedule", "min_lr")}
# [low, high) ranges
_BELOW_ONE = {("optimizer", "momentum"): 0.0, ("optimizer", "ema"): 0.0,
              ("data", "validation_fraction"): 0.0}
_MONITORS = tuple(p + m for p in ("val_", "") for m in ("top1_error", "top5_error", "loss"))
# builder arguments that the trainer sets from the data
_MODEL_ARGS_FROM_DATA = ("include_top", "input_tensor", "input_shape", "classes")


def _type_ok(value, annotation) -> bool:
    kind = {"str": str, "int": int, "float": (int, float), "bool": bool,
            "list": list, "dict": dict}[annotation]
    if isinstance(value, bool) and annotation != "bool":
        return False
    return isinstance(value, kind)


def _section(cls, table, section, where):
    if not isinstance(table, dict):
        raise RecipeError(f"{where}: [{section}] must be a table. Received: {table!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            raise RecipeError(
                f"{where}: unknown key '{section}.{key}'; expected one of "
                f"{sorted(fields)}.")
    values = {}
    for name, field in fields.items():
        key = f"{section}.{name}"
        if name not in table:
            if field.default is _MISSING and field.default_factory is _MISSING:
                raise RecipeError(f"{where}: missing required key '{key}'.")
            continue
        value = table[name]
        if not _type_ok(value, field.type):
            raise RecipeError(
                f"{where}: '{key}' must be of type {field.type}. "
                f"Received: {key}={value!r} ({type(value).__name__})")
        if field.type == "float":
            value = float(value)
        choices = _CHOICES.get((section, name))
        if choices and value not in choices:
            raise RecipeError(
                f"{where}: '{key}' must be one of {list(choices)}. Received: {key}={value!r}")
        if (section, name) in _POSITIVE and value <= 0:
            raise RecipeError(f"{where}: '{key}' must be positive. Received: {key}={value!r}")
        if (section, name) in _NON_NEGATIVE and value < 0:
            raise RecipeError(f"{where}: '{key}' must be >= 0. Received: {key}={value!r}")
        if (section, name) in _BELOW_ONE and not 0.0 <= value < 1.0:
            raise RecipeError(f"{where}: '{key}' must be in [0, 1). Received: {key}={value!r}")
        values[name] = value
    return cls(**values)


def parse_recipe(document: dict, where: str = "<recipe>") -> Recipe:
    """A :class:`Recipe` from a parsed TOML document (``where`` names it in errors)."""
    top = {f.name: f for f in dataclasses.fields(Recipe)}
    values: dict[str, Any] = {}
    for key, value in document.items():
        if key in _SECTIONS:
            continue
        if key not in top or key == "path":
            raise RecipeError(
                f"{where}: unknown key '{key}'; expected sections {sorted(_SECTIONS)} "
                f"or keys ['departures', 'description', 'name', 'paper'].")
        if not isinstance(value, str):
            raise RecipeError(f"{where}: '{key}' must be of type str. Received: {key}={value!r}")
        values[key] = value
    for section, cls in _SECTIONS.items():
        if section not in document:
            if section == "schedule":
                continue
            raise RecipeError(f"{where}: missing required section [{section}].")
        values[section] = _section(cls, document[section], section, where)
    recipe = Recipe(**values, path=where)
    t = recipe.training
    if t.steps_per_epoch and t.steps_per_epoch % t.steps_per_execution:
        raise RecipeError(
            f"{where}: 'training.steps_per_execution' must divide 'training.steps_per_epoch'"
            f" ({t.steps_per_epoch}). Received: training.steps_per_execution="
            f"{t.steps_per_execution}")
    if not recipe.name:
        recipe.name = os.path.splitext(os.path.basename(where))[0]
    _check(recipe, where)
    return recipe


def _check(recipe: Recipe, where: str) -> None:
    """The checks that need more than one key, the model registry or the policies."""
    from kerascnn.export.serving_config import check_name

    try:
        check_name(recipe.name)
    except ValueError:
        raise RecipeError(
            f"{where}: 'name' must be a plain name of letters, digits, '_', '-', '.' "
            "(it names the run folder runs/<name> and the TF Serving model "
            "saved_models/<name>); set name = \"...\" in the recipe or with --set. "
            f"Received: name={recipe.name!r}") from None
    if recipe.training.seed >= 2**32:
        raise RecipeError(f"{where}: 'training.seed' must be < 2**32. "
                          f"Received: training.seed={recipe.training.seed!r}")
    s = recipe.schedule
    if not 0.0 < s.factor < 1.0:
        raise RecipeError(
            f"{where}: 'schedule.factor' must be in (0, 1). Received: schedule.factor={s.factor!r}")
    if s.monitor not in _MONITORS:
        raise RecipeError(f"{where}: 'schedule.monitor' must be one of {list(_MONITORS)}. "
                          f"Received: schedule.monitor={s.monitor!r}")
    if not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in s.boundaries) \
            or list(s.boundaries) != sorted(set(s.boundaries)):
        raise RecipeError(f"{where}: 'schedule.boundaries' must be increasing epochs > 0. "
                          f"Received: schedule.boundaries={s.boundaries!r}")
    if recipe.data.validation_fraction and recipe.data.validation_from_train:
        raise RecipeError(
            f"{where}: set 'data.validation_fraction' or 'data.validation_from_train', "
            f"not both. Received: data.validation_fraction="
            f"{recipe.data.validation_fraction!r}")
    _check_model(recipe.model, where)
    _check_weights(recipe, where)
    _check_policy(recipe.data, where)


def _check_model(model: ModelConfig, where: str) -> None:
    import inspect

    from kerascnn.applications import get_model_info

    try:
        info = get_model_info(model.name)
    except ValueError as err:
        raise RecipeError(f"{where}: 'model.name': {err}") from None
    params = inspect.signature(info.builder).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for key in model.options:
        if key in _MODEL_ARGS_FROM_DATA:
            raise RecipeError(
                f"{where}: 'model.options.{key}' is set by the trainer from the data; "
                f"remove it. Received: model.options.{key}={model.options[key]!r}")
        if key not in params and not takes_any:
            known = sorted(k for k in params if k not in _MODEL_ARGS_FROM_DATA)
            raise RecipeError(
                f"{where}: unknown key 'model.options.{key}' for {info.name}; expected "
                f"one of {known}. Received: model.options.{key}={model.options[key]!r}")


def _check_weights(recipe: Recipe, where: str) -> None:
    """``model.weights``: a set of the network whose architecture arguments the
    options do not contradict, or an existing file; the fine-tuning keys in range."""
    from kerascnn.applications import get_model_info
    from kerascnn.weights import sets

    m, o, t = recipe.model, recipe.optimizer, recipe.training
    if not 0.0 < o.finetune_lr_factor <= 1.0:
        raise RecipeError(f"{where}: 'optimizer.finetune_lr_factor' must be in (0, 1]. "
                          f"Received: optimizer.finetune_lr_factor={o.finetune_lr_factor!r}")
    if "weights" in m.options:
        raise RecipeError(f"{where}: pretrained weights go in 'model.weights', not "
                          f"'model.options.weights'. Received: model.options.weights="
                          f"{m.options['weights']!r}")
    if not m.weights:
        if t.head_epochs:
            raise RecipeError(f"{where}: 'training.head_epochs' needs 'model.weights' (a "
                              f"pretrained network). Received: training.head_epochs={t.head_epochs}")
        return
    network = get_model_info(m.name).name
    available = sets.weight_sets(network)
    if m.weights in available:
        ws = available[m.weights]
        for arg, needed in ws.requires.items():
            if arg in m.options and m.options[arg] != needed:
                raise RecipeError(
                    f"{where}: 'model.weights' = {m.weights!r} of {network} needs "
                    f"model.options.{arg} = {needed!r}. Received: model.options.{arg}="
                    f"{m.options[arg]!r}")
        return
    path = os.path.expanduser(m.weights)
    looks_like_path = os.sep in m.weights or "/" in m.weights or os.path.splitext(m.weights)[1]
    if looks_like_path or os.path.exists(path):
        if not os.path.isfile(path):
            raise RecipeError(f"{where}: 'model.weights': no such weights file. "
                              f"Received: model.weights={m.weights!r}")
        return
    raise RecipeError(f"{where}: 'model.weights': {sets.available_text(network)} Or give "
                      f"the path of a weights file. Received: model.weights={m.weights!r}")


def policy_options(data: DataConfig) -> dict:
    """The keyword arguments of ``get_policy(data.policy, ...)``: the recipe's
    ``policy_options``, with PCA lighting off when ``data.pca = "none"``."""
    options = dict(data.policy_options)
    if data.pca == "none":
        options["lighting"] = 0.0
    return options


def _check_policy(data: DataConfig, where: str) -> None:
    from kerascnn.data.policies import get_policy

    try:
        get_policy(data.policy, **policy_options(data))
    except (TypeError, ValueError) as err:
        key = "data.policy" if "Unknown policy." in str(err) else "data.policy_options"
        raise RecipeError(f"{where}: '{key}': {err}") from None


def _parse_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(document: dict, overrides, where: str = "--set") -> dict:
    """Applies ``["section.key=value", ...]`` (or ``{"section.key": value}``) to a
    TOML document (a copy is returned); the result is parsed strictly afterwards."""
    import copy

    document = copy.deepcopy(document)
    items = overrides.items() if isinstance(overrides, dict) else overrides
    for item in items:
        if isinstance(item, str):
            if "=" not in item:
                raise RecipeError(f"{where}: expected key=value. Received: {item!r}")
            key, text = item.split("=", 1)
            key, value = key.strip(), _parse_value(text.strip())
        else:
            key, value = item
        parts = key.split(".")
        if not all(parts):
            raise RecipeError(f"{where}: bad key. Received: {key!r}")
        table = document
        for part in parts[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise RecipeError(f"{where}: '{key}' does not name a table entry.")
        current = table.get(parts[-1])
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        table[parts[-1]] = value
    return document


def pipelines_dir():
    """The folder of the recipes: the package's ``kerascnn/pipelines`` (package data, read
    through :mod:`importlib.resources`, so a non-editable install has them too; the
    repository's ``pipelines/`` is a link to it), or ``$KERASCNN_PIPELINES``.

    The one place recipes are found: :func:`find_recipe`, :func:`list_recipes`, the
    registry's ``recipe`` stems and the command line all read through it."""
    env = os.environ.get("KERASCNN_PIPELINES")
    if env:
        return pathlib.Path(env)
    return importlib.resources.files("kerascnn").joinpath("pipelines")


def default_recipe_path():
    return pipelines_dir().joinpath("fashion_mnist.toml")


def list_recipes() -> list[str]:
    """The recipe names (file stems) under :func:`pipelines_dir`."""
    folder = pipelines_dir()
    if not folder.is_dir():
        return []
    return sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".toml"))


def find_recipe(name_or_path: str | None):
    """A recipe file from a path or a name under :func:`pipelines_dir` (None: the default)."""
    if not name_or_path:
        return default_recipe_path()
    if os.path.isfile(name_or_path):
        return pathlib.Path(name_or_path)
    folder = pipelines_dir()
    for name in (name_or_path, name_or_path + ".toml"):
        path = folder.joinpath(name)
        if path.is_file():
            return path
    raise RecipeError(
        f"No such recipe file or name under {folder}: expected one of "
        f"{list_recipes()}. Received: recipe={name_or_path!r}")


def load_recipe(name_or_path: str | None = None, overrides=()) -> Recipe:
    """Reads, overrides and strictly parses a recipe (None: ``fashion_mnist``)."""
    path = find_recipe(name_or_path)
    try:
        with path.open("rb") as f:
            document = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{path}: not valid TOML: {err}") from None
    if overrides:
        document = apply_overrides(document, overrides)
    return parse_recipe(document, where=str(path))

