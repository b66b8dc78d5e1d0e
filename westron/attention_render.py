"""Drawing attention maps: PNG grids (matplotlib, Agg) and a self-contained interactive HTML view.

    write_attention_outputs([maps_pt, maps_tf], "out/")   # what `westron attention` writes
    section = report_section([maps_pt, maps_tf], "report/images")   # the `compare` report's part

Token labels are drawn as the tokenizer split them. Scripts other than Latin need fonts:
matplotlib falls back glyph by glyph through `FONT_FAMILIES` (those installed), and since 3.11
it shapes text with libraqm, which applies the Unicode bidirectional algorithm, so Hebrew
tokens read right to left without reordering them by hand. A glyph that no installed font has
raises one `MissingGlyphWarning` naming the characters and the Debian packages to install.
The HTML view leaves fonts and direction to the browser (each label is `dir="auto"`).
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from westron.attention_maps import KIND_TITLES, KINDS, AttentionMaps, max_difference
from westron.errors import WestronError

# Tried in order for every glyph: Latin, Greek, Cyrillic (DejaVu), then the scripts it lacks.
FONT_FAMILIES = (
    "DejaVu Sans",
    "Noto Sans",
    "Noto Sans Hebrew",
    "Noto Sans Arabic",
    "Noto Sans Georgian",
    "Noto Sans Armenian",
    "Noto Sans Devanagari",
    "Noto Sans Thai",
    "Noto Sans CJK JP",
    "Noto Sans CJK KR",
    "Noto Sans CJK SC",
)
FONT_PACKAGES = "fonts-noto-core fonts-noto-cjk"
CELL_INCHES = 0.16  # per token on each axis of one map
MAX_PIXELS = 16000  # the longer side of a PNG; the resolution drops to stay under it
FRAMEWORK_NAMES = {"pt": "PyTorch", "tf": "TensorFlow"}


class MissingGlyphWarning(UserWarning):
    """A token holds characters no installed font can draw (they would show as empty boxes)."""


# ---- fonts ---------------------------------------------------------------------------------------------------


@functools.cache
def label_fonts() -> tuple[str, ...]:
    """The families of FONT_FAMILIES that matplotlib can use, in order.

    matplotlib caches its font list on first use and never looks again, so fonts installed
    after that (apt-get install fonts-noto-cjk) are registered here from the system's list.
    """
    from matplotlib import font_manager

    known = {entry.name for entry in font_manager.fontManager.ttflist}
    if not all(family in known for family in FONT_FAMILIES):
        for path in font_manager.findSystemFonts(fontext="ttf"):
            name = os.path.basename(path)
            if name.startswith(("Noto", "DejaVu")) and path not in _registered_paths(font_manager):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # an unreadable or odd font file: skip it
                    continue
        known = {entry.name for entry in font_manager.fontManager.ttflist}
    return tuple(family for family in FONT_FAMILIES if family in known)


def _registered_paths(font_manager) -> set[str]:
    return {entry.fname for entry in font_manager.fontManager.ttflist}


_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from font")


def _save_figure(figure, path: str) -> None:
    """savefig, atomically, turning matplotlib's per-glyph warnings into one MissingGlyphWarning."""
    from westron.file_utils import atomic_write

    missing: set[str] = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with atomic_write(path, "wb") as handle:
            figure.savefig(handle, format="png")
    for warning in caught:
        match = _MISSING_GLYPH.search(str(warning.message))
        if match:
            missing.add(chr(int(match.group(1))))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if missing:
        warnings.warn(
            f"no installed font can draw {', '.join(sorted(missing)[:12])}: these labels show as empty boxes "
            f"(Debian/Ubuntu: apt-get install {FONT_PACKAGES})",
            MissingGlyphWarning,
            stacklevel=3,
        )


# ---- PNG -------------------------------------------------------------------------------------------------------


