"""Where the network looks: Grad-CAM, class activation maps, and the dense score map.

- :func:`grad_cam`: Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra, "Grad-CAM:
  Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017,
  eq. 1-2: ``alpha_k^c = 1/Z sum_ij d y^c / d A^k_ij`` and
  ``L^c = ReLU(sum_k alpha_k^c A^k)``, with ``y^c`` the class score *before the
  softmax* (the paper's choice). Our classifiers end in a softmax ``Dense``; the score
  is its pre-activation ``x @ W + b``, computed here from that layer's own variables.
  One forward pass of the network and one backward pass of the part above ``A`` per
  batch, compiled once per model and layer (``tf.function`` around a
  ``tf.GradientTape`` under TensorFlow, ``jax.jit`` of ``jax.grad`` over
  ``stateless_call`` under JAX), the same numbers on both.
- :func:`class_activation_map`: Zhou, Khosla, Lapedriza, Oliva & Torralba, "Learning
  Deep Features for Discriminative Localization", CVPR 2016, §2:
  ``M_c(x, y) = sum_k w_k^c f_k(x, y)``, for the networks whose head is global average
  pooling then one dense layer (GoogLeNet, the ResNets and plain nets, the CIFAR nets).
  As in the paper the bias is left out and the map is not rectified. For such a head,
  Grad-CAM at the pooled map is ``ReLU(CAM) / (h * w)`` (Grad-CAM §3.1).
- :func:`score_map`: VGG's dense evaluation (Simonyan & Zisserman 2015, §3.2): the
  fully-convolutional net of :func:`kerascnn.evaluation.to_fully_convolutional`
  applied to the whole image gives a class posterior at every location; its channel
  for the class is the map (AlexNet and VGG, whose flatten head has no CAM).

The feature map explained by default is the network's last convolutional map, found by
the layer names of ``kerascnn.applications``: the input of ``flatten`` (AlexNet, VGG)
or of the global average pooling ``avg_pool`` (GoogLeNet, ResNets, plain nets).
"""

from __future__ import annotations

import difflib
import weakref

import keras
import numpy as np
from keras import ops

__all__ = [
    "class_activation_map",
    "classifier_layer",
    "grad_cam",
    "last_conv_layer",
    "resolve_class",
    "score_map",
]

# The head of each family of kerascnn.applications: (the layer whose input is the last
# convolutional feature map, the classifier Dense).
_FLATTEN_HEAD = ("flatten", "fc8")
_GAP_HEAD = ("avg_pool", "predictions")
HEADS = {"alexnet": _FLATTEN_HEAD, "vgg": _FLATTEN_HEAD, "googlenet": _GAP_HEAD,
         "resnet": _GAP_HEAD, "plain": _GAP_HEAD, "resnet_cifar": _GAP_HEAD,
         "plain_cifar": _GAP_HEAD}

_PARTS = weakref.WeakKeyDictionary()  # model -> {(kind, layer): built sub-models}


# -- the model's parts ------------------------------------------------------------------
def _single(tensor):
    return tensor[0] if isinstance(tensor, (list, tuple)) else tensor


def _check_model(model):
    """The model's image input; ValueError for a model that does not take images."""
    inputs = getattr(model, "inputs", None)
    if not isinstance(model, keras.Model) or not inputs:
        raise ValueError("`model` must be a functional keras.Model (e.g. from "
                         f"kerascnn.applications). Received: model={model!r}")
    shape = tuple(inputs[0].shape)
    if len(inputs) != 1 or len(shape) != 4 or shape[-1] not in (1, 3):
        raise ValueError("`model` must take one batch of images (batch, height, width, "
                         f"1 or 3 channels). Received: input shape(s)="
                         f"{[tuple(t.shape) for t in inputs]}")
    return inputs[0]


def _layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _family(model):
    from kerascnn.applications.registry import get_model_info

    try:
        return get_model_info(model.name).family
    except ValueError:
        return None


def _head(model):
    """``(pool layer, classifier Dense)`` by the family's layer names; the family comes
    from the registry when the model has a registry name (the builders' default), else
    from which of the two heads' names the model has."""
    family = _family(model)
    candidates = [HEADS[family]] if family in HEADS else [_FLATTEN_HEAD, _GAP_HEAD]
    for pool_name, dense_name in candidates:
        pool, dense = _layer(model, pool_name), _layer(model, dense_name)
        if pool is not None and isinstance(dense, keras.layers.Dense):
            return pool, dense
    names = " or ".join(f"{p!r} -> ... -> {d!r}" for p, d in candidates)
    raise ValueError(f"Model {model.name!r} has no classifier head of kerascnn.applications "
                     f"(layers {names}); explain a model built with include_top=True.")


