"""Figure 7 of He et al. (2016): the standard deviation of the layer responses.

"The responses are the outputs of each 3×3 layer, after BN and before other
nonlinearity (ReLU/addition)" (§4.2). In our builders that is the output of every
batch-norm layer whose input is a 3×3 convolution (``conv1_bn``,
``conv{s}_block{i}_1_bn``, ``conv{s}_block{i}_2_bn``), in the order of the network;
the 1×1 projections of shortcut options B/C are not responses.

The paper does not say over which axes its std is taken. Ours: per channel, over all
images and positions of the measured set, in inference mode (BN with its moving
statistics, as a trained net is used), then the mean over the channels. Taken over
all elements at once it would also count the differences between the channels'
means (BN's β), which is not how far a layer's output moves.
"""

from __future__ import annotations

import numpy as np

__all__ = ["response_layers", "measure_responses", "measure_runs"]


def _producer(tensor):
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def response_layers(model) -> list[str]:
    """Names of the batch-norm layers fed by a 3×3 convolution, in model order."""
    import keras

    names = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        conv = _producer(layer.input)
        if isinstance(conv, keras.layers.Conv2D) and tuple(conv.kernel_size) == (3, 3):
            names.append(layer.name)
    return names


def measure_responses(model, images, *, layers=None, batch_size=250) -> dict:
    """Per-layer response std of ``model`` on ``images``.

    Args:
      model: a trained functional model (a CIFAR ResNet or plain net).
      images: a float array ``(N, H, W, C)`` already preprocessed as for the model
        (mean subtracted), or an iterable of such batches, or of ``(images, labels)``.
      layers: the BN layer names to measure (default :func:`response_layers`).
      batch_size: batch size when ``images`` is one array.

    Returns:
      ``{"layers": [names], "std": [float per layer], "sorted": [descending],
      "examples": N}``.
    """
    import keras

    layers = list(layers or response_layers(model))
    if not layers:
        raise ValueError(f"{model.name} has no batch-norm layer after a 3x3 conv. "
                         f"Received: model={model.name!r}")
    probe = keras.Model(model.inputs[0], [model.get_layer(n).output for n in layers])
    if isinstance(images, np.ndarray):
        batches = (images[i:i + batch_size] for i in range(0, len(images), batch_size))
    else:
        batches = images
    count = [0] * len(layers)
    mean = [None] * len(layers)
    m2 = [None] * len(layers)
    examples = 0
    for batch in batches:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        outs = probe(batch, training=False)
        if len(layers) == 1:
            outs = [outs]
        examples += int(np.shape(batch)[0])
        for j, out in enumerate(outs):
            x = np.asarray(keras.ops.convert_to_numpy(out), np.float64)
            x = x.reshape(-1, x.shape[-1])
            n_b = x.shape[0]
            mean_b = x.mean(axis=0)
            m2_b = ((x - mean_b) ** 2).sum(axis=0)
            n_a = count[j]
            if n_a == 0:
                mean[j], m2[j] = mean_b, m2_b
            else:  # Chan et al.'s pairwise update, per channel
                delta = mean_b - mean[j]
                total = n_a + n_b
                mean[j] = mean[j] + delta * n_b / total
                m2[j] = m2[j] + m2_b + delta ** 2 * n_a * n_b / total
            count[j] = n_a + n_b
    if not examples:
        raise ValueError("`images` is empty. Received: 0 images")
    std = [float(np.mean(np.sqrt(m2[j] / count[j]))) for j in range(len(layers))]
    return {"layers": layers, "std": std, "sorted": sorted(std, reverse=True),
            "examples": examples}


def measure_runs(study, runs, recipe_of, log) -> dict:
    """Figure 7's measurement of each network of ``study`` (seed 0 of ``runs``: its
    ``checkpoints/last.keras``) on the curve's test subset, preprocessed as its run
    evaluates it (``recipe_of(net, seed)``: the run's recipe); ``{key: responses}``."""
    import os

    from kerascnn.evaluation.loading import load_keras_model
    from kerascnn.training import experiment

    images, measured = None, {}
    for net in study.networks:
        folder = runs[net.key][0]["run_dir"]
        if images is None:
            exp = experiment.assemble(recipe_of(net, 0), folder)
            images = np.concatenate([x for x, _ in
                                     exp.eval_dataset(exp.val_source).as_numpy_iterator()])
        model = load_keras_model(os.path.join(folder, "checkpoints", "last.keras"))
        measured[net.key] = measure_responses(model, images)
        s = measured[net.key]["std"]
        log(f"responses {net.key}: {len(s)} 3x3 layers, std mean {np.mean(s):.3f} "
            f"(min {np.min(s):.3f}, max {np.max(s):.3f}) on {len(images)} test images")
        del model
    return measured
