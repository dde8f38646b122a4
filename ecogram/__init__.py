"""E-co Gram: the image back office and image CDN of an online shop."""

__version__ = "0.1.0"
