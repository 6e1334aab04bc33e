"""Arrow arrays built from their buffers, for the lake's writers.

``pyarrow.array`` and ``pyarrow.scalar`` import pandas on their first call (pyarrow checks
whether the input is a pandas object), even on a list or a NumPy array; the lake never uses
pandas, and importing it is a large share of a small ingest. These helpers build the same arrays
(same values, same nulls) with ``pyarrow.Array.from_buffers``, which does not.
"""

from __future__ import annotations

from collections.abc import Sequence


def _pa():
    import pyarrow as pa

    return pa


def from_numpy(values, type=None):
    """A 1-D NumPy array as an Arrow array of ``type`` (int64 by default; int64, float64,
    timestamp in its unit, or bool), no nulls."""
    import numpy as np

    pa = _pa()
    type = pa.int64() if type is None else type
    if pa.types.is_boolean(type):
        data = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    else:
        data = np.ascontiguousarray(values, dtype=_numpy_dtype(type))
    return pa.Array.from_buffers(type, len(values), [None, pa.py_buffer(data)])


def _numpy_dtype(type):
    import numpy as np

    pa = _pa()
    if type == pa.int64() or pa.types.is_timestamp(type):
        return np.int64
    if type == pa.float64():
        return np.float64
    raise TypeError(f"no buffer builder for Arrow type {type}")


def _validity(values: Sequence) -> tuple[object, int]:
    """(validity bitmap buffer or None, null count) of a Python list where None is null."""
    import numpy as np

    pa = _pa()
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    nulls = len(values) - int(valid.sum())
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def from_pylist(values: Sequence, type):
    """A Python list (None = null) as an Arrow array of ``type``: string, int64, float64, bool
    or timestamp (values in the timestamp's unit, e.g. microseconds)."""
    import numpy as np

    pa = _pa()
    n = len(values)
    validity, nulls = _validity(values)
    if pa.types.is_string(type):
        encoded = [b"" if v is None else v.encode("utf-8") for v in values]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=n), out=offsets[1:])
        if offsets[-1] > np.iinfo(np.int32).max:
            raise ValueError(f"{offsets[-1]} bytes of text do not fit one Arrow string array")
        text = pa.py_buffer(b"".join(encoded))
        buffers = [validity, pa.py_buffer(offsets.astype(np.int32)), text]
        return pa.Array.from_buffers(type, n, buffers, null_count=nulls)
    if pa.types.is_boolean(type):
        flags = np.fromiter((bool(v) for v in values), dtype=bool, count=n)
        data = np.packbits(flags, bitorder="little")
    else:
        dtype = _numpy_dtype(type)
        zero = dtype(0)
        data = np.fromiter((zero if v is None else v for v in values), dtype=dtype, count=n)
    return pa.Array.from_buffers(type, n, [validity, pa.py_buffer(data)], null_count=nulls)


def table_from_rows(rows: Sequence[tuple], schema):
    """Row tuples in ``schema``'s column order as an Arrow table."""
    pa = _pa()
    cols = list(zip(*rows)) if rows else [() for _ in schema.names]
    arrays = [from_pylist(col, schema.field(i).type) for i, col in enumerate(cols)]
    return pa.Table.from_arrays(arrays, schema=schema)


def scalar(value, type=None):
    """A Python bool, int, float or str as an Arrow scalar (bool, int64, float64, string unless
    ``type`` says otherwise): what compute functions need for a constant without
    ``pyarrow.scalar``."""
    pa = _pa()
    if type is None:
        kinds = ((bool, pa.bool_()), (int, pa.int64()), (float, pa.float64()), (str, pa.string()))
        type = next(t for kind, t in kinds if isinstance(value, kind))
    return from_pylist([value], type)[0]


def to_numpy(values):
    """A null-free Arrow array (or chunked array) of integers, floats or bools as a NumPy
    array, read from its buffers (``Array.to_numpy`` imports pandas)."""
    import numpy as np

    pa = _pa()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        raise ValueError("to_numpy: the array has nulls")
    n, offset, type = len(values), values.offset, values.type
    if pa.types.is_boolean(type):
        if n == 0:
            return np.zeros(0, dtype=bool)
        bits = np.unpackbits(np.frombuffer(values.buffers()[1], dtype=np.uint8), bitorder="little")
        return bits[offset : offset + n].astype(bool)
    if pa.types.is_integer(type):
        dtype = np.dtype(f"{'i' if pa.types.is_signed_integer(type) else 'u'}{type.bit_width // 8}")
    elif pa.types.is_floating(type):
        dtype = np.dtype(f"f{type.bit_width // 8}")
    else:
        raise TypeError(f"to_numpy: no buffer reader for Arrow type {type}")
    if n == 0:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(values.buffers()[1], dtype=dtype, count=n, offset=offset * dtype.itemsize)
