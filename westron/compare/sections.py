"""EXTRA SECTIONS HOOK: optional report sections that other parts of Westron contribute.

A provider is a callable `provider(context) -> dict | None`. `context` holds:
    "settings"  the CompareSettings of the run
    "pairs"     the LanguagePairs (sources and references) of the test file
    "results"   the results dict so far (read it, do not change it)
    "loaded"    {model label: (pt_model, tf_model, tokenizer)} already loaded from each checkpoint
It returns None (nothing to add) or a section, which must be JSON-able (it goes into results.json,
and the report is re-rendered from there):
    {"id": "attention",                  a short name (used as the HTML anchor)
     "title": "Attention maps",
     "markdown": "text under the title",  Markdown; rendered as paragraphs in the HTML report
     "images": [{"caption": "...", "png_base64": "..."}],   optional figures (base64 PNG)
     "data": {...}}                       optional numbers, kept in the JSON only

Providers come from two places: the `extra_section_providers` argument of
`measure.run_compare` (how `westron quickstart` can add its own), and PROVIDERS below,
"module:function" names imported when present. The attention-maps module adds its renderer here.
A provider that raises becomes a section saying "failed: <one line>"; the report goes on.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

# "westron.<module>:<function>" providers run on every compare (a missing module is skipped).
PROVIDERS: list[str] = ["westron.attention_render:compare_section"]


def resolve(name: str) -> Callable[[dict[str, Any]], dict[str, Any] | None] | None:
    module_name, _, function_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return None
    return getattr(module, function_name, None)


def collect_extra_sections(context: dict[str, Any], providers: Iterable[Callable] | None = None) -> list[dict[str, Any]]:
    from westron.compare.worker import one_line

    callables = [resolve(name) for name in PROVIDERS] + list(providers or [])
    sections = []
    for provider in callables:
        if provider is None:
            continue
        name = getattr(provider, "__name__", "section")
        try:
            section = provider(context)
        except Exception as error:  # an optional section must not cost the report
            section = {"id": name, "title": name.replace("_", " "), "markdown": f"failed: {one_line(error)}"}
        if section is not None:
            sections.append(section)
    return sections