def _check_same_input(maps_list: Sequence[AttentionMaps]) -> None:
    if not maps_list:
        raise WestronError("no attention maps to draw")
    first = maps_list[0]
    for other in maps_list[1:]:
        if other.source_tokens != first.source_tokens or other.target_tokens != first.target_tokens:
            raise WestronError("maps drawn side by side must be for the same source and target tokens")


def comparison_line(maps_list: Sequence[AttentionMaps]) -> str | None:
    """'max |PyTorch - TensorFlow| = 3.1e-07' for two maps of the same input; None for one."""
    if len(maps_list) != 2:
        return None
    first, second = maps_list
    names = " - ".join(FRAMEWORK_NAMES.get(m.framework, m.framework) for m in maps_list)
    return f"max |{names}| = {max_difference(first, second):.1e}"


def render_png(maps_list: Sequence[AttentionMaps], kind: str, path: str | os.PathLike, *, dpi: int = 100) -> str:
    """One PNG grid for one kind: a row per layer, a column per head (per framework, side by side).

    Each map has the query tokens down the side and the key tokens along the bottom, weights 0..1
    on one colour scale, so maps from two frameworks can be compared by eye.
    """
    import matplotlib
    import matplotlib.colors

    matplotlib.use("Agg", force=False)  # no display needed; keeps a notebook's own backend if set
    import matplotlib.pyplot as plt

    if kind not in KINDS:
        raise WestronError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    _check_same_input(maps_list)
    first = maps_list[0]
    queries, keys = first.query_tokens(kind), first.key_tokens(kind)
    layers, heads = first.layers[kind], first.heads[kind]
    columns = [(maps, h) for h in range(len(heads)) for maps in maps_list]  # pt, tf next to each other per head
    label_room = 0.09 * max(len(token) for token in queries + keys) + 0.4  # inches for the longest label
    cell_w = max(1.3, CELL_INCHES * len(keys))
    cell_h = max(1.3, CELL_INCHES * len(queries))
    width = label_room + cell_w * len(columns) + 1.0
    height = label_room + cell_h * len(layers) + 1.0
    dpi = min(dpi, int(MAX_PIXELS / max(width, height)))

    # A square-root colour scale: near-uniform rows (1/n each) stay visible next to peaked ones.
    norm = matplotlib.colors.PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)
    fonts = label_fonts()
    with matplotlib.rc_context({"font.family": list(fonts) or ["sans-serif"], "axes.titlesize": 8}):
        figure, axes = plt.subplots(
            len(layers), len(columns), figsize=(width, height), dpi=dpi, squeeze=False, sharex=True, sharey=True,
            layout="constrained",
        )  # fmt: skip
        try:
            image = None
            for row, layer in enumerate(layers):
                for column, (maps, h) in enumerate(columns):
                    ax = axes[row][column]
                    image = ax.imshow(maps.weights[kind][row, h], cmap="viridis", norm=norm, aspect="auto", interpolation="nearest")
                    framework = f" {maps.framework}" if len(maps_list) > 1 else ""
                    ax.set_title(f"layer {layer} head {heads[h]}{framework}")
                    ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=7)
                    ax.set_yticks(range(len(queries)), queries, fontsize=7)
                    ax.tick_params(length=0, labelbottom=row == len(layers) - 1, labelleft=column == 0)
            title = f"{KIND_TITLES[kind]}: {first.source}  →  {first.target}"
            line = comparison_line(maps_list)
            figure.suptitle(title if line is None else f"{title}\n{line}", fontsize=10)
            figure.colorbar(image, ax=axes, shrink=0.6, label="attention weight (square-root scale)", ticks=[0, 0.05, 0.2, 0.5, 1])
            path = os.fspath(path)
            _save_figure(figure, path)
        finally:
            plt.close(figure)
    return path


# ---- HTML ------------------------------------------------------------------------------------------------------

