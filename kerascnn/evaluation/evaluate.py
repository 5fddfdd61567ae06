"""Run the papers' test protocols over a data source: posteriors averaged over views,
scales and (fusion) networks; streaming top-1/top-5 error.

Every image's views go through the network as one batch (``(B, V, h, w, C)`` reshaped to
``(B*V, h, w, C)``), images ``batch_size`` at a time; the network is called with
``training=False`` only, so neither weights nor batch-norm statistics change. All checks
(protocol sizes, a dense-capable network) run before the first image is read.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from kerascnn.evaluation.fully_convolutional import has_convertible_head, to_fully_convolutional
from kerascnn.evaluation.metrics import TopKError
from kerascnn.data.preprocessing import Preprocessing, subtract_mean
from kerascnn.data._graph import plain
from kerascnn.evaluation.protocols import TABLE, make_protocol
from kerascnn.evaluation.report import EvaluationReport, ProtocolResult, paper_result

__all__ = ["Member", "evaluate", "posteriors"]

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Member:
    """One network of an evaluation (several for fusion), with its own preprocessing.

    Attributes:
        model: a ``keras.Model`` (or any callable ``images -> posteriors`` with
            ``input_shape``, e.g. a loaded SavedModel wrapper).
        preprocessing: the network's
            :class:`~kerascnn.data.preprocessing.Preprocessing`: its ``image_size`` is
            the crop size, its ``resize`` the default shorter side of
            ``center``/``10crop``, its ``pad`` and ``mean`` (None: no subtraction) those
            of every view; ``center`` is exactly its view. None: the one the model
            carries (:func:`kerascnn.data.carried.resolve`: a run's model, a weight
            set's), else the resolver's one fallback (said on stderr); a SavedModel
            wrapper: its export's own.
        name: registry name for the paper's figures (default: the model's name).
        from_logits: whether the model outputs logits (default: guessed from the last
            layer's activation; softmax is applied to logits).
    """

    model: object
    preprocessing: Preprocessing | None = None
    name: str | None = None
    from_logits: bool | None = None

    def resolved_preprocessing(self) -> Preprocessing:
        """The :class:`Preprocessing` this member is evaluated with."""
        if self.preprocessing is None:
            own = getattr(self.model, "evaluation_preprocessing", None)
            if own is not None:  # a SavedModel: its signature subtracts its own mean
                return own()
            from kerascnn.data.carried import resolve

            return resolve(self.model, prog="kerascnn evaluate").preprocessing
        if not isinstance(self.preprocessing, Preprocessing):
            raise ValueError("`preprocessing` must be a kerascnn Preprocessing. "
                             f"Received: preprocessing={self.preprocessing!r}")
        return self.preprocessing


def _as_members(models, preprocessing):
    """Members with their preprocessing resolved once (the fallback is said once)."""
    if isinstance(models, (keras.Model, Member)) or not isinstance(models, Sequence):
        models = [models]
    if not models:
        raise ValueError("`model` must be a model or a non-empty list of models. Received: model=[]")
    out = []
    for m in models:
        if not isinstance(m, Member):
            m = Member(m, preprocessing=preprocessing)
        out.append(dataclasses.replace(m, preprocessing=m.resolved_preprocessing()))
    return out


def _outputs_logits(model):
    if not isinstance(model, keras.Model):
        return False  # a wrapped SavedModel signature returns probabilities
    last = model.layers[-1] if model.layers else None
    activation = getattr(last, "activation", None)
    if activation is None and last is not None and type(last).__name__ == "Softmax":
        return False
    name = getattr(activation, "__name__", "")
    return name != "softmax"


def _family(name):
    """The registry family of ``name`` (the paper defaults), None for other names."""
    from kerascnn.applications import get_model_info

    try:
        return get_model_info(name).family
    except ValueError:  # not a registry name: no paper defaults
        return None


def _flexible(model):
    """The same layers re-applied to an input of any spatial size."""
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or not model.inputs:
        return model
    inputs = keras.Input((None, None, model.inputs[0].shape[-1]), name="image")
    try:
        return keras.models.clone_model(model, input_tensors=inputs, clone_function=lambda l: l)
    except ValueError:  # not a functional graph Keras can re-apply: _probe_dense says so
        return model


_STEPS = weakref.WeakKeyDictionary()


def _forward(net, logits, x):
    """``(B, V, h, w, C)`` views -> ``(B, classes)`` posteriors averaged over the V views,
    all B*V views in one call of the network (inference mode)."""
    shape = tf.shape(x)
    flat = tf.reshape(x, tf.concat([[-1], shape[2:]], 0))
    y = tf.cast(net(flat, training=False), tf.float32)
    if logits:
        y = tf.nn.softmax(y, axis=-1)
    y = tf.reshape(y, tf.stack([shape[0], shape[1], -1]))
    return tf.reduce_mean(y, axis=1)


def _step(net, logits, channels):
    """One compiled step per network (reused across protocols and calls: no retracing)."""
    try:
        steps = _STEPS.setdefault(net, {})
    except TypeError:  # not weak-referenceable
        steps = {}
    key = (bool(logits), int(channels))
    if key not in steps and keras.backend.backend() != "tensorflow":  # no tf.function of JAX
        from kerascnn._backend import eager_views_forward

        steps[key] = eager_views_forward(net, bool(logits))
    if key not in steps:
        spec = tf.TensorSpec([None, None, None, None, channels], tf.float32)
        steps[key] = tf.function(functools.partial(_forward, net, bool(logits)), input_signature=[spec])
    return steps[key]


class _Runner:
    """Per member: the protocol's view functions and the compiled forward passes."""

    def __init__(self, member, protocol_name, options):
        self.member = member
        self.model = member.model
        name = member.name or getattr(self.model, "name", None)
        self.name = name
        family = _family(name) if name else None
        prep = member.resolved_preprocessing()
        crop = prep.image_size
        self.channels = prep.channels
        self.mean = prep.mean
        need_dense = TABLE[protocol_name].dense
        options = dict(options)
        if "resize" not in options:
            options["resize"] = prep.resize  # the center view is the network's own
        self.logits = _outputs_logits(self.model) if member.from_logits is None else bool(member.from_logits)
        min_dense = None
        self.dense_model = None
        if need_dense:
            if has_convertible_head(self.model):
                self.dense_model = to_fully_convolutional(self.model)
                min_dense = max(crop)
            else:
                self.dense_model = _flexible(self.model)
        self.protocol = make_protocol(protocol_name, crop_size=crop, family=family, min_dense_size=min_dense,
                                      pad=prep.pad, transform=prep.transform(), **options)
        if self.dense_model is not None:
            self._probe_dense()
        self._crop_step = _step(self.model, self.logits, self.channels)
        if self.dense_model is not None:
            self._dense_step = _step(self.dense_model, self.logits, self.channels)

    def _probe_dense(self):
        q = max(self.protocol.crop_size) + 32
        try:
            out = self.dense_model(tf.zeros([1, q, q + 8, self.channels]), training=False)
            ok = len(out.shape) == 2  # a tf.TensorShape or (under JAX) a tuple
        except (ValueError, tf.errors.InvalidArgumentError):  # fixed-size layers (Flatten + Dense)
            ok = False
        if not ok:
            raise ValueError(
                f"Protocol {self.protocol.name!r} needs a network that runs on whole images: "
                "an AlexNet/VGG head (layers 'flatten', 'fc6', 'fc7', 'fc8') to convert, or "
                f"global pooling. Received: model={self.name!r}"
            )

    # -- input pipeline ------------------------------------------------------------
    def views(self, image):
        """The protocol's views of one decoded image, the mean subtracted as the
        preprocessing says (:func:`~kerascnn.data.preprocessing.subtract_mean`)."""
        out = {}
        if self.protocol.uses_crops:
            out["crops"] = subtract_mean(self.protocol.crops(image), self.mean)
        if self.protocol.uses_dense:
            out["dense"] = tuple(subtract_mean(v, self.mean) for v in self.protocol.dense(image))
        return out

    def posteriors(self, batch):
        parts = []
        if "crops" in batch:
            parts.append(self._crop_step(batch["crops"]))
        if "dense" in batch:
            dense = [self._dense_step(v) for v in batch["dense"]]
            parts.append(tf.add_n(dense) / len(dense))
        return tf.add_n(parts) / len(parts)


def _source_dataset(source, split, channels):
    """(dataset of (uint8 image, label), num_examples, name, source)."""
    from kerascnn.data import decode_image, load_source

    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        source = load_source(source, split)
    if isinstance(source, tf.data.Dataset):
        return source, None, "dataset"
    ds = source.dataset
    if source.encoded:
        ds = ds.map(plain(lambda x, y: (decode_image(x, channels), y)),
                    num_parallel_calls=AUTOTUNE)
    return ds, source.num_examples, source.name


def _fixed_size(ds):
    return ds.element_spec[0].shape.is_fully_defined()


def _prepare(model, source, protocols, split, batch_size, preprocessing, max_examples,
             protocol_options):
    """Every check, before any image is read; the runners per protocol and the source's
    ``(dataset, num_examples, name)``."""
    for p in protocols:
        if p not in TABLE:
            raise ValueError(f"Unknown protocol. Expected one of {list(TABLE)}. Received: protocol={p!r}")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size}")
    old = sorted({"mean", "pad", "crop_size"} & set(protocol_options))
    if old:
        raise ValueError(f"Pass the preprocessing as `preprocessing=Preprocessing(...)` (its "
                         f"image_size, pad and mean). Received: {', '.join(old)}")
    members = _as_members(model, preprocessing)
    # Everything that can be wrong is found here, before any image is read.
    runners = {p: [_Runner(m, p, protocol_options) for m in members] for p in protocols}
    channels = runners[protocols[0]][0].channels
    raw, num_examples, source_name = _source_dataset(source, split, channels)
    if max_examples is not None:
        raw = raw.take(int(max_examples))
        num_examples = int(max_examples) if num_examples is None else min(num_examples, int(max_examples))
    return runners, raw, num_examples, source_name


