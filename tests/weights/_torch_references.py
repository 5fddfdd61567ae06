"""Independent references for the ResNet/VGG weight tests: small PyTorch models with
torchvision's module names (so their ``state_dict`` keys are torchvision's), written
here because torchvision does not import beside torch 2.13, and keras.applications'
own models saved with Keras' legacy HDF5 writer (what keras.applications' files are).

Nothing here imports kerascnn.
"""

from __future__ import annotations

import numpy as np

TORCHVISION_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCHVISION_STD = np.array([0.229, 0.224, 0.225], np.float32)
# keras.applications.imagenet_utils.preprocess_input, mode "caffe": BGR minus this.
KERAS_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def torch_modules():
    """The torch reference classes (built lazily: torch is a dev dependency)."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class Bottleneck(nn.Module):
        """torchvision's: the stride on the 3x3 ("v1.5")."""

        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + identity)

    class ResNet(nn.Module):
        def __init__(self, block, layers, num_classes=1000):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(block, 64, layers[0])
            self.layer2 = self._make_layer(block, 128, layers[1], 2)
            self.layer3 = self._make_layer(block, 256, layers[2], 2)
            self.layer4 = self._make_layer(block, 512, layers[3], 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * block.expansion, num_classes)

        def _make_layer(self, block, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                    nn.BatchNorm2d(planes * block.expansion),
                )
            layers = [block(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * block.expansion
            layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    class VGG(nn.Module):
        """torchvision's VGG without its AdaptiveAvgPool2d((7, 7)) (the identity at
        224x224; the tests run smaller inputs), with a classifier of ``width``."""

        def __init__(self, cfg, flat, width=4096, num_classes=1000):
            super().__init__()
            layers, c = [], 3
            for v in cfg:
                if v == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                    c = v
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(
                nn.Linear(flat, width), nn.ReLU(True), nn.Dropout(),
                nn.Linear(width, width), nn.ReLU(True), nn.Dropout(),
                nn.Linear(width, num_classes),
            )

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

        def trunk(self, x):
            return self.features(x)

    return {"BasicBlock": BasicBlock, "Bottleneck": Bottleneck, "ResNet": ResNet, "VGG": VGG}


VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
}


def randomize_torch(model, seed=0):
    """Random weights everywhere and non-trivial batch-norm statistics."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=gen))
                module.bias.copy_(0.2 * torch.randn(n, generator=gen))
                module.running_mean.copy_(0.3 * torch.randn(n, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                module.num_batches_tracked.fill_(7)
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen)
                                    * (2.0 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
    return model.eval()


def torch_forward(model, images_rgb_0_255, fn=None):
    """torchvision's input: ``(x / 255 - mean) / std``, NCHW; returns numpy NHWC/ND."""
    import torch

    x = (images_rgb_0_255 / 255.0 - TORCHVISION_MEAN) / TORCHVISION_STD
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32))
    with torch.no_grad():
        y = (fn or model)(x).numpy()
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


def randomize_keras(model, seed=0):
    """keras.applications model: random conv biases and batch-norm statistics."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([
                (0.5 + rng.random(n)).astype(np.float32),
                (0.2 * rng.standard_normal(n)).astype(np.float32),
                (0.3 * rng.standard_normal(n)).astype(np.float32),
                (0.5 + rng.random(n)).astype(np.float32),
            ])
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            kernel = layer.kernel
            fan_in = int(np.prod(kernel.shape[:-1]))
            values = [(rng.standard_normal(kernel.shape) * (2.0 / fan_in) ** 0.5)
                      .astype(np.float32)]
            if layer.use_bias:
                values.append((0.1 * rng.standard_normal(layer.bias.shape)).astype(np.float32))
            layer.set_weights(values)
    return model


def save_keras_legacy_h5(model, path):
    """What keras.applications' ``*_weights_tf_dim_ordering_tf_kernels.h5`` are: Keras'
    own legacy writer (``layer_names``, per-layer ``weight_names``)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


def keras_caffe_input(images_rgb_0_255):
    """keras.applications' ``preprocess_input`` (mode "caffe"): RGB -> BGR, minus the
    BGR mean."""
    return images_rgb_0_255[..., ::-1] - KERAS_MEAN_BGR


def close(a, b, rtol=2e-4):
    """Equal within float32 tolerance, relative to the outputs' scale."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(b).max(), 1e-6)
    return a.shape == b.shape and np.abs(a - b).max() <= rtol * scale
