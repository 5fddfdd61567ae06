"""``kerascnn reproduce <study>``: the four papers' experiments (ResNet: degradation,
layer responses, shortcut options; AlexNet: relu, alexnet-ablations; VGG: vgg;
GoogLeNet: googlenet), sized to a budget. TensorFlow is imported only when
the command runs."""

from __future__ import annotations

import argparse

_STUDIES = ("degradation", "responses", "shortcuts", "relu", "alexnet-ablations", "vgg",
            "googlenet")
_STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
_PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def register(subparsers):
    p = subparsers.add_parser(
        "reproduce",
        help="reproduce the papers' claims (ResNet, AlexNet, VGG, GoogLeNet studies)",
        description=(
            "Trains the CIFAR nets of He et al. (2016) and checks the paper's claims "
            "on the measured curves: degradation (Figures 1/6: plain-20/56, "
            "ResNet-20/56), responses (Figure 7: std of each 3x3 layer's response of "
            "the degradation nets), shortcuts (Table 3 in small: ResNet-20 with options "
            "A/B/C); vgg (Simonyan & Zisserman 2015, Tables 3 and 5 on VGG nets scaled "
            "to 32x32: LRN, depth, 1x1 vs 3x3, scale jittering, dense + multi-crop "
            "evaluation); relu (Krizhevsky et al. 2012, Figure 1: ReLU vs tanh on a "
            "four-layer net), alexnet-ablations (§3.3-3.4, §4.2: LRN, overlapping "
            "pooling, dropout on a scaled AlexNet); googlenet (Szegedy et al. 2015, §5's "
            "auxiliary losses and Table 3's 1/10/144 crops on a scaled GoogLeNet). "
            "The default budget fits a 2-core CPU on the offline Fashion-MNIST; "
            "--paper is each study's paper setting (CIFAR-10 from tfds). "
            "Running the same command again resumes: finished networks are not "
            "retrained."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("study", choices=_STUDIES)
    p.add_argument("--budget-minutes", type=_positive(float), default=None,
                   help="wall-clock budget that sizes the iterations (default per "
                   "study: degradation 25, responses 2 plus degradation's if its nets "
                   "are missing, shortcuts 20, relu 25, alexnet-ablations 30, vgg 28, "
                   "googlenet 22)")
    p.add_argument("--data", default=None,
                   help="a load_source spec: fashion_mnist (offline default), "
                   "tfds:cifar10, an image folder (train/ and test/ split folders), "
                   "tfrecord:<glob> ({split} in the glob: the split's shards)")
    p.add_argument("--data-dir", default=None, help="tfds data_dir / IDX folder")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--iterations", type=_positive(int), default=None,
                      help="iterations per network (skips the budget calibration)")
    size.add_argument("--epochs", type=_positive(int), default=None,
                      help="passes over the training images per network")
    p.add_argument("--points", type=_positive(int), default=None,
                   help="points of the curves (test evaluations) per network "
                   "(default 12; --epochs: one per epoch)")
    p.add_argument("--batch-size", type=_positive(int), default=None,
                   help="global batch (default 128, the paper's)")
    p.add_argument("--lr", type=_positive(float), default=None,
                   help="initial learning rate, /10 at 50%% and 75%% of the "
                   "iterations (default 0.1)")
    p.add_argument("--seeds", type=_positive(int), default=None,
                   help="seeds per network (default: degradation 1, shortcuts 2)")
    p.add_argument("--augment", choices=("none", "flip", "cifar"), default=None,
                   help="cifar: the paper's 4-pixel pad + random crop + flip (default "
                   "except for fashion_mnist, which trains unaugmented)")
    p.add_argument("--train-examples", type=_positive(int), default=None,
                   help="use the first N training images (default all)")
    p.add_argument("--test-examples", type=_positive(int), default=None,
                   help="test images of each curve point (default 1000); the final "
                   "test error is the last point's")
    p.add_argument("--precision", choices=_PRECISIONS, default=None,
                   help="default mixed_bfloat16 (2x on CPU); --paper: float32")
    p.add_argument("--strategy", choices=_STRATEGIES, default="auto",
                   help="tf.distribute strategy, or under jax keras.distribution."
                   "DataParallel (mirrored: all local devices; --batch-size is global)")
    p.add_argument("--paper", action="store_true",
                   help="the paper's setting: tfds:cifar10, 64k iterations of 128, "
                   "lr 0.1 /10 at 32k and 48k, pad+crop+flip, float32, full test set")
    p.add_argument("--nets-from", default=None,
                   help="responses: the degradation output folder whose networks it "
                   "measures (default runs/reproduce/degradation)")
    p.add_argument("--output-dir", default=None,
                   help="default runs/reproduce/<study>/")
    p.set_defaults(func=run)


def settings_from_args(args):
    """The :class:`~kerascnn.reproduce.runner.Settings` of parsed arguments
    (``--paper``: the study's ``paper_settings`` first)."""
    from kerascnn.reproduce.runner import Settings
    from kerascnn.reproduce.studies import get_study

    study = get_study(args.study)
    own = dict(study.overrides)
    for flag, key in (("lr", "optimizer.learning_rate"), ("augment", "data.policy_options")):
        value = getattr(args, flag)
        if value is not None and key in own:  # the study sets it (vgg: the paper's)
            raise ValueError(f"--{flag} does not apply to the {study.name} study: it sets "
                             f"{key} itself ({own[key]!r}). Received: --{flag} {value}")
    values = dict(study.settings)  # the study's defaults, then --paper's, then the flags
    if args.paper:
        values.update(study.paper_settings)
    for name in ("data", "data_dir", "budget_minutes", "iterations", "epochs", "points",
                 "batch_size", "lr", "seeds", "augment", "train_examples",
                 "test_examples", "precision", "strategy"):
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if args.epochs:  # one curve point per epoch unless --points says otherwise
        values.pop("iterations", None)
        if args.points is None:
            values["points"] = args.epochs
    return Settings(**values)


def run(args) -> int:
    from kerascnn.reproduce.runner import default_output_dir, run_study
    from kerascnn.reproduce.studies import get_study

    study = get_study(args.study)
    settings = settings_from_args(args)  # a bad setting: kerascnn.cli.main's one line
    run_study(study, settings, args.output_dir or default_output_dir(study.name),
              nets_dir=args.nets_from)
    return 0
