"""Spotify Brain: a personal listening-intelligence system, as a Dagster project of assets."""

from .definitions import defs

__all__ = ["defs"]