_VIEWER_CSS = """
.wa-root{font-family:system-ui,"DejaVu Sans","Noto Sans","Noto Sans Hebrew","Noto Sans Georgian","Noto Sans CJK JP",sans-serif;color:#1b1b1b;font-size:14px}
.wa-root h2{font-size:18px;margin:4px 0}
.wa-pair{margin:2px 0 8px 0}.wa-pair b{display:inline-block;width:64px;color:#555;font-weight:600}
.wa-controls{display:flex;gap:14px;align-items:center;flex-wrap:wrap;margin:8px 0;padding:8px;background:#f3f5f8;border-radius:6px}
.wa-controls button{border:1px solid #99a;background:#fff;padding:4px 10px;border-radius:4px;cursor:pointer;font-size:14px}
.wa-controls button.wa-on{background:#2b5cab;color:#fff;border-color:#2b5cab}
.wa-controls select{font-size:14px;padding:2px 4px}
.wa-diff{font-weight:600;color:#2b5cab}
.wa-panels{display:flex;gap:28px;flex-wrap:wrap;align-items:flex-start}
.wa-panel h3{font-size:15px;margin:6px 0}
.wa-grid{display:grid;gap:1px;background:#fff}
.wa-cell{width:var(--wa-cell);height:var(--wa-cell)}
.wa-cell.wa-row{outline:1px solid #f08a24;z-index:1}
.wa-lab{font-size:12px;white-space:nowrap;overflow:hidden;cursor:default;padding:0 3px;line-height:22px}
.wa-lab.wa-y{text-align:right;max-width:140px}
.wa-lab.wa-x{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;max-height:110px;line-height:var(--wa-cell);padding:3px 0}
.wa-lab.wa-hot{background:#f08a24;color:#fff;border-radius:3px}
.wa-text{margin:10px 0;line-height:2.1}
.wa-tok{display:inline-block;padding:0 5px;margin:1px;border-radius:4px;border:1px solid #ccd;cursor:default;line-height:1.6}
.wa-tok.wa-hot{border-color:#f08a24;outline:2px solid #f08a24}
.wa-hint{color:#666;font-size:12px}
.wa-readout{font-family:ui-monospace,monospace;font-size:12px;color:#333;min-height:16px}
"""

