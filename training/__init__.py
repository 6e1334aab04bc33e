"""Vigil training: harmful-content models."""
