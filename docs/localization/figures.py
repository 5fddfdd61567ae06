"""Draws the pictures of docs/localization.md: test images of fashion_mnist_boxes with a
method's map blended in, its box (the CAM paper's rule with the map's halo taken off, red)
and the ground truth (green).

    python docs/localization/figures.py runs/fashion_mnist_boxes_cam/checkpoints/best.keras \
        docs/localization 0.02 6

writes ``cam.png`` and ``gradcam.png`` (the same eight test images, the first ones of the
split, for each method), boxed at the threshold and margin given (default 0.02 and 6 pixels,
the recipe's: the pair its validation images pick, docs/localization.md).
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(model_path, out_dir, threshold=0.02, margin=6.0, count=8):
    from kerascnn.data import load_source
    from kerascnn.data.carried import resolve
    from kerascnn.evaluation.loading import load_keras_model
    from kerascnn.explain import explain_images
    from kerascnn.explain.localization import iou

    model = load_keras_model(model_path)
    prep = resolve(model_path, model=model).preprocessing  # the model's own
    source = load_source("fashion_mnist_boxes", "test")
    names = source.class_names
    images, labels, truth = source.images[:count], source.labels[:count], source.boxes[:count]
    os.makedirs(out_dir, exist_ok=True)
    for method in ("cam", "gradcam"):
        answers = explain_images(model, list(images), prep, method=method, class_names=names,
                                 threshold=threshold, margin=margin)
        fig, axes = plt.subplots(2, count // 2, figsize=(2.1 * count // 2, 5.4), dpi=100)
        for ax, image, label, gt, answer in zip(axes.ravel(), images, labels, truth, answers):
            m = answer.map / max(float(answer.map.max()), 1e-12)
            ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
            ax.imshow(np.clip(m, 0, 1), cmap="inferno", alpha=0.45, vmin=0, vmax=1)
            for (x0, y0, x1, y1), colour in ((gt, "lime"), (answer.box, "red")):
                ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                           edgecolor=colour, linewidth=1.5))
            overlap = float(iou(answer.box, gt))
            ok = answer.class_id == label and overlap >= 0.5
            ax.set_title(f"{answer.class_name} IoU {overlap:.2f}\n"
                         f"{'right' if ok else 'wrong'} (true: {names[label]})", fontsize=7)
            ax.axis("off")
        title = {"cam": "CAM (Zhou et al. 2016)", "gradcam": "Grad-CAM (Selvaraju et al. 2017)"}[method]
        fig.suptitle(f"{title}: box at {threshold:.0%} of the maximum less {margin:g} px a side red, "
                     "ground truth green",
                     fontsize=9)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{method}.png")
        fig.savefig(path + ".tmp.png")
        os.replace(path + ".tmp.png", path)
        plt.close(fig)
        print("wrote", path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(float(a) for a in sys.argv[3:5]))
