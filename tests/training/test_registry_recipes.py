"""Every network of the registry names a recipe that exists and trains that network."""

import pytest

from kerascnn.applications import get_model_info, list_models
from kerascnn.training.recipe import load_recipe


@pytest.mark.parametrize("name", list_models())
def test_registry_recipe_exists_and_builds_that_network(name):
    recipe = get_model_info(name).recipe
    assert recipe, f"{name} names no recipe"
    assert load_recipe(recipe).model.name == name
