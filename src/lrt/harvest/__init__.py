"""Harvest: the one single-model capture of any set of layers, and the paired (two-model) harvest."""

from .config import HarvestConfig

__all__ = ["HarvestConfig"]
