"""Each entry's result as one JSON file, ``DIR/<name>/result.json``, written atomically.

The JSON is written last, after the figures, so its presence with status ``done`` means
the entry finished. A rerun skips an entry whose JSON has the same entry version and tier
and whose figure files are all there; anything else (no file, another version or tier, a
failed or skipped entry, a deleted figure) is computed again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from optimlab.io import atomic_write_text

RESULT = "result.json"
FORMAT = 1

DONE = "done"
FAILED = "failed"
SKIPPED = "skipped"


def result_path(out: Path, name: str) -> Path:
    return out / name / RESULT


def to_json_value(value: Any, where: str = "numbers") -> Any:
    """``value`` as plain JSON data (tuples become lists, numpy scalars Python numbers);
    ValueError naming the key for a non-finite float or a type JSON has no form for."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if getattr(value, "ndim", 0) > 0 and hasattr(value, "tolist"):  # arrays and tensors
        return to_json_value(value.tolist(), where)
    if isinstance(value, float) or hasattr(value, "item"):
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, bool | int):
            return number
        if not math.isfinite(number):
            raise ValueError(f"{where} is {number!r}; numbers must be finite (None if absent)")
        return float(number)
    if isinstance(value, dict):
        return {str(k): to_json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ValueError(f"{where} has type {type(value).__name__}, which JSON cannot hold")


def write(out: Path, record: dict[str, Any]) -> Path:
    text = json.dumps(record, indent=1, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(result_path(out, record["name"]), text + "\n")


def read(out: Path, name: str) -> dict[str, Any] | None:
    """The stored record of ``name``; None when there is none or it cannot be read."""
    path = result_path(out, name)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("name") != name:
        return None
    return record


def files_of(record: dict[str, Any]) -> list[str]:
    return [f for figure in record.get("figures", []) for f in figure.get("files", [])]


def is_current(out: Path, record: dict[str, Any] | None, version: int, tier: str) -> bool:
    """Whether ``record`` is a finished result of this entry version at this tier whose
    figures are all on disk (then a rerun does not compute it again)."""
    if not record or record.get("status") != DONE:
        return False
    if record.get("version") != version or record.get("tier") != tier:
        return False
    folder = out / record["name"]
    return all((folder / f).is_file() for f in files_of(record))
