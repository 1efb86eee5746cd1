"""radsynth: text-guided generation and editing of radiological images, scored against phantoms."""

__version__ = "0.1.0"
