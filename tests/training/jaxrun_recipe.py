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


def compile_cache_env(folder):
    """The environment variables that give a test's JAX processes one persistent
    compilation cache, JAX's own, in ``folder`` (created by JAX): a process that builds
    and compiles what an earlier one did (a killed run and its resume, a run and the
    evaluation of its checkpoint) loads XLA's executables instead of compiling them
    again; what each process runs is unchanged. Every compile is kept, not only those
    over JAX's default 1 s (a network's initialisers compile in less each, GoogLeNet's
    about 50 s together). For processes that run one after the other: JAX writes an
    entry without a lock (an unreadable entry is compiled again, with a warning)."""
    return {"JAX_COMPILATION_CACHE_DIR": str(folder),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


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
