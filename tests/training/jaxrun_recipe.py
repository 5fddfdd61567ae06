"""tinyrun's tiny recipe with another network: SHALLOW_NET for the tests where the
training machinery or the distribution is what is tested, not the network (AlexNet's
Figure 1 net, ``alexnet_fig1``: conv1-conv3 and ``predictions``, four layers with
weights, at width 8; tracing and XLA's compile time grow with the number of layers, not
with their width), RESNET20_NET where batch norm and depth matter."""

SHALLOW_NET = '[model]\nname = "alexnet_fig1"\noptions = { width = 8 }\n'
SHALLOW_LAYERS = ("conv1", "conv2", "conv3", "predictions")


# ResNet-20 (option A), for a test that needs batch norm and the depth's numerics (the
# bf16 agreement of JAX and TensorFlow in test_jax_backend).
RESNET20_NET = '[model]\nname = "resnet20"\noptions = { shortcut = "A" }\n'


def with_network(text, section):
    """The recipe ``text`` (tinyrun.TINY, formatted) with its [model] section replaced
    by ``section``."""
    start, end = text.index("[model]"), text.index("[data]")
    return text[:start] + section + text[end:]


def shallow(text):
    """The recipe ``text`` (tinyrun.TINY, formatted) with SHALLOW_NET as its model."""
    return with_network(text, SHALLOW_NET)


def shallow_file(path):
    """Rewrites the recipe file at ``path`` with :func:`shallow`; returns ``path``."""
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(shallow(text))
    return path
