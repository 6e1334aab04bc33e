"""Great Expectations on DuckDB: the duckdb-engine workaround (GX #10738, #11579), the
process's ephemeral context, and closing every connection GX opened."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def patch_gx_duckdb() -> bool:
    """Make GX's SQL execution engine buffer query results on DuckDB; idempotent.

    GX 1.24 ``SqlAlchemyExecutionEngine.execute_query`` returns the cursor result after the
    ``with engine.connect()`` block has closed the connection; duckdb-engine empties a result on
    close, so every metric fails with "list index out of range" (GX issues #10738, #11579). The
    replacement fetches the rows while the connection is open (``CursorResult.freeze()``) and
    returns an equivalent buffered result. Other dialects keep GX's own method. Returns True when
    this call installed the patch. tests/quality/test_quality.py checks that the unpatched method
    still fails, so we notice when GX fixes it and this can go.
    """
    from great_expectations.execution_engine.sqlalchemy_execution_engine import (
        SqlAlchemyExecutionEngine,
    )

    current = SqlAlchemyExecutionEngine.execute_query
    if getattr(current, "_vigil_duckdb_buffered", False):
        return False
    original = current

    def execute_query(self, query):
        if self.dialect_name != "duckdb":
            return original(self, query)
        with self.get_connection() as connection:
            result = self._execute_query_with_recovery(connection, query)
            if not result.returns_rows:
                return result
            return result.freeze()()  # rows fetched before the connection closes

    execute_query._vigil_duckdb_buffered = True  # type: ignore[attr-defined]
    execute_query.__wrapped__ = original  # type: ignore[attr-defined]
    execute_query.__doc__ = original.__doc__
    SqlAlchemyExecutionEngine.execute_query = execute_query
    return True


def unpatched_execute_query():
    """GX's own ``execute_query`` (for the test that proves the bug still exists)."""
    from great_expectations.execution_engine.sqlalchemy_execution_engine import (
        SqlAlchemyExecutionEngine,
    )

    method = SqlAlchemyExecutionEngine.execute_query
    return getattr(method, "__wrapped__", method)


_CONTEXT = None


class DuckDBConnections:
    """Every DBAPI connection SQLAlchemy opens while a gate runs, closed when it ends.

    GX builds several engines per datasource (its own and the execution engine's, sometimes again
    after rehydrating the datasource from its config) and keeps their pools alive; a pooled
    connection keeps the warehouse file open, so the next ``dbt build`` could not take its write
    lock, and a later read with a different configuration would fail. Closing what was opened,
    rather than hunting for the engines, is the reliable way to release the file.
    """

    def __init__(self):
        self.opened: list = []

    def _on_connect(self, dbapi_connection, connection_record):
        self.opened.append(dbapi_connection)

    def __enter__(self):
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        event.listen(Pool, "connect", self._on_connect)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        event.remove(Pool, "connect", self._on_connect)
        for connection in self.opened:
            try:
                connection.close()
            except Exception as error:  # noqa: BLE001 - any driver's close; already closed is fine
                log.debug("closing a GX connection: %s", error)
        self.opened.clear()
        return False


def gx_context():
    """The process's ephemeral GX context (importing GX costs ~7-12 s, so it is built once)."""
    global _CONTEXT
    if _CONTEXT is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        patch_gx_duckdb()
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            # GX gives its loggers level INFO on import; its chatter shows only with `vigil -v`
            for name in [n for n in logging.root.manager.loggerDict if n.startswith("great_")]:
                logging.getLogger(name).setLevel(logging.WARNING)
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        _CONTEXT = context
    return _CONTEXT
