"""Suite-wide test settings: no test writes into ./data, nothing phones home."""

import os
import sys
from pathlib import Path

import pytest

# Shared test helpers (lake files, quality data, Airflow helpers) are imported by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

# pytest-xdist workers (make test runs two) start from a __main__ without __file__; pyspark's
# pyspark.sql.connect, which great_expectations imports, takes that for a doctest run and calls
# sys.exit(0) on import. Give the worker's __main__ the file it runs from.
_main = sys.modules.get("__main__")
if (
    _main is not None
    and getattr(_main, "__spec__", None) is None
    and not hasattr(_main, "__file__")
):
    _main.__file__ = sys.argv[0] if sys.argv and sys.argv[0] else "pytest"


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory):
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # A test that forgets to set VIGIL_HOME writes into a throwaway root, never the user's ./data.
    os.environ["VIGIL_HOME"] = str(tmp_path_factory.mktemp("vigil-home"))
    yield
