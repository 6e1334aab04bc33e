"""Real-time rules (issue 21): rules written as data, run by the stream processor.

:mod:`vigil.rules.language` loads and compiles a rules file (YAML: rules with a small expression
language, a safe subset of Python); :mod:`vigil.rules.engine` keeps the windowed counters,
distinct counts and labels and decides effects event by event. The stream processor hosts the
engine (``vigil stream --rules FILE``, :mod:`vigil.stream.rules`), which commits its state with
the stream's checkpoint; ``vigil rules check|test|replay|labels`` is :mod:`vigil.stream.rules_cli`.
This package imports nothing from the stream, so the stream can import it. docs/rules.md.
"""
