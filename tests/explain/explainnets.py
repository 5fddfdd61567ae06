"""Small networks and photos shared by the explain tests (imported by file name: tests/
has no packages)."""

import os

import keras
import numpy as np


def photo(name):
    """A real photo as uint8 RGB: matplotlib's grace_hopper.jpg (512x600) or
    scikit-learn's china.jpg (640x427)."""
    from PIL import Image

    if name == "grace_hopper":
        import matplotlib

        path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    else:
        import sklearn

        path = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images", f"{name}.jpg")
    return path, np.asarray(Image.open(path).convert("RGB"))


def resnet(size=16, classes=3, seed=0):
    """The CIFAR ResNet-20 of kerascnn.applications (GAP -> Dense head), tiny input."""
    from kerascnn.applications import get_model

    keras.utils.set_random_seed(seed)
    return get_model("resnet20", input_shape=(size, size, 3), classes=classes)


def fc_net(size=32, classes=5, seed=0, channels=3):
    """An AlexNet/VGG-style net with the builders' head names: pool5 -> flatten -> fc6 ->
    drop6 -> fc7 -> drop7 -> fc8 (softmax)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, channels), name="input")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool5")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(16, activation="relu", name="fc6")(x)
    x = keras.layers.Dropout(0.5, name="drop6")(x)
    x = keras.layers.Dense(16, activation="relu", name="fc7")(x)
    x = keras.layers.Dropout(0.5, name="drop7")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="fc8")(x)
    return keras.Model(inputs, outputs, name="vgg_standin")


def blob_data(n, size=16, seed=0):
    """Images with a learnable signal: class 1 has a bright 5x5 square at a random place
    on a noisy background, class 0 a dark one, class 2 none. float32 0-255 minus 128."""
    rng = np.random.default_rng(seed)
    x = rng.normal(128, 20, (n, size, size, 3)).clip(0, 255)
    y = rng.integers(0, 3, n)
    for i in range(n):
        r, c = rng.integers(0, size - 5, 2)
        if y[i] < 2:
            x[i, r:r + 5, c:c + 5] = 250 if y[i] == 1 else 5
    return (x - 128).astype(np.float32), y


def tiny_resnet(size=16, classes=3, width=8, seed=0):
    """A CIFAR-style residual net in small: conv-BN-ReLU, one basic block (two 3x3
    convs, identity shortcut), global average pooling ``avg_pool`` and the classifier
    ``predictions``: the head names of kerascnn.applications' ResNets."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="input")
    x = keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name="conv1_conv")(inputs)
    x = keras.layers.BatchNormalization(name="conv1_bn")(x)
    x = keras.layers.ReLU(name="conv1_relu")(x)
    y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name="block1_1_conv")(x)
    y = keras.layers.BatchNormalization(name="block1_1_bn")(y)
    y = keras.layers.ReLU(name="block1_1_relu")(y)
    y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name="block1_2_conv")(y)
    y = keras.layers.BatchNormalization(name="block1_2_bn")(y)
    x = keras.layers.Add(name="block1_add")([x, y])
    x = keras.layers.ReLU(name="block1_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_resnet")


def trained_resnet(steps=40, size=16, seed=0):
    """:func:`tiny_resnet` trained for a few steps on :func:`blob_data`; returns
    ``(model, history)``."""
    model = tiny_resnet(size, 3, seed=seed)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y = blob_data(16 * steps, size, seed)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    return model, history
