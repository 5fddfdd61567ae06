"""tinyrun's tiny recipe with a shallower network, for the tests where the training
machinery or the distribution is what is tested, not the network: AlexNet's Figure 1
net (``alexnet_fig1``: conv1-conv3 and ``predictions``, four layers with weights) at
width 8 instead of ResNet-20 (~65 layers). Tracing (tf.function) and XLA's compile
time grow with the number of layers, not with their width."""

SHALLOW_NET = '[model]\nname = "alexnet_fig1"\noptions = { width = 8 }\n'
SHALLOW_LAYERS = ("conv1", "conv2", "conv3", "predictions")


def shallow(text):
    """The recipe ``text`` (tinyrun.TINY, formatted) with SHALLOW_NET as its model."""
    start, end = text.index("[model]"), text.index("[data]")
    assert "resnet20" in text[start:end], text[start:end]
    return text[:start] + SHALLOW_NET + text[end:]


def shallow_file(path):
    """Rewrites the recipe file at ``path`` with :func:`shallow`; returns ``path``."""
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(shallow(text))
    return path
