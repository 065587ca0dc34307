"""Fixtures of the adapter tests: the public samples, our examples, and one `X12Maps` per test session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.convert import Conversion, InputFormat, convert_bytes
from adapters.x12.maps import X12Maps

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).resolve().parent / "samples"
X12_SAMPLES = SAMPLES / "x12"
FHIR_SAMPLES = SAMPLES / "fhir"
EXAMPLES = REPO_ROOT / "examples"
EXAMPLE_837P = EXAMPLES / "837p-j9353.x12"
EXAMPLE_837I = EXAMPLES / "837i-j9353.x12"
EXAMPLE_FHIR = EXAMPLES / "fhir-r4-j9353-bundle.json"


@pytest.fixture(scope="session")
def maps() -> X12Maps:
    return X12Maps()


@pytest.fixture
def convert(maps: X12Maps) -> Callable[..., Conversion]:
    def run(data: bytes, input_format: InputFormat = InputFormat.AUTO, **options: Any) -> Conversion:
        return convert_bytes(data, input_format, maps=maps, **options)

    return run


def documents(conversion: Conversion) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in conversion.records]


def with_segments_replaced(text: str, replacements: dict[str, str]) -> str:
    """An interchange with whole segments replaced (by their text without terminator) and SE01 recounted."""
    segments = [segment.strip() for segment in text.split("~") if segment.strip()]
    out: list[str] = []
    for segment in segments:
        replacement = replacements.get(segment, segment)
        out.extend(part for part in replacement.split("~") if part)
    start = next(index for index, segment in enumerate(out) if segment.startswith("ST*"))
    end = next(index for index, segment in enumerate(out) if segment.startswith("SE*"))
    _, _, control = out[end].split("*")
    out[end] = f"SE*{end - start + 1}*{control}"
    return "~\n".join(out) + "~\n"
