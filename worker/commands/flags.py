"""Numeric command-line flags, checked at parse time by the same constraints as the settings they mirror.

`setting_flag("max_record_bytes")` is an argparse `type=` that reads an int and checks it against
`WorkerSettings.max_record_bytes`'s constraints (so `--max-bytes -5` is refused as `CLAIMS_MAX_RECORD_BYTES=-5`
would be); `number_flag(float, gt=0)` does the same for a flag that mirrors no setting. A value out of bounds or
not a number is argparse's usage error (exit 2) naming the flag; like the settings' errors, it does not echo the
value.
"""

from __future__ import annotations

import argparse
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from worker.settings import WorkerSettings, env_name


class NumberFlag:
    """An argparse `type=`: text -> `kind`, validated by pydantic against `constraints`."""

    is_number_flag = True  # lets the CLI tests find every numeric flag

    def __init__(self, kind: type[int] | type[float], constraints: list[Any], *, setting: str | None = None) -> None:
        self.kind = kind
        self.setting = setting
        self.__name__ = kind.__name__  # argparse names the type in some of its messages
        # Annotated[int, Gt(0), ...]: the same constraint objects the settings field carries.
        annotation: Any = Annotated[(kind, *constraints)]
        self._adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def __call__(self, text: str) -> int | float:
        try:
            number = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                self._explained("an integer" if self.kind is int else "a number")
            ) from None
        try:
            value: int | float = self._adapter.validate_python(number)
        except ValidationError as error:
            detail = error.errors(include_url=False, include_input=False, include_context=False)[0]["msg"]
            raise argparse.ArgumentTypeError(self._explained(detail.removeprefix("Input ").lower())) from None
        return value

    def _explained(self, problem: str) -> str:
        problem = problem if problem.startswith("should") else f"should be {problem}"
        return f"{problem} (as {env_name(self.setting)})" if self.setting else problem

    def __repr__(self) -> str:
        return f"<NumberFlag {self.kind.__name__} setting={self.setting}>"


def setting_flag(setting: str) -> NumberFlag:
    """The `type=` of a flag that overrides (or mirrors) the numeric setting `setting` of `WorkerSettings`."""
    field = WorkerSettings.model_fields[setting]
    kind = field.annotation
    if kind not in (int, float):
        raise TypeError(f"{setting} is not a numeric setting")
    return NumberFlag(kind, list(field.metadata), setting=setting)  # type: ignore[arg-type]


def number_flag(
    kind: type[int] | type[float],
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> NumberFlag:
    """The `type=` of a numeric flag that mirrors no setting, with pydantic's bounds (ge, gt, le); floats refuse nan
    and infinities."""
    return NumberFlag(kind, [Field(ge=ge, gt=gt, le=le, allow_inf_nan=False if kind is float else None)])
