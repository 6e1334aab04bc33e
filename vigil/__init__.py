"""Vigil: trust-and-safety ML data platform."""
