"""The release's ``README.md``: a Hugging Face dataset card with YAML front matter.

The front matter declares a default config ``all`` (every task, told apart by the ``task``
column) and one config per task, each with a ``train`` and (when the release holds one out) a
``validation`` split, and the features of every config, so
``datasets.load_dataset(<release folder>)`` and ``load_dataset(<release folder>, "<task>")``
need no further arguments.  ``license`` lists the licence ids found in the rows (the images'
licences: the release ships no images, and every row names its image's licence), and the
body has the licences table, each source's image origin, the task mix asked for against the
one delivered and, for a release made after another, what changed.  A release built from tiny
random-weight test models says so in a banner at the top of the card and in ``tags``.
"""

from __future__ import annotations

import pyarrow as pa
import yaml

from sf_platform.core.licenses import KNOWN
from sf_platform.core.release_diff import diff_markdown
from sf_platform.core.release_rows import RELEASE_ROWS

TASK_INFO = {
    "grounding": ("Perception", "Localize objects from textual descriptions (bbox prediction)"),
    "referring": ("Perception", "Describe the object in a given box so that it is singled out"),
    "counting": ("Perception", "Count the instances of a category"),
    "near_far": ("Relation", "Which of two objects is closer to the camera"),
    "left_right": ("Relation", "Camera-centric left/right order of two objects"),
    "perspective": ("Relation", "Left/right and front/behind from a person's own viewpoint"),
    "conditional_counting": ("Relation", "Count the instances meeting a spatial, facing or size condition"),
}
PRETTY_NAME = "sf_platform spatial QA"
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


class _PlainDumper(yaml.SafeDumper):
    """Writes each config's features in full (no ``&id001`` anchors), as Hub cards do."""

    def ignore_aliases(self, data) -> bool:
        return True


def _fmt(n: int) -> str:
    return f"{n:,}"


def _entry(t: pa.DataType) -> dict:
    """One Arrow type as a Hugging Face ``features`` YAML entry (what ``datasets`` writes)."""
    if pa.types.is_struct(t):
        return {"struct": [{"name": f.name, **_entry(f.type)} for f in t]}
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
        v = t.value_type
        inner = [{"name": f.name, **_entry(f.type)} for f in v] if pa.types.is_struct(v) else (
            _entry(v)["dtype"] if "dtype" in _entry(v) else _entry(v))
        out = {"list": inner}
        if pa.types.is_fixed_size_list(t):
            out["length"] = t.list_size
        return out
    return {"dtype": "bool" if pa.types.is_boolean(t) else str(t)}


def hf_features(schema: pa.Schema = RELEASE_ROWS) -> list[dict]:
    return [{"name": f.name, **_entry(f.type)} for f in schema]


def _license_yaml(licenses: dict) -> dict:
    ids = sorted(licenses)
    if not ids:
        return {}
    if all(i in KNOWN for i in ids):
        return {"license": ids[0] if len(ids) == 1 else ids}
    return {"license": "other", "license_name": " + ".join(ids)}


def front_matter(facts: dict) -> dict:
    counts = facts["counts"]
    tasks = [t for t in TASK_INFO if sum(counts.get(t, {}).values()) > 0]
    total = sum(sum(v.values()) for v in counts.values())

    def config(name: str, folder: str, names: list[str], default: bool = False) -> dict:
        c = {"config_name": name, "data_files": [{"split": s, "path": f"data/{folder}/{s}*.parquet"}
                                                 for s in names]}
        return {**c, "default": True} if default else c

    def splits_of(ts: list[str]) -> list[str]:  # only splits with rows (datasets refuses empty ones)
        return [s for s in ("train", "validation") if sum(facts["splits"].get(t, {}).get(s, 0) for t in ts)]

    configs = ([config("all", "*", splits_of(tasks), default=True)] if tasks else []) + [
        config(t, t, splits_of([t])) for t in tasks]
    tags = ["spatial-reasoning", "grounding"] + (["tiny-test-models-not-for-training"] if facts["tiny"] else [])
    features = hf_features()
    return {
        **_license_yaml(facts["licenses"]),
        "task_categories": ["visual-question-answering", "question-answering"],
        "language": ["en"],
        "size_categories": [size_category(total)],
        "pretty_name": f"{PRETTY_NAME} {facts['version']}",
        "tags": tags,
        "configs": configs,
        "dataset_info": [{"config_name": c["config_name"], "features": features} for c in configs],
    }


def _tasks_section(facts: dict) -> list[str]:
    counts, splits = facts["counts"], facts["splits"]
    sources = sorted({s for t in counts.values() for s in t})
    total = sum(sum(v.values()) for v in counts.values())
    head = "| Level | Task | Description | " + " | ".join(sources) + " | train | validation | Count |"
    lines = ["## Tasks", "", head, "|" + "---|" * (6 + len(sources))]
    for t, (level, desc) in TASK_INFO.items():
        per, sp = counts.get(t, {}), splits.get(t, {})
        cells = " | ".join(_fmt(per.get(s, 0)) for s in sources)
        lines.append(f"| {level} | {t} | {desc} | {cells} | {_fmt(sp.get('train', 0))} | "
                     f"{_fmt(sp.get('validation', 0))} | {_fmt(sum(per.values()))} |")
    totals = " | ".join(_fmt(sum(counts.get(t, {}).get(s, 0) for t in counts)) for s in sources)
    tr = sum(v.get("train", 0) for v in splits.values())
    va = sum(v.get("validation", 0) for v in splits.values())
    lines += [f"| | **Total** | | {totals} | {_fmt(tr)} | {_fmt(va)} | **{_fmt(total)}** |", ""]
    frac = facts["validation_fraction"]
    lines += [(f"The validation split holds out about {frac:.1%} of the images, chosen by a hash of "
              "`<source>/<image_id>`: every question about one image is in one split."), ""]
    return lines


