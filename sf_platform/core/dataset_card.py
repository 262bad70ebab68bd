"""The release's ``README.md``: a Hugging Face dataset card with YAML front matter.

The front matter declares one ``config`` per task whose ``data_files`` glob is
``data/<task>/*.parquet``, so ``datasets.load_dataset(<release folder>, "<task>")`` finds the
Parquet files without further arguments.  The licence is a placeholder (``license: other``)
to be set by whoever publishes: the QA annotations are ours, the images keep their sources'
licences.  A release built from tiny random-weight test models says so in a banner at the top
of the card and in ``tags``: its depth, masks and facings are noise.
"""

from __future__ import annotations

from sf_platform.core.qa.settings import QASettings

TASK_INFO = {
    "grounding": ("Perception", "Localize objects from textual descriptions (bbox prediction)"),
    "referring": ("Perception", "Describe the object in a given box so that it is singled out"),
    "counting": ("Perception", "Count the instances of a category"),
    "near_far": ("Relation", "Which of two objects is closer to the camera"),
    "left_right": ("Relation", "Camera-centric left/right order of two objects"),
    "perspective": ("Relation", "Left/right and front/behind from a person's own viewpoint"),
    "conditional_counting": ("Relation", "Count the instances meeting a spatial, facing or size condition"),
}
TINY_BANNER = (
    "> **WARNING: BUILT WITH TINY TEST MODELS.** This release was made with the `tiny` model profile "
    "(random-weight models for tests). Its depths, masks, detections and facings are noise, so its "
    "relation answers are meaningless. Do not train on it or publish it."
)


def size_category(n: int) -> str:
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    for limit, name in bounds:
        if n < limit:
            return name
    return "n>1B"


def _fmt(n: int) -> str:
    return f"{n:,}"


def render(
    version: str,
    counts: dict[str, dict[str, int]],
    provenance: dict,
    settings: QASettings,
    tiny: bool,
    code_versions: dict[str, str],
    pretty_name: str = "sf_platform spatial QA",
) -> str:
    """Card text. ``counts`` is ``{task: {source: rows}}``; tasks with no rows get no config."""
    tasks = [t for t in TASK_INFO if sum(counts.get(t, {}).values()) > 0]
    sources = sorted({s for t in counts.values() for s in t})
    total = sum(sum(v.values()) for v in counts.values())
    lines = [
        "---",
        "license: other",
        "license_name: to-be-decided  # placeholder: set before publishing",
        "task_categories:",
        "- visual-question-answering",
        "- question-answering",
        "language:",
        "- en",
        "size_categories:",
        f"- {size_category(total)}",
        f"pretty_name: {pretty_name} {version}",
        "tags:",
        "- spatial-reasoning",
        "- grounding",
    ]
    if tiny:
        lines.append("- tiny-test-models-not-for-training")
    lines.append("configs:")
    for t in tasks:
        lines += [
            f"- config_name: {t}",
            "  data_files:",
            "  - split: train",
            f"    path: data/{t}/*.parquet",
        ]
    lines += ["---", ""]
    if tiny:
        lines += [TINY_BANNER, ""]
    lines += [
        f"# {pretty_name} {version}",
        "",
        (
            f"{_fmt(total)} spatial question-answer pairs in {len(tasks)} tasks from {len(sources)} source(s) "
            f"({', '.join(sources) if sources else 'none'}). Images are not included: obtain them from the sources."
        ),
        "",
    ]
    head = "| Level | Task | Description | " + " | ".join(sources) + " | Count |"
    lines += ["## Tasks", "", head, "|" + "---|" * (4 + len(sources))]
    for t, (level, desc) in TASK_INFO.items():
        per = counts.get(t, {})
        cells = " | ".join(_fmt(per.get(s, 0)) for s in sources)
        lines.append(f"| {level} | {t} | {desc} | {cells} | {_fmt(sum(per.values()))} |")
    totals = " | ".join(_fmt(sum(counts.get(t, {}).get(s, 0) for t in counts)) for s in sources)
    lines += [f"| | **Total** | | {totals} | **{_fmt(total)}** |", ""]
    lines += [
        "## Format",
        "",
        (
            "One Parquet table per task and shard under `data/<task>/<source>-<shard>.parquet`: `question`, "
            "`answer`, `objects` (mentioned objects with `bbox_1000` boxes as integers in [0, 1000], Qwen3-VL "
            "convention), `fact` (machine-readable assertion) and `evidence` (the numbers behind the answer)."
        ),
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("<this folder>", "{tasks[0] if tasks else "grounding"}")',
        "```",
        "",
        (
            "JSONL exports for Qwen-VL, InternVL and LLaVA are under `exports/<format>/`; their `image` field "
            "is `<source>/<file_name>` (the image path relative to its source's root, prefixed by the source "
            "name)."
        ),
        "",
    ]
    lines += [
        "## How it was made",
        "",
        f"- model profile: `{provenance.get('profile', 'unknown')}`",
    ]
    for op, model in sorted((provenance.get("models") or {}).items()):
        lines.append(f"- {op}: `{model}`")
    for task, cv in sorted(code_versions.items()):
        lines.append(f"- code version {task}: `{cv}`")
    lines += ["", "Thresholds (relation questions are asked only when the answer is clear):", ""]
    for k, v in settings.model_dump().items():
        lines.append(f"- `{k}`: {v}")
    lines.append("")
    return "\n".join(lines)
