"""Vigil benchmarks: ``python -m bench`` runs them all, ``python -m bench NAME [args]`` runs one.

Each ``bench/bench_<name>.py`` exposes ``main(argv=None) -> dict`` that prints a results table.
"""