def classifier_layer(model):
    """The classifier ``Dense`` of a kerascnn.applications network (``fc8`` or
    ``predictions``)."""
    _check_model(model)
    return _head(model)[1]


def _producer(tensor):
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def last_conv_layer(model) -> str:
    """The name of the layer giving the last convolutional feature map: the input of
    ``flatten`` (AlexNet, VGG: ``pool5`` / ``block5_pool``) or of the global average
    pooling ``avg_pool`` (GoogLeNet: ``inception_5b_output``; ResNets: the last block's
    ``..._out``)."""
    _check_model(model)
    pool, _ = _head(model)
    layer = _producer(_single(pool.input))
    if layer is None:
        raise ValueError(f"Cannot find the layer feeding {pool.name!r} in {model.name!r}.")
    return layer.name


def _four_d(model):
    out = []
    for layer in model.layers:
        try:
            shape = _single(layer.output).shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4 and not isinstance(layer, keras.layers.InputLayer):
            out.append(layer.name)
    return out


def _feature_tensor(model, name):
    """The 4-D output of layer ``name``; one-line ValueError listing candidates."""
    layer = _layer(model, name) if isinstance(name, str) else None
    shape = None if layer is None else tuple(_single(layer.output).shape)
    if shape is not None and len(shape) == 4 and not isinstance(layer, keras.layers.InputLayer):
        return _single(layer.output)
    candidates = _four_d(model)
    close = difflib.get_close_matches(str(name), candidates, n=5, cutoff=0.5)
    listed = close or candidates[-6:]
    why = (f"has no layer named {name!r}" if layer is None else
           f"layer {name!r} has output shape {shape}, not a 4-D feature map")
    raise ValueError(
        f"`layer`: model {model.name!r} {why}; 4-D layers "
        f"({'close names' if close else 'the last ones'}): {', '.join(listed)} "
        f"(default: {last_conv_layer(model)}). Received: layer={name!r}")


def resolve_class(class_index, classes, class_names=None, n=None):
    """``class_index`` (None, an id, a class name, or one per image) checked against the
    ``classes`` of the model: a list of ids (or None for top-1). An id out of range or
    an unknown name is one ValueError with the close matches."""
    if class_index is None:
        return None
    many = isinstance(class_index, (list, tuple, np.ndarray))
    values = list(class_index) if many else [class_index]
    if many and n is not None and len(values) != n:
        raise ValueError(f"`class_index` has {len(values)} entries for {n} images. "
                         f"Received: class_index={class_index!r}")
    out = []
    for value in values:
        if isinstance(value, (str, np.str_)):
            text = str(value).strip()
            if text.isdigit():
                value = int(text)
            else:
                names = [str(c) for c in class_names or []]
                lower = [c.lower() for c in names]
                if text.lower() in lower:
                    out.append(lower.index(text.lower()))
                    continue
                close = difflib.get_close_matches(text.lower(), lower, n=5, cutoff=0.6)
                hint = (f" Close names: {', '.join(names[lower.index(c)] for c in close)}."
                        if close else "")
                known = "" if names else " The model has no class names: give a class id."
                raise ValueError(f"Unknown class name {text!r}.{hint}{known} "
                                 f"Received: class={text!r}")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"`class_index` must be a class id or name. Received: {value!r}")
        if not 0 <= int(value) < classes:
            raise ValueError(f"Class id {int(value)} is out of range: the model has "
                             f"{classes} classes (0-{classes - 1}). Received: class={value!r}")
        out.append(int(value))
    return out if many else out * (n or 1)


def _parts(model, kind, build):
    per_model = _PARTS.setdefault(model, {})
    if kind not in per_model:
        per_model[kind] = build()
    return per_model[kind]


def _gradcam_parts(model, layer):
    """``(trunk: image -> A, head: A [and image] -> classifier input, needs_image,
    classifier)``. The head takes the image too when some path reaches the classifier
    around ``A`` (a layer inside a residual block)."""
    image = _check_model(model)
    _, dense = _head(model)
    features = _feature_tensor(model, layer)

    def build():
        trunk = keras.Model(image, features, name=f"{model.name}_to_{layer}")
        target = _single(dense.input)
        try:
            head = keras.Model(features, target, name=f"{model.name}_from_{layer}")
            return trunk, head, False
        except ValueError:  # not a function of A alone
            head = keras.Model([image, features], target, name=f"{model.name}_from_{layer}")
            return trunk, head, True

    trunk, head, needs_image = _parts(model, ("gradcam", layer), build)
    return trunk, head, needs_image, dense