# A small vanilla-JS viewer: one function per root element, so a report can hold several.
_VIEWER_JS = r"""
window.westronAttentionViewer = window.westronAttentionViewer || function (root, data) {
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  const label = (tag, cls, text) => { const e = el(tag, cls, text); e.dir = "auto"; e.title = text; return e; };
  const state = { kind: data.kinds.includes("cross") ? "cross" : data.kinds[0], layer: 0, head: "mean", query: 0 };
  // square-root scale, as in the PNGs: near-uniform rows (1/n each) stay visible
  const colour = w => `rgba(43,92,171,${Math.sqrt(Math.min(1, Math.max(0, w))).toFixed(3)})`;
  const controls = el("div", "wa-controls"), panels = el("div", "wa-panels"), text = el("div", "wa-text");
  const readout = el("div", "wa-readout", "");
  const kindBox = el("span"), layerSel = el("select"), headSel = el("select");
  data.kinds.forEach(kind => { const b = el("button", "", data.titles[kind]); b.onclick = () => { state.kind = kind; state.query = 0; fillSelects(); draw(); }; b.dataset.kind = kind; kindBox.appendChild(b); });
  controls.append(kindBox, el("span", "", "layer "), layerSel, el("span", "", "head "), headSel);
  if (data.comparison) controls.append(el("span", "wa-diff", data.comparison));
  controls.append(el("span", "wa-hint", "hover a token or a cell to see where it attends; colour: √weight"));
  root.append(controls, panels, readout, text);
  layerSel.onchange = () => { state.layer = +layerSel.value; draw(); };
  headSel.onchange = () => { state.head = headSel.value === "mean" ? "mean" : +headSel.value; draw(); };
  function fillSelects() {
    const k = data.maps[state.kind];
    layerSel.replaceChildren(...k.layers.map((l, i) => { const o = el("option", "", String(l)); o.value = i; return o; }));
    const heads = [el("option", "", "mean of heads")]; heads[0].value = "mean";
    k.heads.forEach((h, i) => { const o = el("option", "", String(h)); o.value = i; heads.push(o); });
    headSel.replaceChildren(...heads);
    state.layer = Math.min(state.layer, k.layers.length - 1); layerSel.value = state.layer; headSel.value = state.head;
    if (headSel.value === "") { state.head = "mean"; headSel.value = "mean"; }
  }
  function matrix(fw) {
    const layer = data.maps[state.kind].weights[fw][state.layer];
    if (state.head !== "mean") return layer[state.head];
    return layer[0].map((row, q) => row.map((_, k) => layer.reduce((s, h) => s + h[q][k], 0) / layer.length));
  }
  function draw() {
    kindBox.querySelectorAll("button").forEach(b => b.classList.toggle("wa-on", b.dataset.kind === state.kind));
    const qTok = state.kind === "encoder" ? data.source_tokens : data.target_tokens;
    const kTok = state.kind === "decoder" ? data.target_tokens : data.source_tokens;
    panels.replaceChildren();
    data.frameworks.forEach(fw => {
      const m = matrix(fw), panel = el("div", "wa-panel"), grid = el("div", "wa-grid");
      panel.appendChild(el("h3", "", data.framework_names[fw] + " · " + data.titles[state.kind]));
      // two frameworks side by side fit a 1400-pixel window up to ~30 tokens; never below 12 pixels
      const cell = Math.max(12, Math.min(22, Math.floor((data.frameworks.length > 1 ? 520 : 1000) / kTok.length)));
      grid.style.setProperty("--wa-cell", cell + "px");
      grid.style.gridTemplateColumns = `auto repeat(${kTok.length}, ${cell}px)`;
      grid.appendChild(el("div"));
      kTok.forEach(t => grid.appendChild(label("div", "wa-lab wa-x", t)));
      qTok.forEach((t, q) => {
        const y = label("div", "wa-lab wa-y", t); y.dataset.q = q; y.onmouseenter = () => focus(q); grid.appendChild(y);
        m[q].forEach((w, k) => {
          const c = el("div", "wa-cell"); c.style.background = colour(w); c.dataset.q = q;
          c.onmouseenter = () => { focus(q); readout.textContent = `${fw}: ${qTok[q]} → ${kTok[k]} = ${w.toFixed(4)}`; };
          grid.appendChild(c);
        });
      });
      panel.appendChild(grid); panels.appendChild(panel);
    });
    focus(state.query);
  }
  function focus(q) {
    state.query = q;
    root.querySelectorAll(".wa-y, .wa-cell").forEach(e => e.classList.toggle(e.classList.contains("wa-cell") ? "wa-row" : "wa-hot", q !== null && +e.dataset.q === q));
    const qTok = state.kind === "encoder" ? data.source_tokens : data.target_tokens;
    const kTok = state.kind === "decoder" ? data.target_tokens : data.source_tokens;
    const m = matrix(data.frameworks[0]);
    const qLine = el("div"), kLine = el("div");
    qLine.appendChild(el("b", "", state.kind === "encoder" ? "source (queries): " : "target (queries): "));
    qTok.forEach((t, i) => { const s = label("span", "wa-tok" + (i === q ? " wa-hot" : ""), t); s.onmouseenter = () => focus(i); qLine.appendChild(s); });
    kLine.appendChild(el("b", "", q === null ? "attends to: (hover a query token)" : `“${qTok[q]}” attends to: `));
    kTok.forEach((t, k) => { const s = label("span", "wa-tok", t); if (q !== null) { const w = m[q][k]; s.style.background = colour(w); s.style.color = w > 0.25 ? "#fff" : "#1b1b1b"; s.title = `${t}: ${w.toFixed(4)}`; } kLine.appendChild(s); });
    // a line of Hebrew or Arabic tokens reads right to left, like the sentence itself
    const rtl = tokens => /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]/.test(tokens.join("")) && !/[A-Za-z\u3040-\u9fff]/.test(tokens.filter(t => !/^<.*>$/.test(t)).join(""));
    qLine.dir = rtl(qTok) ? "rtl" : "ltr"; kLine.dir = rtl(kTok) ? "rtl" : "ltr";
    text.replaceChildren(qLine, kLine);
  }
  fillSelects(); draw();
};
"""


