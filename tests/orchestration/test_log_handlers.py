"""A library that binds a log handler to a captured stream (Airflow does on first import) must not
turn the next test's log records into "--- Logging error ---" tracebacks (tests/conftest.py)."""

import logging
import sys

LOGGER = "vigil.tests.log_handlers"


def test_a_library_binds_a_handler_to_this_tests_captured_stderr(capsys):
    handler = logging.StreamHandler(sys.stderr)  # capsys's stream: closed when this test ends
    logging.getLogger(LOGGER).addHandler(handler)
    logging.getLogger(LOGGER).warning("while captured")
    assert "while captured" in capsys.readouterr().err


def test_the_next_test_logs_without_a_logging_error(capsys):
    lg = logging.getLogger(LOGGER)
    assert all(not getattr(h.stream, "closed", False) for h in lg.handlers if hasattr(h, "stream"))
    lg.warning("after the capture closed")
    assert "Logging error" not in capsys.readouterr().err
