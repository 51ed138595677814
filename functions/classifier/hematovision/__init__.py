"""HematoVision: white-blood-cell photo classification (decision support, not a diagnosis)."""

__version__ = "0.1.0"