def _viewer_data(maps_list: Sequence[AttentionMaps]) -> dict:
    first = maps_list[0]
    return {
        "source": first.source,
        "target": first.target,
        "source_tokens": first.source_tokens,
        "target_tokens": first.target_tokens,
        "frameworks": [maps.framework for maps in maps_list],
        "framework_names": {maps.framework: FRAMEWORK_NAMES.get(maps.framework, maps.framework) for maps in maps_list},
        "kinds": list(KINDS),
        "titles": KIND_TITLES,
        "comparison": comparison_line(maps_list),
        "maps": {
            kind: {
                "layers": first.layers[kind],
                "heads": first.heads[kind],
                # 4 decimals: the view shows 4; the .npz keeps full precision
                "weights": {maps.framework: np.round(maps.weights[kind].astype(np.float64), 4).tolist() for maps in maps_list},
            }
            for kind in KINDS
        },
    }


def html_fragment(maps_list: Sequence[AttentionMaps], element_id: str = "westron-attention") -> str:
    """The interactive view as one <div> with its style, data and script inlined: embeddable in a report."""
    _check_same_input(maps_list)
    if not re.fullmatch(r"[A-Za-z][\w-]*", element_id):
        raise WestronError(f"element id {element_id!r} must be a letter followed by letters, digits, - or _")
    first = maps_list[0]
    # JSON inside <script>: "</" would end the element early; "<\/" means the same to JavaScript.
    payload = json.dumps(_viewer_data(maps_list), ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return (
        f'<div class="wa-root" id="{element_id}">\n'
        f"<style>{_VIEWER_CSS}</style>\n"
        f'<div class="wa-pair"><b>source</b><span dir="auto">{html.escape(first.source)}</span></div>\n'
        f'<div class="wa-pair"><b>target</b><span dir="auto">{html.escape(first.target)}</span></div>\n'
        f'<script type="application/json" id="{element_id}-data">{payload}</script>\n'
        f"<script>{_VIEWER_JS}\n"
        f'westronAttentionViewer(document.getElementById("{element_id}"), '
        f'JSON.parse(document.getElementById("{element_id}-data").textContent));</script>\n'
        "</div>"
    )


def render_html(maps_list: Sequence[AttentionMaps], path: str | os.PathLike, title: str = "Attention maps") -> str:
    """A whole self-contained page (no network: data, style and script inlined), written atomically."""
    from westron.file_utils import atomic_write

    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
        f"<h2 style=\"font-family:system-ui,sans-serif\">{html.escape(title)}</h2>\n"
        f"{html_fragment(maps_list)}\n</body>\n</html>\n"
    )
    path = os.fspath(path)
    with atomic_write(path) as handle:
        handle.write(page)
    return path


# ---- everything at once: the CLI's outputs and the report's section ---------------------------------------------


def write_attention_outputs(maps_list: Sequence[AttentionMaps], folder: str | os.PathLike) -> list[str]:
    """attention_<framework>.npz per framework, <kind>.png per kind and attention.html, into `folder`."""
    _check_same_input(maps_list)
    folder = os.fspath(folder)
    written = []
    for maps in maps_list:
        path = os.path.join(folder, f"attention_{maps.framework}.npz")
        maps.save_npz(path)
        written.append(path)
    for kind in KINDS:
        written.append(render_png(maps_list, kind, os.path.join(folder, f"{kind}.png")))
    written.append(render_html(maps_list, os.path.join(folder, "attention.html")))
    return written


@dataclass
class ReportSection:
    """The attention part of a report: Markdown (images by relative path) and an HTML fragment."""

    markdown: str
    html: str
    images: list[str]  # the PNG files written