def _fused_batches(rs, raw, batch_size):
    """``(posteriors (B, classes) averaged over the networks rs, labels)`` per step."""
    per_image = rs[0].protocol.uses_dense and not _fixed_size(raw)
    step_batch = 1 if per_image else int(batch_size)
    ds = raw.map(plain(lambda x, y, rs=rs: (tuple(r.views(x) for r in rs), y)),
                 num_parallel_calls=AUTOTUNE)
    ds = ds.batch(step_batch).prefetch(AUTOTUNE)
    for batch, labels in ds:
        probs = [r.posteriors(b) for r, b in zip(rs, batch)]
        yield tf.add_n(probs) / len(probs), labels


def posteriors(
    model,
    source,
    protocol="center",
    *,
    split="test",
    batch_size=32,
    preprocessing=None,
    max_examples=None,
    **protocol_options,
):
    """Each image's posteriors under one protocol, for per-image comparisons of protocols
    (paired tests on the same images): the numbers :func:`evaluate` reduces to errors.

    Args: as :func:`evaluate`'s, with one protocol name.

    Returns:
        ``(probabilities, labels)``: float32 ``(N, classes)`` (softmax averaged over the
        protocol's views, scales and the fused networks) and int ``(N,)``, in the
        source's order.
    """
    if not isinstance(protocol, str):
        raise ValueError(f"`protocol` must be one protocol name. Received: protocol={protocol!r}")
    runners, raw, _, source_name = _prepare(
        model, source, [protocol], split, batch_size, preprocessing, max_examples, protocol_options)
    probs, labels = [], []
    for fused, y in _fused_batches(runners[protocol], raw, batch_size):
        probs.append(np.asarray(fused, np.float32))
        labels.append(np.asarray(y).reshape(-1).astype(np.int64))
    if not probs:
        raise ValueError(f"The source {source_name!r} gave no images. Received: source={source!r}")
    return np.concatenate(probs), np.concatenate(labels)


