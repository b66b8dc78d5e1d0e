"""The report's figures, drawn with matplotlib (Agg, no display) from the results dict, as PNG bytes.

Each function returns None when there is nothing to draw (no training log, no speed run).
"""

from __future__ import annotations

import io
from typing import Any

from westron.compare.measure import MODE_TITLES

FRAMEWORK_COLORS = {"pt": "#e8590c", "tf": "#1971c2"}
MODE_COLORS = {
    "pt_eager": "#e8590c",
    "pt_compile": "#ffa94d",
    "tf_eager": "#1864ab",
    "tf_function": "#4dabf7",
    "tf_xla": "#99e9f2",
}
GENERATION_CELLS = (("batch1_greedy", "batch 1\ngreedy"), ("batch1_beam", "batch 1\nbeam"),
                    ("batch32_greedy", "batch 32\ngreedy"), ("batch32_beam", "batch 32\nbeam"))


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        from westron.errors import WestronError

        raise WestronError("the report's plots need matplotlib: pip install 'westron[viz]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 110})
    return plt


def _png(figure) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def training_figure(logs: list[dict[str, Any]]) -> bytes | None:
    """Loss, validation BLEU and tokens/s against the step, one line per log."""
    panels = [("loss", "training loss"), ("eval_bleu", "validation BLEU"), ("tokens_per_second", "target tokens/s")]
    panels = [(key, title) for key, title in panels if any(key in r for log in logs for r in log["records"])]
    if not panels:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
    for axis, (key, title) in zip(axes[0], panels):
        for log in logs:
            points = [(r["step"], r[key]) for r in log["records"] if key in r]
            if points:
                steps, values = zip(*points)
                color = FRAMEWORK_COLORS.get(log.get("framework"))
                axis.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3, color=color, label=log["label"])
        axis.set_title(title)
        axis.set_xlabel("step")
    axes[0][0].legend(frameon=False)
    return _png(figure)


def _bar_groups(axis, groups: list[str], series: dict[str, list[float | None]], log_scale: bool) -> None:
    """Grouped bars; a missing value (failed cell) is marked with a cross at the axis."""
    count = len(series)
    width = 0.8 / max(count, 1)
    for k, (mode, values) in enumerate(series.items()):
        xs = [g + (k - (count - 1) / 2) * width for g in range(len(groups))]
        heights = [v if v else 0 for v in values]
        axis.bar(xs, heights, width, color=MODE_COLORS.get(mode), edgecolor="#343a40", linewidth=0.5, label=MODE_TITLES[mode])
        for x, value in zip(xs, values):
            if not value:
                axis.annotate("x", (x, 0), xycoords=("data", "axes fraction"), ha="center", va="bottom", color="#c92a2a")
    axis.set_xticks(range(len(groups)), groups)
    if log_scale:
        axis.set_yscale("log")


def speed_figure(speed: dict[str, Any]) -> bytes | None:
    """Generated tokens/s per mode at batch 1 and 32, greedy and beam (x: failed)."""
    modes = speed.get("modes", {})
    series = {mode: [modes[mode].get("generation", {}).get(cell, {}).get("tokens_per_second") for cell, _ in GENERATION_CELLS]
              for mode in modes}
    values = [v for row in series.values() for v in row if v]
    if not values:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(9, 3.8))
    _bar_groups(axis, [label for _, label in GENERATION_CELLS], series, max(values) / min(values) > 30)
    axis.set_ylabel("generated tokens/s (median)")
    axis.set_title("Generation speed")
    # Below the axes: tall bars would hide a legend drawn inside them.
    axis.legend(frameon=False, ncol=min(len(series), 5), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return _png(figure)


def step_and_memory_figure(speed: dict[str, Any]) -> bytes | None:
    """Training step time and peak resident memory per mode, side by side (horizontal bars)."""
    modes = speed.get("modes", {})
    if not modes:
        return None
    names = list(modes)
    steps = [modes[m].get("training_step", {}).get("median_seconds") for m in names]
    memory = [modes[m].get("memory", {}).get("peak_rss_mib") for m in names]
    if not any(steps) and not any(memory):
        return None
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 1.6))
    labels = [MODE_TITLES[m] for m in names]
    colors = [MODE_COLORS.get(m) for m in names]
    for axis, values, title, scale in ((left, steps, "training step (ms, median)", 1000.0), (right, memory, "peak resident memory (MiB)", 1.0)):
        ys = range(len(names))
        axis.barh(ys, [v * scale if v else 0 for v in values], color=colors, edgecolor="#343a40", linewidth=0.5)
        for y, value in zip(ys, values):
            text = f" {value * scale:,.0f}" if value else " failed"
            axis.annotate(text, (value * scale if value else 0, y), va="center", fontsize=8)
        axis.set_yticks(list(ys), labels)
        axis.invert_yaxis()
        axis.set_title(title)
        axis.margins(x=0.18)
    right.set_yticklabels([])
    return _png(figure)