def report_section(
    maps_list: Sequence[AttentionMaps],
    image_dir: str | os.PathLike,
    *,
    relative_to: str | os.PathLike | None = None,
    layers: Sequence[int] | None = (-1,),
    element_id: str = "westron-attention",
) -> ReportSection:
    """The `compare` report's attention section for one sample sentence.

    Writes one PNG per kind into image_dir (the last layer by default: a report stays short;
    `layers=None` draws every layer) and returns Markdown linking them relative to `relative_to`
    (the report's folder; default image_dir's parent) plus the interactive HTML fragment, which
    holds every layer and head.
    """
    _check_same_input(maps_list)
    image_dir = os.fspath(image_dir)
    os.makedirs(image_dir, exist_ok=True)
    base = os.fspath(relative_to) if relative_to is not None else os.path.dirname(os.path.abspath(image_dir))
    chosen = [maps.select(layers=layers) for maps in maps_list]
    first = maps_list[0]
    lines = [
        "## Attention",
        "",
        f"Source: {first.source}  ",
        f"Target: {first.target}  ",
        f"Frameworks: {', '.join(FRAMEWORK_NAMES.get(m.framework, m.framework) for m in maps_list)}",
    ]
    comparison = comparison_line(maps_list)
    if comparison:
        lines.append(f"  \nPyTorch and TensorFlow weights on the same input: {comparison}")
    lines.append("")
    images = []
    for kind in KINDS:
        path = render_png(chosen, kind, os.path.join(image_dir, f"attention_{kind}.png"))
        images.append(path)
        lines += [f"![{KIND_TITLES[kind]}]({os.path.relpath(path, base)})", ""]
    return ReportSection("\n".join(lines), html_fragment(maps_list, element_id), images)


def compare_section(context: dict) -> dict | None:
    """The `westron compare` report's attention section (its extra-sections hook, compare/sections.py).

    The first test sentence through the first model in both frameworks: TensorFlow is forced on
    PyTorch's translation, so the two maps are of the same tokens and their difference is printed.
    Images are embedded (base64 PNG) because the report is re-rendered from its JSON.
    """
    import base64
    import tempfile

    from westron.attention_maps import attention

    if not context.get("loaded") or not context.get("pairs"):
        return None
    pt_model, tf_model, tokenizer = next(iter(context["loaded"].values()))
    pair = context["pairs"][0]
    source = next((text for text in pair.sources if text.strip()), None)
    if source is None:
        return None
    codes = dict(src_lang=pair.src_code, tgt_lang=pair.tgt_code, source_prefix=context["settings"].source_prefix)
    limit = min(32, context["settings"].max_new_tokens or 32)  # --max-new-tokens caps this translation too
    maps_list = [attention(pt_model, tokenizer, source, **codes, num_beams=1, max_new_tokens=limit)]
    if tf_model is not None:
        maps_list.append(attention(tf_model, tokenizer, source, **codes, target_ids=maps_list[0].target_ids))
    with tempfile.TemporaryDirectory() as scratch:
        section = report_section(maps_list, scratch)
        images = []
        for path, kind in zip(section.images, KINDS):
            with open(path, "rb") as handle:
                images.append({"caption": KIND_TITLES[kind], "png_base64": base64.b64encode(handle.read()).decode("ascii")})
    first = maps_list[0]
    lines = [f"Source: {first.source}  ", f"Target ({FRAMEWORK_NAMES.get(first.framework, first.framework)}'s greedy translation): {first.target}"]
    comparison = comparison_line(maps_list)
    if comparison:
        lines.append(f"  \nThe same input in both frameworks: {comparison}")
    lines.append("\nLast layer, every head; `westron attention --framework both` draws every layer with an interactive view.")
    data = {"target_ids": first.target_ids}  # the decoder input drawn: decoder start, then the translation
    if len(maps_list) == 2:
        data["max_difference"] = max_difference(maps_list[0], maps_list[1])
    return {"id": "attention", "title": "Attention maps", "markdown": "\n".join(lines), "images": images, "data": data}
