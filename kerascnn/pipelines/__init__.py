"""The training recipes: one TOML file per paper experiment (package data).

Read them through :func:`kerascnn.training.recipe.load_recipe` (a name such as
``resnet20_cifar10``) or :func:`kerascnn.training.recipe.pipelines_dir`; the
repository's ``pipelines/`` folder is a link to this one.
"""