def evaluate(
    model,
    source,
    protocol="center",
    *,
    split="test",
    batch_size=32,
    preprocessing=None,
    max_examples=None,
    verbose=1,
    **protocol_options,
) -> EvaluationReport:
    """Evaluate one network, or several fused, with the papers' test protocols.

    Args:
        model: a ``keras.Model``, a :class:`Member` (a model with its own preprocessing),
            or a list of them: their softmax posteriors are averaged (fusion).
        source: a ``kerascnn.data.Source``, a spec for ``kerascnn.data.load_source``
            (``"fashion_mnist"``, ``"tfds:imagenet2012"``, a folder, ``"tfrecord:..."``),
            or a ``tf.data.Dataset`` of ``(uint8 image (H, W, C), label)``.
        protocol: a name in the protocol table (``protocols.TABLE``) or a list of names
            (one row each).
        split: split of a ``source`` given as a spec.
        batch_size: images per step (each gives ``num_views`` network inputs). Dense
            evaluation of images of different sizes (ImageNet) runs one image (and its
            mirror) per step, as the network input then has that image's size.
        preprocessing: the :class:`~kerascnn.data.preprocessing.Preprocessing` of models
            not given as :class:`Member`; None: each model's own (see :class:`Member`).
        max_examples: evaluate only the first N images.
        verbose: 0 silent, 1 progress bar and the table.
        **protocol_options: ``resize``, ``scales``, ``dense_scales``, ``train_scale``,
            ``square``, ``grid``, ``flip`` (see ``make_protocol``); defaults per family.

    Returns:
        An :class:`EvaluationReport` (top-1/top-5 error per protocol, the paper's figures).
    """
    protocols = [protocol] if isinstance(protocol, str) else list(protocol)
    runners, raw, num_examples, source_name = _prepare(
        model, source, protocols, split, batch_size, preprocessing, max_examples, protocol_options)

    results = []
    for p in protocols:
        rs = runners[p]
        top1, top5 = TopKError(1), TopKError(5)
        bar = keras.utils.Progbar(num_examples, unit_name="image") if verbose else None
        if verbose:
            print(f"{rs[0].protocol.describe()}" + (f", {len(rs)} networks fused" if len(rs) > 1 else ""))
        seen = 0
        for fused, labels in _fused_batches(rs, raw, batch_size):
            top1.update_state(labels, fused)
            top5.update_state(labels, fused)
            seen += int(labels.shape[0])
            if bar is not None:
                bar.update(seen, values=[("top1_err", float(top1.result())), ("top5_err", float(top5.result()))])
        if seen == 0:
            raise ValueError(f"The source {source_name!r} gave no images. Received: source={source!r}")
        names = [r.name for r in rs]
        paper = paper_result(names[0], p) if len(rs) == 1 else None
        results.append(
            ProtocolResult(
                protocol=p,
                top1=float(top1.result()),
                top5=float(top5.result()),
                examples=seen,
                views=rs[0].protocol.num_views,
                settings=rs[0].protocol.describe(),
                paper_top1=None if paper is None else paper.get("top1"),
                paper_top5=None if paper is None else paper.get("top5"),
                paper_dataset=None if paper is None else paper.get("dataset"),
            )
        )
    report = EvaluationReport(models=[r.name for r in runners[protocols[0]]], source=source_name, split=split, results=results)
    if verbose:
        print(report.to_text())
    return report