def _as_images(images, model):
    x = images
    if isinstance(x, (list, tuple)):
        if not len(x):
            raise ValueError("`images` is empty: give at least one image.")
        x = np.stack([np.asarray(i) for i in x])
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) == 3:
        x, shape = x[None], (1, *shape)
    if len(shape) != 4 or shape[0] == 0:
        raise ValueError("`images` must be a batch (N, height, width, channels) of N >= 1 "
                         f"preprocessed images. Received: shape={shape}")
    channels = model.inputs[0].shape[-1]
    if shape[-1] != channels:
        raise ValueError(f"`images` have {shape[-1]} channels; the model takes {channels}. "
                         f"Received: shape={shape}")
    return ops.convert_to_tensor(x, "float32")


def _logits(features, kernel, bias):
    """The classifier's pre-activation score ``x @ W + b`` in float32."""
    out = ops.matmul(ops.cast(features, "float32"), ops.cast(kernel, "float32"))
    return out if bias is None else out + ops.cast(bias, "float32")


def _score(logits, classes):
    """Sum over the batch of each image's class score; a class < 0 means the image's
    top-1 (chosen on values outside the gradient)."""
    top = ops.cast(ops.argmax(ops.stop_gradient(logits), axis=-1), "int32")
    chosen = ops.where(classes >= 0, classes, top)
    return ops.sum(logits * ops.one_hot(chosen, logits.shape[-1], dtype=logits.dtype))


def _cam_from(a, grads):
    """Eq. 1-2: ``alpha_k = 1/Z sum_ij dy/dA_ij^k``, ``ReLU(sum_k alpha_k A^k)``."""
    a, grads = ops.cast(a, "float32"), ops.cast(grads, "float32")
    alpha = ops.mean(grads, axis=(1, 2), keepdims=True)
    return ops.relu(ops.sum(alpha * a, axis=-1))


def _tf_step(trunk, head, needs_image, dense):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(x, classes):
        a = trunk(x, training=False)
        with tf.GradientTape() as tape:
            tape.watch(a)
            out = head([x, a] if needs_image else a, training=False)
            logits = _logits(out, dense.kernel, dense.bias if dense.use_bias else None)
            score = _score(logits, classes)
        return _cam_from(a, tape.gradient(score, a)), logits

    return step


def _jax_step(trunk, head, needs_image, dense):
    import jax

    @jax.jit
    def compiled(trunk_vars, head_vars, dense_vars, x, classes):
        a, _ = trunk.stateless_call(*trunk_vars, x, training=False)

        def score_of(a):
            out, _ = head.stateless_call(*head_vars, [x, a] if needs_image else a,
                                         training=False)
            logits = _logits(out, *dense_vars)
            return _score(logits, classes), logits

        grads, logits = jax.grad(score_of, has_aux=True)(a)
        return _cam_from(a, grads), logits

    def values(variables):
        return [v.value for v in variables]

    def step(x, classes):
        return compiled(
            (values(trunk.trainable_variables), values(trunk.non_trainable_variables)),
            (values(head.trainable_variables), values(head.non_trainable_variables)),
            (dense.kernel.value, dense.bias.value if dense.use_bias else None), x, classes)

    return step


def _gradcam_step(model, layer):
    """One compiled step ``(images, classes) -> (maps, logits)``: a forward pass to
    ``A``, the head above it, and its backward pass, under the backend's autodiff."""
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise ValueError(f"grad_cam runs under the tensorflow or jax Keras backend. "
                         f"Received: backend={backend!r}")
    trunk, head, needs_image, dense = _gradcam_parts(model, layer)
    make = _tf_step if backend == "tensorflow" else _jax_step
    return _parts(model, ("gradcam_step", layer),
                  lambda: make(trunk, head, needs_image, dense)), dense


def _grad_cam(model, images, class_index=None, layer=None, class_names=None):
    """``(maps (N, h, w) float32, logits (N, classes) float32, layer name)``."""
    _check_model(model)
    layer = last_conv_layer(model) if layer is None else layer
    step, dense = _gradcam_step(model, layer)
    x = _as_images(images, model)
    n = int(x.shape[0])
    classes = resolve_class(class_index, dense.units, class_names, n=n)
    classes = ops.convert_to_tensor(np.asarray(classes if classes is not None else [-1] * n,
                                               np.int32))
    maps, logits = step(x, classes)
    return (np.asarray(ops.convert_to_numpy(maps), np.float32),
            np.asarray(ops.convert_to_numpy(logits), np.float32), layer)


