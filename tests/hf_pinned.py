"""Numbers from Hugging Face internals, pinned in tests/fixtures (see make_hf_internals.py for why)."""

from __future__ import annotations

import functools
import json
import os

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@functools.cache
def _arrays() -> dict[str, np.ndarray]:
    with np.load(os.path.join(FIXTURES, "hf_internals.npz")) as archive:
        return {name: archive[name] for name in archive.files}


def hf_internal(name: str) -> np.ndarray:
    """One pinned array, e.g. "marian_table_64x32" or "activation_gelu_new"."""
    return _arrays()[name]


@functools.cache
def hf_language_codes() -> dict:
    """HF's FAIRSEQ_LANGUAGE_CODES: {"nllb": [...202 codes], "m2m100": {"m2m100": [...], "wmt21": [...]}}."""
    with open(os.path.join(FIXTURES, "hf_language_codes.json"), encoding="utf-8") as handle:
        return json.load(handle)
