"""Full-size networks for the tests that read only their structure (parameter counts,
multiply-adds, layer names, configurations and shapes): built with the same builder
code, their variables created with their shapes but never initialised.

A full-size VGG-16 draws 138M random numbers when it is built (about 4 CPU-s, nearly
all of its build); under ``keras.StatelessScope(initialize_variables=False)`` Keras
records each variable's initialiser instead and leaves it uninitialised. Nothing may
read such a model's weights (there are none), and ``keras.backend.clear_session()``
must run before any other ``StatelessScope`` exits (it forgets them; Keras would
initialise them there).
"""

import contextlib


@contextlib.contextmanager
def structure_only():
    """Models built inside have every layer and variable shape, no weight values."""
    import keras

    with keras.StatelessScope(initialize_variables=False):
        yield