def _mix_section(mix: dict) -> list[str]:
    lines = ["## Task mix", "", "| Task | available | asked | delivered | share delivered |",
             "|---|---|---|---|---|"]
    total = sum(mix["delivered"].values()) or 1
    for t in TASK_INFO:
        if t in mix["available"]:
            lines.append(f"| {t} | {_fmt(mix['available'][t])} | {_fmt(mix['asked'].get(t, 0))} | "
                         f"{_fmt(mix['delivered'][t])} | {mix['delivered'][t] / total:.1%} |")
    short = [t for t in mix["delivered"] if mix["delivered"][t] < mix["asked"].get(t, 0)]
    how = ("no mix was asked for: every row is in" if mix.get("config") is None else
           "rows sampled by qa_id hash within answer/position strata, so balance holds after sampling")
    lines += ["", f"Mix: {how}." + (f" Short of the ask: {', '.join(short)}." if short else ""), ""]
    return lines


def _images_section(roots: dict) -> list[str]:
    lines = ["## Images", "",
             ("The release ships no images. Every row's `image_uri` (and every export's `image`) is "
             "`<source>/<file_name>`: relative to a folder you provide holding one sub-folder per source."), "",
             "| source | path in the release | obtain the images from | source licence |", "|---|---|---|---|"]
    lines += [f"| {n} | `{r['path']}` | {r['origin']} | {r['license']} |" for n, r in roots.items()]
    return lines + [""]


def _licenses_section(licenses: dict) -> list[str]:
    lines = ["## Licences", ""]
    if len(licenses) > 1:
        lines += [(f"**This release mixes {len(licenses)} image licences.** Each row's `license` column names "
                  "its image's licence (with `image_author` and `image_source_url` where the source gives "
                  "them); use each image under its own licence and attribute it as it asks."), ""]
    elif licenses:
        lines += [f"Every image in this release is under {next(iter(licenses))}.", ""]
    lines += ["| licence | name | rows | sources |", "|---|---|---|---|"]
    for lic, c in licenses.items():
        name = f"[{c['name']}]({c['url']})" if c["url"] else c["name"]
        lines.append(f"| `{lic}` | {name} | {_fmt(c['rows'])} | {', '.join(c['sources'])} |")
    return lines + ["", ("The question-answer text is derived from each source's annotations: check that "
                         "source's terms for its annotations too."), ""]


USAGE = """## Use

```python
from datasets import load_dataset
ds = load_dataset("<this folder>")                 # config "all": every task, a `task` column
near_far = load_dataset("<this folder>", "near_far")
```

Trainer-ready exports of the train split, one file per task (size-capped parts when large)
under `exports/<format>/`:

- LLaVA: `exports/llava/<task>.json` (a JSON array): `--data_path exports/llava/<task>.json
  --image_folder <images>`.
- InternVL: `exports/internvl/<task>.jsonl` with `exports/internvl/<task>_meta.json` (all tasks:
  `meta.json`): `--meta_path exports/internvl/meta.json`, run from this folder with the images under
  `images/`, or re-export with your image folder.
- Qwen-VL: `exports/qwen/<task>.jsonl`, boxes in [0, 1000] (Qwen3-VL); for Qwen2.5-VL (absolute pixels)
  re-export with `--box-format qwen25`.

`sf-platform export --release <version> --format <llava|internvl|qwen> --images-root <dir>` writes
the same files with image paths (and InternVL's `root`) under your image folder.
"""


def render(facts: dict) -> str:
    """Card text from the release's facts (see :func:`sf_platform.core.release.build_release`)."""
    counts = facts["counts"]
    tasks = [t for t in TASK_INFO if sum(counts.get(t, {}).values()) > 0]
    sources = sorted({s for t in counts.values() for s in t})
    total = sum(sum(v.values()) for v in counts.values())
    lines = ["---", yaml.dump(front_matter(facts), Dumper=_PlainDumper, sort_keys=False).rstrip(), "---", ""]
    if facts["tiny"]:
        lines += [TINY_BANNER, ""]
    lines += [
        f"# {PRETTY_NAME} {facts['version']}",
        "",
        (f"{_fmt(total)} spatial question-answer pairs in {len(tasks)} tasks from {len(sources)} source(s) "
         f"({', '.join(sources) if sources else 'none'})."),
        "",
    ]
    lines += _tasks_section(facts) + _mix_section(facts["mix"])
    lines += _images_section(facts["image_roots"]) + _licenses_section(facts["licenses"])
    lines += [USAGE]
    if facts.get("diff"):
        lines += [f"## Changes since {facts['diff']['previous']}", "",
                  diff_markdown(facts["diff"]["by_task"], facts["diff"]["previous"], facts["version"])]
    provenance = facts["provenance"]
    lines += ["## How it was made", "", f"- model profile: `{provenance.get('profile', 'unknown')}`"]
    for op, model in sorted((provenance.get("models") or {}).items()):
        lines.append(f"- {op}: `{model}`")
    for task, cv in sorted(facts["code_versions"].items()):
        lines.append(f"- code version {task}: `{cv}`")
    lines += ["", "Thresholds (relation questions are asked only when the answer is clear):", ""]
    for k, v in facts["thresholds"].items():
        lines.append(f"- `{k}`: {v}")
    lines.append("")
    return "\n".join(lines)