def grad_cam(model, images, class_index=None, layer=None, class_names=None) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., ICCV 2017, eq. 1-2) of a batch of images.

    Args:
        model: a classifier of ``kerascnn.applications`` (``include_top=True``).
        images: ``(N, H, W, C)`` (or one ``(H, W, C)``) images as the model takes them
            (after preprocessing: see :func:`kerascnn.explain.explain_images` for raw
            images).
        class_index: the class explained: None (each image's top-1), an id or class
            name for every image, or one per image.
        layer: the name of a layer with a 4-D output (default: the last convolutional
            feature map, :func:`last_conv_layer`).
        class_names: the names ``class_index`` may use.

    Returns:
        ``(N, h, w)`` float32, >= 0, at the layer's resolution (not normalised).
    """
    return _grad_cam(model, images, class_index, layer, class_names)[0]


def _gap_head(model):
    """``(pool, dense)`` for a global-average-pooling -> Dense head, else ValueError."""
    _check_model(model)
    pool, dense = _head(model)
    tensor = _single(dense.input)
    while isinstance(_producer(tensor), keras.layers.Dropout):  # identity at inference
        tensor = _single(_producer(tensor).input)
    if not isinstance(pool, keras.layers.GlobalAveragePooling2D) or _producer(tensor) is not pool:
        raise ValueError(
            f"class_activation_map needs a network whose head is global average pooling "
            f"then one dense layer (GoogLeNet, ResNets, the CIFAR nets); {model.name!r} has "
            f"{pool.name!r} -> ... -> {dense.name!r}. Use method='gradcam' (grad_cam) or, "
            "for AlexNet/VGG, method='score_map' (the dense evaluation's class score map).")
    return pool, dense


def _cam(model, images, class_index=None, class_names=None):
    pool, dense = _gap_head(model)
    image = _check_model(model)
    features = _single(pool.input)
    net = _parts(model, ("cam",), lambda: keras.Model(image, [features, _single(dense.input)]))
    x = _as_images(images, model)
    classes = resolve_class(class_index, dense.units, class_names, n=int(x.shape[0]))
    a, pooled = net(x, training=False)
    logits = _logits(pooled, dense.kernel, dense.bias if dense.use_bias else None)
    logits = np.asarray(ops.convert_to_numpy(logits), np.float32)
    chosen = np.argmax(logits, -1) if classes is None else np.asarray(classes)
    w = np.asarray(ops.convert_to_numpy(ops.cast(dense.kernel, "float32")))  # (K, classes)
    a = np.asarray(ops.convert_to_numpy(ops.cast(a, "float32")))
    maps = np.einsum("nhwk,kn->nhw", a, w[:, chosen])
    return maps.astype(np.float32), logits, _producer(features).name


def class_activation_map(model, images, class_index=None, class_names=None) -> np.ndarray:
    """The class activation map (Zhou et al., CVPR 2016): ``sum_k w_k^c A_k`` from the
    classifier's weights ``W[:, c]`` and the map ``A`` that the global average pooling
    reads; no bias, not rectified (as in the paper). Arguments as :func:`grad_cam`.

    Returns ``(N, h, w)`` float32. A network whose head is not global average pooling
    then one dense layer (AlexNet, VGG) raises ValueError naming the alternatives.
    """
    return _cam(model, images, class_index, class_names)[0]


def _score_map(model, images, class_index=None, class_names=None):
    from kerascnn.evaluation.fully_convolutional import has_convertible_head, to_fully_convolutional

    _check_model(model)
    if not has_convertible_head(model):
        raise ValueError(
            f"score_map needs AlexNet's or VGG's fully-connected head (flatten, fc6, fc7, "
            f"fc8) to run it as convolutions; {model.name!r} has none. Use "
            "method='cam' (class_activation_map) or method='gradcam'.")
    fcn = _parts(model, ("score_map",), lambda: to_fully_convolutional(model, average=False))
    x = _as_images(images, model)
    size = tuple(model.inputs[0].shape[1:3])
    if x.shape[1] < size[0] or x.shape[2] < size[1]:
        raise ValueError(f"score_map needs images of at least the training size {size}. "
                         f"Received: images of shape {tuple(x.shape)}")
    dense = model.get_layer("fc8")
    classes = resolve_class(class_index, dense.units, class_names, n=int(x.shape[0]))
    posteriors = np.asarray(ops.convert_to_numpy(fcn(x, training=False)), np.float32)
    average = posteriors.mean(axis=(1, 2))  # the dense evaluation's prediction
    chosen = np.argmax(average, -1) if classes is None else np.asarray(classes)
    maps = np.take_along_axis(posteriors, chosen[:, None, None, None], axis=-1)[..., 0]
    return maps, average, "fc8_conv"


def score_map(model, images, class_index=None, class_names=None) -> np.ndarray:
    """AlexNet's or VGG's class score map: the fully-convolutional network of
    :func:`kerascnn.evaluation.to_fully_convolutional` (fc6 as a 7x7 / 6x6 conv, fc7 and
    fc8 as 1x1 convs, the same variables) applied to whole images of any size at least
    the training size; the map is the class's posterior at each location (fc8's softmax,
    as the dense evaluation averages it). The default class is the top-1 of the averaged
    map (the dense evaluation's answer). Returns ``(N, h, w)`` float32 in [0, 1]."""
    return _score_map(model, images, class_index, class_names)[0]
