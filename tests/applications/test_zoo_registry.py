import dataclasses

import pytest

from kerascnn import applications as apps
from kerascnn.applications import registry
from kerascnn.cli import main

PROTOCOLS = {"center", "10crop", "144crop", "multicrop", "dense", "dense+multicrop", "test"}


def test_every_builder_of_the_issue_is_registered():
    expected = {
        "alexnet", "vgg11", "vgg11_lrn", "vgg13", "vgg16c", "vgg16", "vgg19", "googlenet",
        "googlenet_scaled",  # the GoogLeNet study's net (kerascnn.reproduce.googlenet_studies)
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18", "plain34",
        *(f"{k}{d}" for k in ("resnet", "plain") for d in (20, 32, 44, 56, 110)),
        "scaled_vgg",  # the vgg study's nets (kerascnn.reproduce.vgg_studies)
        "alexnet_fig1", "alexnet_small",  # the AlexNet paper's studies' nets (kerascnn.reproduce.alexnet_studies)
    }
    assert set(apps.list_models()) == expected
    assert apps.list_models("vgg") == ["vgg11", "vgg11_lrn", "vgg13", "vgg16c", "vgg16", "vgg19"]


def test_lookup_is_forgiving_and_unknown_names_list_close_matches():
    assert apps.get_model_info("ResNet-50") is apps.get_model_info("resnet50")
    assert apps.get_model_info("VGG11LRN").name == "vgg11_lrn"
    with pytest.raises(ValueError, match="Did you mean: .*resnet50") as info:
        apps.get_model("resnet-51")
    assert "Received: name='resnet-51'" in str(info.value)


def test_registering_twice_is_an_error():
    info = apps.get_model_info("resnet20")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model(info)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model(dataclasses.replace(info, name="resnet_20"))


def test_get_model_passes_arguments():
    model = apps.get_model("plain20", classes=3, input_shape=(16, 16, 1), name="p")
    assert model.name == "p" and model.output_shape == (None, 3)


def test_metadata_recipes_and_paper_results():
    for name in apps.list_models():
        info = apps.get_model_info(name)
        assert set(info.paper_results) <= PROTOCOLS
        for result in info.paper_results.values():
            assert {"top1", "top5", "dataset"} <= set(result)
    recipe = {n: apps.get_model_info(n).recipe for n in apps.list_models()}
    assert recipe["alexnet"] == "alexnet_imagenet"
    assert recipe["vgg11"] == "vgg_a_imagenet"
    assert recipe["vgg11_lrn"] == "vgg_a_lrn_imagenet"
    assert recipe["vgg16c"] == "vgg_c_imagenet"
    assert recipe["vgg19"] == "vgg_e_imagenet"
    assert recipe["googlenet"] == "googlenet_imagenet"
    assert recipe["plain18"] == "plain18_imagenet"
    assert recipe["resnet20"] == "resnet20_cifar10"
    assert recipe["plain56"] == "plain56_cifar10"
    # Spot checks against PAPERS.md (error %, protocol).
    r = {n: apps.get_model_info(n).paper_results for n in apps.list_models()}
    assert r["alexnet"]["10crop"]["top1"] == 40.7 and r["alexnet"]["10crop"]["top5"] == 18.2
    assert r["googlenet"]["144crop"]["top5"] == 7.89 and r["googlenet"]["center"]["top5"] == 10.07
    assert r["vgg16"]["dense+multicrop"]["top5"] == 7.2 and r["vgg11"]["dense"]["top1"] == 29.6
    assert r["resnet152"]["10crop"]["top1"] == 21.43 and r["resnet50"]["10crop"]["top5"] == 6.71
    assert r["resnet110"]["test"]["top1"] == 6.43 and r["plain34"]["10crop"]["top1"] == 28.54
    assert r["plain20"] == {}
    assert apps.get_model_info("resnet20").input_shape == (32, 32, 3)
    assert apps.get_model_info("alexnet").input_shape == (227, 227, 3)


def test_models_command_prints_the_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["name", "input", "params", "GMACs"]
    for name in apps.list_models():
        assert any(line.split()[:1] == [name] for line in lines), name
    row = next(line for line in lines if line.startswith("resnet50 "))
    assert "25.56M" in row and "10crop 22.85/6.71" in row and "resnet50_imagenet" in row
    assert main(["models", "--family", "googlenet"]) == 0
    assert "144crop -/7.89" in capsys.readouterr().out
