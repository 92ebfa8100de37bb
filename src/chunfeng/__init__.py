"""Chunfeng (春风): the platform behind a tax administration's Spring Breeze taxpayer-service action."""

__version__ = "0.1.0"
