"""The one check every rejection passes: it says why, in words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contract import ContractError
from contract.catalog import load_model


def expect_reason(err: Exception, *, prefix: str = "") -> str:
    """The rejection's reason; AssertionError when it is empty or does not start with ``prefix``."""
    reason = err.reason if isinstance(err, ContractError) else str(err)
    if isinstance(err, ContractError):
        assert str(err) == reason, "str() of a ContractError is its reason"
    assert reason.startswith(prefix), f"{reason!r} does not start with {prefix!r}"
    assert reason.removeprefix(prefix).strip(), f"{type(err).__name__} without a reason"
    return reason


def load_or_reason(model: type[Any], path: Path) -> Any:
    """The loaded model, or None when refused with a reason that names the file."""
    try:
        return load_model(model, path)
    except ContractError as err:
        expect_reason(err, prefix=f"{path}: ")
        return None
