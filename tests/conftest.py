"""Suite-wide test settings: no test writes into ./data, nothing phones home."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory):
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # A test that forgets to set VIGIL_HOME writes into a throwaway root, never the user's ./data.
    os.environ["VIGIL_HOME"] = str(tmp_path_factory.mktemp("vigil-home"))
    yield
