"""Person detectors: torchvision models and boxes read from files."""
