"""The box rule's hit rate by threshold, margin and item size (docs/localization.md, the leads).

    python docs/localization/thresholds.py runs/fashion_mnist_boxes_cam/checkpoints/best.keras

For the 512 held-out validation images (the tail of the training split, as the recipe
holds them out) and the first 2,000 test images of ``fashion_mnist_boxes``: the CAM of
each image's *true* class, boxed by the CAM paper's rule at thresholds 0.05 ... 0.50
(``kerascnn.explain.boxes_from_map``), and per threshold

- ``loc1``: top-1 localization accuracy (the top-1 class right *and* IoU >= 0.5),
- ``hit``: the share of images whose box has IoU >= 0.5 (whatever the class),
- ``hit`` by the side of the ground-truth box (the square root of its area, pixels);

then the *oracle*: the share of images that some threshold of the list would box with
IoU >= 0.5 (a per-image choice no rule can make: how much the map itself holds); the top-1
localization accuracy of every (threshold, margin) pair of ``GRID`` (the box with ``margin``
pixels taken off each side, lead 6), the pair the validation images pick, and its hit rate by
item size on both sets (the pick is the validation images' alone; the test row shows what it
gives there); and three
rules that choose a threshold per image from the map's own values (the map upsampled to the
image, its negative part set to 0, divided by its maximum): Otsu's threshold (the one that
best separates the map's values into two classes), k times the map's mean, and half of Otsu's.
"""

import sys

import numpy as np

THRESHOLDS = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.50)
SIDES = (0, 16, 20, 24, 28, 36, 1000)
GRID = ((0.01, 0.02, 0.03, 0.05, 0.08, 0.10, 0.15, 0.20, 0.30), tuple(range(9)))


def main(model_path, tests=2000, batch=256):
    import keras

    from kerascnn.data import load_source
    from kerascnn.data.carried import resolve
    from kerascnn.evaluation.loading import load_keras_model
    from kerascnn.explain import boxes_from_map, class_activation_map
    from kerascnn.explain.boxes import resize_bilinear
    from kerascnn.explain.localization import iou

    model = load_keras_model(model_path)
    prep = resolve(model_path, model=model).preprocessing  # the model's own
    train, test = load_source("fashion_mnist_boxes", "train"), load_source("fashion_mnist_boxes", "test")
    n = len(train.labels)
    pick = None
    for name, source, index in (("validation", train, np.arange(n - 512, n)),
                                ("test", test, np.arange(tests))):
        images, labels, truth = source.images[index], source.labels[index], source.boxes[index]
        maps, right = [], []
        for s in range(0, len(index), batch):
            views = np.stack([prep(i) for i in images[s:s + batch]])
            classes = [int(c) for c in labels[s:s + batch]]
            maps.append(class_activation_map(model, views, class_index=classes))
            logits = keras.ops.convert_to_numpy(model(views, training=False))
            right.append(logits.argmax(axis=1) == labels[s:s + batch])
        maps, right = np.concatenate(maps), np.concatenate(right)
        side = np.sqrt((truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1]))
        bins = list(zip(SIDES[:-1], SIDES[1:]))
        print(f"{name} ({len(index)} images): top-1 classification accuracy {right.mean():.3f}")
        print("  images by side: " + "  ".join(
            f"{lo}-{hi if hi < 1000 else ''}: {((side >= lo) & (side < hi)).sum()}" for lo, hi in bins))
        hits = []
        for t in THRESHOLDS:
            boxes = boxes_from_map(maps, t, image_size=images.shape[1:3])
            hit = np.array([iou(b, g) >= 0.5 for b, g in zip(boxes, truth)])
            hits.append(hit)
            per = "  ".join(f"{hit[(side >= lo) & (side < hi)].mean():.2f}" for lo, hi in bins)
            print(f"  t={t:.2f}  loc1 {np.mean(hit & right):.3f}  hit {hit.mean():.3f}  by side {per}")
        oracle = np.any(hits, axis=0)
        print(f"  oracle (best threshold per image): hit {oracle.mean():.3f}  "
              f"loc1 {np.mean(oracle & right):.3f}")
        size = images.shape[1:3]

        def hits_at(t, m):
            boxes = boxes_from_map(maps, t, image_size=size, margin=m)
            return np.array([iou(b, g) >= 0.5 for b, g in zip(boxes, truth)])

        print("  top-1 loc. accuracy by threshold (rows) and margin in pixels (columns "
              + " ".join(str(m) for m in GRID[1]) + ")")
        grid = {}
        for t in GRID[0]:
            for m in GRID[1]:
                grid[t, m] = np.mean(hits_at(t, m) & right)
            print(f"  t={t:.2f}  " + " ".join(f"{grid[t, m]:.3f}" for m in GRID[1]))
        if pick is None:  # the validation images choose; the test images are only scored
            pick = max(grid, key=lambda k: (grid[k], -k[1]))
        hit = hits_at(*pick)
        per = "  ".join(f"{hit[(side >= lo) & (side < hi)].mean():.2f}" for lo, hi in bins)
        print(f"  validation's pick t={pick[0]:.2f} margin {pick[1]}: loc1 {np.mean(hit & right):.3f}"
              f"  hit {hit.mean():.3f}  by side {per}")
        up = np.maximum(resize_bilinear(maps, size), 0)
        up = up / np.maximum(up.reshape(len(up), -1).max(axis=1), 1e-12)[:, None, None]
        otsu = np.array([_otsu(m) for m in up])
        mean = up.reshape(len(up), -1).mean(axis=1)
        rules = [("Otsu", otsu), *((f"{k} x mean", k * mean) for k in (0.5, 1.0, 1.5)),
                 ("Otsu / 2", otsu / 2)]
        for name, ts in rules:
            boxes = [boxes_from_map(m[None], float(min(t, 0.99)))[0] for m, t in zip(up, ts)]
            hit = np.array([iou(b, g) >= 0.5 for b, g in zip(boxes, truth)])
            print(f"  per image, {name:9s} (median {np.median(ts):.2f})  loc1 "
                  f"{np.mean(hit & right):.3f}  hit {hit.mean():.3f}")


def _otsu(values, bins=64):
    """Otsu's threshold of values in [0, 1]: the one that maximizes the between-class variance."""
    count, edges = np.histogram(values, bins=bins, range=(0, 1))
    centre = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(count)
    mass = np.cumsum(count * centre)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = below * (below[-1] - below) * (
            mass / below - (mass[-1] - mass) / (below[-1] - below)) ** 2
    return centre[np.nanargmax(between)]


if __name__ == "__main__":
    main(*sys.argv[1:2], *(int(a) for a in sys.argv[2:3]))
