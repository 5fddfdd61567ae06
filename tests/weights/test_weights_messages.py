"""The rough edges of ``weights=``: a file of another depth says which network
it is and which builder to use; a PyTorch file given to AlexNet says that AlexNet's
weights are BVLC's Caffe model; a folder or a missing path is "no such weights file"
in the same words from the Python API and from the CLI.
"""

from __future__ import annotations

import numpy as np
import pytest
from _torch_references import randomize_torch, torch_modules

from kerascnn.cli import main


@pytest.fixture(scope="module")
def resnet18_pth(tmp_path_factory):
    """A torchvision-layout ResNet-18 state dict (torchvision's module names)."""
    torch = pytest.importorskip("torch")
    m = torch_modules()
    model = randomize_torch(m["ResNet"](m["BasicBlock"], [2, 2, 2, 2]), seed=1)
    path = tmp_path_factory.mktemp("resnet18") / "resnet18.pth"
    torch.save(model.state_dict(), path)
    return str(path)


def test_a_resnet18_file_given_to_resnet50_says_it_is_a_resnet18(resnet18_pth):
    from kerascnn.applications import ResNet18, ResNet50

    small = {"include_top": False, "input_shape": (32, 32, 3)}
    for stride_in_1x1 in (True, False):  # not a stride question, whatever the option
        with pytest.raises(ValueError) as info:
            ResNet50(weights=resnet18_pth, stride_in_1x1=stride_in_1x1, **small)
        message = str(info.value)
        assert message.startswith(resnet18_pth), message
        assert "is a ResNet-18 (basic blocks, 2/2/2/2 per stage)" in message, message
        assert "this model is a ResNet-50 (bottleneck blocks, 3/4/6/3 per stage)" in message
        assert "ResNet18(weights=...)" in message and "stride_in_1x1" not in message
    # ... and the builder it names takes the file.
    model = ResNet18(weights=resnet18_pth, **small)
    kernel = model.get_layer("conv2_block2_2_conv").kernel.numpy()
    torch = pytest.importorskip("torch")
    want = torch.load(resnet18_pth, weights_only=True)["layer1.1.conv2.weight"].numpy()
    np.testing.assert_allclose(kernel, want.transpose(2, 3, 1, 0), rtol=0, atol=0)


def test_integer_tensor_for_a_float_weight_is_refused_before_it_is_read(resnet18_pth,
                                                                        tmp_path):
    torch = pytest.importorskip("torch")
    from kerascnn.applications import ResNet18

    state = torch.load(resnet18_pth, weights_only=True)
    state["layer2.0.conv1.weight"] = state["layer2.0.conv1.weight"].to(torch.int64)
    path = str(tmp_path / "int_kernel.pth")
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"'layer2\.0\.conv1\.weight' of .*int_kernel\.pth "
                                         r"holds int64, not floating-point weights"):
        ResNet18(weights=path, include_top=False, input_shape=(32, 32, 3))


def test_a_pth_given_to_alexnet_says_alexnet_weights_are_bvlc_caffe(tmp_path):
    torch = pytest.importorskip("torch")
    from kerascnn.applications import AlexNet

    path = str(tmp_path / "x.pth")
    torch.save({"features.0.weight": torch.zeros(96, 3, 11, 11)}, path)
    with pytest.raises(ValueError) as info:
        AlexNet(weights=path)
    message = str(info.value)
    assert message.startswith(f"{path} is a PyTorch .pth file"), message
    assert "BVLC's Caffe model (bvlc_alexnet.caffemodel" in message, message
    assert "from a Caffe .caffemodel, or from a Keras file" in message, message
    assert "origin" not in message and "\n" not in message, message


@pytest.mark.parametrize("where", ["folder", "missing"])
def test_no_such_weights_file_in_one_wording_from_api_and_cli(tmp_path, capsys, where):
    from kerascnn.applications import ResNet18

    path = tmp_path / "weights_dir" if where == "folder" else tmp_path / "none.pth"
    if where == "folder":
        path.mkdir()
    what = "is a folder" if where == "folder" else "does not exist"
    expected = f"No such weights file: {path} {what}. Received: weights={str(path)!r}"
    with pytest.raises(ValueError) as info:
        ResNet18(weights=str(path))
    assert str(info.value) == expected
    image = tmp_path / "image.png"
    image.write_bytes(b"")  # never read: --weights is checked first
    assert main(["predict", str(image), "--arch", "resnet18", "--weights", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kerascnn predict: error: {expected}"], err
    assert "Weight sets of" not in err[0]
