"""The one image-shape policy: the size of the images that evolution or ascent optimises."""

from __future__ import annotations

from ..classifiers import Classifier


def image_shape(classifier: Classifier) -> tuple[int, int, int]:
    """(C, H, W) of the images to optimise for ``classifier``, whatever the encoding (pixels or CPPNs).

    Images are made at the size the network's preprocessing resizes to, so that the resize is the identity and
    every pixel the network sees is one optimised or drawn pixel: a square of the preprocessing's ``resize``
    side when it resizes before cropping (256 for EfficientNet-Lite0, AlexNet and ResNet-50 V1: the paper's 256;
    232 for ResNet-50 V2), else the network's input (28x28 for MNIST). (A CPPN drawn at the network's 224 px
    input, as runs begun before this rule were, is scaled up to 256 and centre-cropped: the network sees its
    middle 196 px, interpolated.)
    """
    c, h, w = classifier.input_shape
    resize = classifier.spec.resize
    if resize is not None:
        return (c, resize, resize)
    return (c, h, w)
