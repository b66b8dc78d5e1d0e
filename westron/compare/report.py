"""results.json -> report.md and report.html: the report is drawn from the numbers alone.

    write_reports(results, "out/")   # out/report.md (+ out/plots/*.png), out/report.html (self-contained)

Both formats come from one list of blocks (headings, paragraphs, tables, figures), so they say
the same thing; the HTML embeds its figures as base64 PNG and needs no other file.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from westron.compare.measure import MODE_TITLES, SCHEMA
from westron.errors import WestronError
from westron.file_utils import atomic_write

REPORT_MD, REPORT_HTML, RESULTS_JSON, PLOTS_DIR = "report.md", "report.html", "results.json", "plots"
TF_GPU_NOTE = (
    "TensorFlow maps nearly all of a GPU's memory when it starts unless memory growth is on; these runs turn it on "
    "(`tf.config.experimental.set_memory_growth`), so TensorFlow's peak is what it used, comparable with PyTorch's."
)


# ---- blocks -----------------------------------------------------------------------------------------------


@dataclass
class Block:
    kind: str  # "h2", "h3", "p", "table", "figure", "note", "raw_md"
    text: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    png: bytes | None = None
    name: str = ""  # figure file name / anchor
    status: str = ""  # "ok" / "bad" for notes


def fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        # Tiny logit differences keep their digits (1.2e-07); a tiny time is just 0.00.
        tiny = value != 0 and abs(value) < 10**-digits and digits >= 4
        text = f"{value:.2e}" if tiny else f"{value:,.{digits}f}"
    else:
        text = str(value)
    return f"{text}{unit}"


def share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def cell(entry: dict[str, Any] | None, render) -> str:
    """A table cell for a measurement: its value, or "failed: <reason>"."""
    if not entry:
        return "–"
    if "error" in entry:
        return f"failed: {entry['error']}"
    return render(entry)


# ---- sections ---------------------------------------------------------------------------------------------


def summary_blocks(results: dict[str, Any]) -> list[Block]:
    settings = results["settings"]
    models = ", ".join(f"`{m['label']}` ({m['model_type']}, {m['path']})" for m in settings["models"])
    pairs = ", ".join(f"{name} ({settings['sentences'][name]} sentences)" for name in settings["pairs"])
    blocks = [Block("p", f"Models: {models}. Test file: `{settings['test_file']}`, {pairs}. "
                         f"Created {results['created']}{' with --quick (smoke-test sizes: few sentences, one run)' if settings.get('quick') else ''}.")]
    for model in results.get("models", []):
        eq = model["equivalence"]
        verdict = "equivalent" if eq["equivalent"] else "NOT equivalent"
        blocks.append(Block(
            "note",
            f"`{model['label']}`: PyTorch and TensorFlow are **{verdict}**: max |logit difference| "
            f"{fmt(eq['logits']['max_abs_diff'], 6)} (tolerance {fmt(eq['logits']['tolerance'], 6)}), identical outputs "
            f"{share(eq['identical_share']['greedy'])} greedy, {share(eq['identical_share']['beam'])} beam.",
            status="ok" if eq["equivalent"] else "bad",
        ))
    return blocks


def equivalence_blocks(results: dict[str, Any]) -> list[Block]:
    blocks = [Block("h2", "Equivalence", name="equivalence")]
    rows = []
    for model in results.get("models", []):
        eq = model["equivalence"]
        logits = eq["logits"]
        rows.append([
            model["label"], str(eq["sentences"]), fmt(logits["max_abs_diff"], 6), fmt(logits["tolerance"], 6),
            fmt(logits["max_abs_logit"], 2), share(eq["identical_share"]["greedy"]), share(eq["identical_share"]["beam"]),
            "equivalent" if eq["equivalent"] else "NOT equivalent",
        ])
    blocks.append(Block("table", headers=["model", "sentences", "max abs logit diff", "tolerance", "max abs logit",
                                          "identical greedy", "identical beam", "verdict"], rows=rows))
    for model in results.get("models", []):
        eq = model["equivalence"]
        if eq["differences"]:
            blocks.append(Block("h3", f"Sentences whose outputs differ: {model['label']} (first {eq['differences_listed_at_most']})"))
            blocks.append(Block("table", headers=["pair", "#", "decoding", "source", "PyTorch", "TensorFlow"], rows=[
                [d["pair"], str(d["index"] + 1), d["decoding"], d["source"], d["pt"],
                 d["tf"] + (" (same text, other token ids)" if d["same_text"] else "")]
                for d in eq["differences"]
            ]))
    if results.get("models"):
        blocks.append(Block("p", f"How: {results['models'][0]['equivalence']['method']}."))
    return blocks


def quality_blocks(results: dict[str, Any]) -> list[Block]:
    blocks = [Block("h2", "Quality", name="quality")]
    rows, pair_rows, signatures = [], [], {}
    for model in results.get("models", []):
        beams = model["equivalence"]["num_beams"]
        for fw, by_decoding in model["quality"].items():
            for decoding, entry in by_decoding.items():
                scores = entry["all"]
                signatures.update(scores["signatures"])
                name = f"{'PyTorch' if fw == 'pt' else 'TensorFlow'}"
                how = "greedy" if decoding == "greedy" else f"beam {beams}"
                rows.append([model["label"], name, how, str(scores["num_sentences"]), fmt(scores["bleu"]),
                             fmt(scores["chrf"]), fmt(scores["ter"]), fmt(scores["length_ratio"], 3)])
                for pair, pair_scores in entry.get("per_pair", {}).items():
                    pair_rows.append([model["label"], pair, name, how, fmt(pair_scores["bleu"]), fmt(pair_scores["chrf"]),
                                      fmt(pair_scores["ter"])])
    blocks.append(Block("table", headers=["model", "framework", "decoding", "sentences", "BLEU", "chrF2", "TER", "length ratio"],
                        rows=rows))
    if pair_rows:
        blocks.append(Block("h3", "Per language pair"))
        blocks.append(Block("table", headers=["model", "pair", "framework", "decoding", "BLEU", "chrF2", "TER"], rows=pair_rows))
    if signatures:
        blocks.append(Block("p", "sacrebleu signatures: " + "; ".join(f"{k}: `{v}`" for k, v in signatures.items()) + "."))
    if results.get("models"):
        blocks.append(Block("p", f"How: {results['models'][0]['quality_method']}."))
    return blocks


def training_blocks(results: dict[str, Any], figures: dict[str, bytes]) -> list[Block]:
    from westron.compare.plots import training_figure

    blocks = [Block("h2", "Training", name="training")]
    logs = results.get("training", {}).get("logs", [])
    if not logs:
        blocks.append(Block("p", "No training logs: the checkpoints did not come from `westron train` (no log.jsonl beside "
                                 "them) and no `--training-log` was given."))
        return blocks
    png = training_figure(logs)
    if png:
        figures["training"] = png
        blocks.append(Block("figure", "Loss, validation BLEU and training tokens/s against the step", png=png, name="training"))
    rows = []
    for log in logs:
        records = log["records"]
        last_loss = next((r["loss"] for r in reversed(records) if "loss" in r), None)
        bleus = [r["eval_bleu"] for r in records if "eval_bleu" in r]
        speeds = [r["tokens_per_second"] for r in records if "tokens_per_second" in r]
        rows.append([log["label"], log.get("framework") or "?", str(records[-1]["step"] if records else 0), fmt(last_loss, 3),
                     fmt(max(bleus) if bleus else None), fmt(sum(speeds) / len(speeds) if speeds else None, 0), log["path"]])
    blocks.append(Block("table", headers=["log", "framework", "last step", "last loss", "best validation BLEU",
                                          "mean tokens/s", "file"], rows=rows))
    return blocks


def speed_blocks(results: dict[str, Any], figures: dict[str, bytes]) -> list[Block]:
    from westron.compare.plots import GENERATION_CELLS, speed_figure, step_and_memory_figure

    blocks = [Block("h2", "Speed", name="speed")]
    speed = results.get("speed")
    if not speed:
        blocks.append(Block("p", "Not measured (--modes none)."))
        return blocks
    modes = speed["modes"]
    method = speed["method"]
    blocks.append(Block("p", f"Model `{speed['model']}`, pair {speed['pair']}, device request `{speed['device_requested']}`. "
                             f"Batch 1 over {method['batch_sizes']['1']} sentences, batch 32 over {method['batch_sizes']['32']}; "
                             f"beam = {method['num_beams']['beam']} beams. Cells: generated tokens/s (sentences/s)."))
    rows = []
    for mode, result in modes.items():
        if "error" in result:
            rows.append([MODE_TITLES[mode], result.get("device", "–")] + [f"failed: {result['error']}"] * len(GENERATION_CELLS))
            continue
        generation = result.get("generation", {})
        rows.append([MODE_TITLES[mode], result.get("device", "–")] + [
            cell(generation.get(key), lambda e: f"{fmt(e['tokens_per_second'], 0)} ({fmt(e['sentences_per_second'], 1)})")
            for key, _ in GENERATION_CELLS
        ])
    headers = ["mode", "device"] + [label.replace("\n", " ") for _, label in GENERATION_CELLS]
    blocks.append(Block("table", headers=headers, rows=rows))
    png = speed_figure(speed)
    if png:
        figures["speed"] = png
        blocks.append(Block("figure", "Generated tokens per second (median pass); x marks a failed cell", png=png, name="speed"))

    blocks.append(Block("h3", "Compile and trace time (first pass - median pass, seconds)"))
    rows = []
    for mode, result in modes.items():
        generation = result.get("generation", {})
        rows.append([MODE_TITLES[mode]] + [cell(generation.get(key), lambda e: fmt(e["compile_seconds"], 2))
                                           for key, _ in GENERATION_CELLS]
                    + [cell(result.get("training_step"), lambda e: fmt(e["compile_seconds"], 2)),
                       fmt(result.get("load_seconds"), 2)])
    blocks.append(Block("table", headers=["mode"] + [label.replace("\n", " ") for _, label in GENERATION_CELLS]
                        + ["training step", "model load"], rows=rows))

    blocks.append(Block("h3", "One training step"))
    rows = []
    for mode, result in modes.items():
        step = result.get("training_step") if "error" not in result else result
        rows.append([MODE_TITLES[mode],
                     cell(step, lambda e: fmt(1000 * e["median_seconds"], 1)),
                     cell(step, lambda e: fmt(e["target_tokens_per_second"], 0)),
                     cell(step, lambda e: f"{e['batch_size']} × {e['target_tokens']} target tokens"),
                     cell(step, lambda e: fmt(e["first_step_seconds"], 2))])
    blocks.append(Block("table", headers=["mode", "step (ms, median)", "target tokens/s", "batch", "first step (s)"], rows=rows))
    png = step_and_memory_figure(speed)
    if png:
        figures["step_memory"] = png
        blocks.append(Block("figure", "Training step time and peak resident memory per mode", png=png, name="step_memory"))
    blocks.append(Block("p", f"How: {method['process']}. Generation: {method['generation']}. "
                             f"Training step: {method['training_step']}."))
    return blocks


def memory_blocks(results: dict[str, Any]) -> list[Block]:
    blocks = [Block("h2", "Memory", name="memory")]
    speed = results.get("speed")
    if not speed:
        blocks.append(Block("p", "Not measured (--modes none)."))
        return blocks
    rows, on_gpu = [], False
    for mode, result in speed["modes"].items():
        if "error" in result:
            rows.append([MODE_TITLES[mode], f"failed: {result['error']}", "–", "–", "–"])
            continue
        memory, gpu = result.get("memory", {}), result.get("memory", {}).get("gpu", {})
        on_gpu = on_gpu or bool(gpu)
        if "max_memory_allocated_mib" in gpu:
            gpu_text = f"allocated {fmt(gpu['max_memory_allocated_mib'], 0)}, reserved {fmt(gpu['max_memory_reserved_mib'], 0)}"
        elif "peak_mib" in gpu:
            gpu_text = f"peak {fmt(gpu['peak_mib'], 0)}"
        else:
            gpu_text = "–"
        rows.append([MODE_TITLES[mode], fmt(memory.get("peak_rss_mib"), 0),
                     fmt(result.get("memory_after_load", {}).get("rss_mib"), 0), result.get("device", "–"), gpu_text])
    blocks.append(Block("table", headers=["mode", "peak resident (MiB)", "resident after load (MiB)", "device",
                                          "GPU peak (MiB)"], rows=rows))
    blocks.append(Block("p", f"How: {speed['method']['memory']}."))
    if on_gpu:
        blocks.append(Block("note", TF_GPU_NOTE, status="ok"))
    else:
        blocks.append(Block("p", "No GPU was used. " + TF_GPU_NOTE))
    return blocks


def devices_blocks(results: dict[str, Any]) -> list[Block]:
    blocks = [Block("h2", "Devices", name="devices")]
    devices = results.get("devices") or {}
    if not devices:
        blocks.append(Block("p", "Not recorded (no speed worker ran)."))
        return blocks
    rows = []
    for fw, seen in devices.items():
        gpus = ", ".join(g["name"] for g in seen.get("gpus", [])) or "none"
        threads = seen.get("threads") or {}
        rows.append(["PyTorch" if fw == "pt" else "TensorFlow", seen.get("device_used", "–"), gpus,
                     f"intra-op {threads.get('intra_op')}, inter-op {threads.get('inter_op')}", seen.get("placement", "–")])
    blocks.append(Block("table", headers=["framework", "device used", "GPUs seen", "threads", "placement"], rows=rows))
    blocks.append(Block("p", "TensorFlow's thread count 0 means its default (one per usable core)."))
    return blocks


def environment_blocks(results: dict[str, Any]) -> list[Block]:
    env = results.get("environment", {})
    blocks = [Block("h2", "Environment", name="environment")]
    gpus = ", ".join(f"{g['name']} ({g['memory']}, driver {g['driver']})" for g in env.get("gpus", [])) or "none (nvidia-smi)"
    variables = ", ".join(f"{k}={v}" for k, v in env.get("thread_variables", {}).items() if v is not None) or "none set"
    rows = [["CPU", env.get("cpu_model", "–")], ["CPUs", f"{env.get('usable_cpus')} usable of {env.get('logical_cpus')} logical"],
            ["GPUs", gpus], ["thread variables", variables], ["Python", env.get("python", "–")], ["platform", env.get("platform", "–")]]
    rows += [[name, version] for name, version in env.get("versions", {}).items() if version]
    blocks.append(Block("table", headers=["", ""], rows=rows))
    return blocks


def extra_blocks(results: dict[str, Any], figures: dict[str, bytes]) -> list[Block]:
    """EXTRA SECTIONS HOOK: sections contributed through westron.compare.sections (attention maps, ...)."""
    blocks = []
    for number, section in enumerate(results.get("extra_sections", [])):
        anchor = re.sub(r"[^a-z0-9_-]", "-", str(section.get("id", f"extra-{number}")).lower())
        blocks.append(Block("h2", section.get("title", anchor), name=anchor))
        if section.get("markdown"):
            blocks.append(Block("raw_md", section["markdown"]))
        for k, image in enumerate(section.get("images", [])):
            png = base64.b64decode(image["png_base64"])
            name = f"{anchor}-{k}"
            figures[name] = png
            blocks.append(Block("figure", image.get("caption", ""), png=png, name=name))
    return blocks


def report_blocks(results: dict[str, Any]) -> tuple[list[Block], dict[str, bytes]]:
    if results.get("schema") != SCHEMA:
        raise WestronError(f"not a westron compare results file (schema {results.get('schema')!r}, expected {SCHEMA!r})")
    figures: dict[str, bytes] = {}
    blocks = summary_blocks(results)
    blocks += equivalence_blocks(results)
    blocks += quality_blocks(results)
    blocks += training_blocks(results, figures)
    blocks += speed_blocks(results, figures)
    blocks += memory_blocks(results)
    blocks += devices_blocks(results)
    blocks += environment_blocks(results)
    blocks += extra_blocks(results, figures)
    return blocks, figures


# ---- Markdown ---------------------------------------------------------------------------------------------


def md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def raw_markdown_html(paragraph: str) -> str:
    """One paragraph of an extra section's Markdown: a pipe table, or text with its hard line breaks."""
    lines = [line.strip() for line in paragraph.strip().splitlines()]
    if len(lines) >= 2 and all(line.startswith("|") and line.endswith("|") for line in lines):
        cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
        head = "".join(f"<th>{inline(cell)}</th>" for cell in cells[0])
        rows = [row for row in cells[1:] if not all(set(cell) <= set("-: ") for cell in row)]  # the |---| line
        body = "".join("<tr>" + "".join(f"<td>{inline(cell)}</td>" for cell in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return "<p>" + "<br>".join(inline(line) for line in paragraph.strip().split("  \n")) + "</p>"


def render_markdown(blocks: list[Block]) -> str:
    lines = ["# Westron compare: PyTorch and TensorFlow side by side", ""]
    for block in blocks:
        if block.kind in ("h2", "h3"):
            lines += [("## " if block.kind == "h2" else "### ") + block.text, ""]
        elif block.kind == "p" or block.kind == "raw_md":
            lines += [block.text, ""]
        elif block.kind == "note":
            lines += [("> " if block.status == "ok" else "> **Warning:** ") + block.text, ""]
        elif block.kind == "table":
            lines.append("| " + " | ".join(md_cell(h) for h in block.headers) + " |")
            lines.append("|" + "|".join("---" for _ in block.headers) + "|")
            lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif block.kind == "figure":
            lines += [f"![{block.text}]({PLOTS_DIR}/{block.name}.png)", ""]
    return "\n".join(lines).rstrip() + "\n"


# ---- HTML -------------------------------------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#212529;background:#f8f9fa;margin:0}
main{max-width:1160px;margin:0 auto;padding:24px 32px 48px;background:#fff;box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{font-size:1.7em;margin:.2em 0 .6em;border-bottom:3px solid #e8590c;padding-bottom:.3em}
h2{font-size:1.3em;margin:1.6em 0 .5em;padding-top:.4em;border-top:1px solid #dee2e6;color:#1864ab}
h3{font-size:1.05em;margin:1.2em 0 .4em}
nav{font-size:.9em;margin-bottom:1em}nav a{margin-right:1em;color:#1971c2;text-decoration:none}
p{line-height:1.5;margin:.5em 0}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.88em;width:100%}
th,td{border:1px solid #dee2e6;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5;font-weight:600}tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.failed{color:#c92a2a;font-size:.9em}
code{background:#f1f3f5;padding:1px 4px;border-radius:3px;font-size:.92em}
.note{padding:8px 12px;border-radius:4px;margin:.5em 0;border-left:4px solid}
.note.ok{background:#ebfbee;border-color:#2f9e44}.note.bad{background:#fff5f5;border-color:#e03131;font-weight:600}
figure{margin:.8em 0 1.2em;text-align:center}figure img{max-width:100%;border:1px solid #e9ecef}
figcaption{font-size:.85em;color:#495057;margin-top:.3em}
"""
NUMBER = re.compile(r"^[−\-–]?[\d,]*\.?\d+(e[-+]?\d+)?%?( \([\d,.]+\))?$")


def inline(text: str) -> str:
    """Escapes text and turns Markdown's `code` and **bold** into HTML."""
    escaped = html.escape(str(text))
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def html_cell(text: str) -> str:
    css = "failed" if str(text).startswith(("failed", "NOT equivalent")) else "num" if NUMBER.match(str(text)) else ""
    return f"<td class=\"{css}\">{inline(text)}</td>" if css else f"<td>{inline(text)}</td>"


def render_html(blocks: list[Block]) -> str:
    parts = []
    anchors = [(b.name, b.text) for b in blocks if b.kind == "h2"]
    for block in blocks:
        if block.kind in ("h2", "h3"):
            anchor = f' id="{html.escape(block.name)}"' if block.name else ""
            parts.append(f"<{block.kind}{anchor}>{inline(block.text)}</{block.kind}>")
        elif block.kind == "p":
            parts.append(f"<p>{inline(block.text)}</p>")
        elif block.kind == "raw_md":
            parts += [raw_markdown_html(paragraph) for paragraph in block.text.split("\n\n") if paragraph.strip()]
        elif block.kind == "note":
            parts.append(f'<div class="note {block.status or "ok"}">{inline(block.text)}</div>')
        elif block.kind == "table":
            head = "".join(f"<th>{inline(h)}</th>" for h in block.headers)
            body = "".join("<tr>" + "".join(html_cell(c) for c in row) + "</tr>" for row in block.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif block.kind == "figure":
            data = base64.b64encode(block.png).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(block.text)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{inline(block.text)}</figcaption></figure>")
    nav = "".join(f'<a href="#{html.escape(name)}">{inline(text)}</a>' for name, text in anchors)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>Westron compare</title><style>{CSS}</style></head>\n<body><main>"
        "<h1>Westron compare: PyTorch and TensorFlow side by side</h1>"
        f"<nav>{nav}</nav>\n" + "\n".join(parts) + "\n</main></body></html>\n"
    )


# ---- files ------------------------------------------------------------------------------------------------


def load_results(path: str) -> dict[str, Any]:
    """A results.json of westron compare; anything else (other JSON, a list) is one WestronError line."""
    try:
        with open(path, encoding="utf-8") as handle:
            results = json.load(handle)
    except OSError as error:
        raise WestronError(f"cannot read results file {path}: {error.strerror}") from None
    except ValueError as error:
        raise WestronError(f"{path} is not JSON: {error}") from None
    schema = results.get("schema") if isinstance(results, dict) else None
    if schema != SCHEMA:
        what = f"schema {schema!r}" if isinstance(results, dict) else f"a JSON {type(results).__name__}, not an object"
        raise WestronError(f"{path} is not a westron compare results file ({what}, expected schema {SCHEMA!r})")
    return results


def write_results(results: dict[str, Any], output_dir: str) -> str:
    path = os.path.join(output_dir, RESULTS_JSON)
    with atomic_write(path) as handle:
        json.dump(results, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
    return path


def write_reports(results: dict[str, Any], output_dir: str) -> dict[str, str]:
    """Writes report.md, plots/*.png and report.html into output_dir; returns their paths."""
    blocks, figures = report_blocks(results)
    try:
        os.makedirs(os.path.join(output_dir, PLOTS_DIR), exist_ok=True)
    except OSError as error:
        raise WestronError(f"cannot write to output folder {output_dir}: {error.strerror or error}") from None
    for name, png in figures.items():
        with atomic_write(os.path.join(output_dir, PLOTS_DIR, f"{name}.png"), "wb") as handle:
            handle.write(png)
    paths = {"markdown": os.path.join(output_dir, REPORT_MD), "html": os.path.join(output_dir, REPORT_HTML)}
    with atomic_write(paths["markdown"]) as handle:
        handle.write(render_markdown(blocks))
    with atomic_write(paths["html"]) as handle:
        handle.write(render_html(blocks))
    return paths
