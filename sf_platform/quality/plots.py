"""The data-quality report's plots: PNG bytes from QA tables, computed vectorised.

matplotlib is used through its object API (``Figure`` + the Agg canvas), never ``pyplot``:
no global figure state, no GUI backend lookup, safe in a Dagster worker thread.  Each function
returns ``(png_bytes, data)`` where ``data`` holds the numbers behind the picture, so the report
can print them beside it and tests can check them without reading pixels.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.quality.answers import polarity, yes_share_signal
from sf_platform.quality.derived import LEFT_RIGHT_TASKS, TWO_OBJECT_TASKS

DPI = 100
SIZE = (6.4, 3.6)


def _figure(size=SIZE):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def balance_shares(qa_by_task: dict[str, pa.Table]) -> dict[str, dict[str, tuple[float, int]]]:
    """task -> {signal label: (share, rows)} for the balance signals each task carries."""
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for task, t in qa_by_task.items():
        if not t.num_rows:
            continue
        ans, q = t.column("answer"), t.column("question")
        sig = {"yes": yes_share_signal(ans)}
        if task in LEFT_RIGHT_TASKS:
            sig["left"] = polarity(ans, q, "left", "right")
        if task == "near_far":
            sig["closer"] = polarity(ans, q, "closer|nearer", "farther|further")
        if task in TWO_OBJECT_TASKS:
            first = _first_ids(t)
            same = pc.fill_null(pc.equal(pc.struct_field(t.column("fact").combine_chunks(), "subject"), first), False)
            sig["first mentioned"] = np.asarray(pc.cast(same, pa.float64()).to_numpy(zero_copy_only=False))
        for label, v in sig.items():
            has = ~np.isnan(v)
            if has.any():
                out.setdefault(task, {})[label] = (float(v[has].mean()), int(has.sum()))
    return out


def _first_ids(t: pa.Table) -> pa.Array:
    objs = t.column("objects").combine_chunks()
    lens = np.asarray(pc.fill_null(pc.list_value_length(objs), 0).to_numpy(zero_copy_only=False))
    starts = np.r_[0, np.cumsum(lens)[:-1]]
    ids = pc.struct_field(pc.list_flatten(objs), "object_id")
    if not len(ids):
        return pa.nulls(len(lens), pa.string())
    taken = ids.take(pa.array(np.where(lens > 0, starts, 0)))
    return pc.if_else(pa.array(lens > 0), taken, pa.scalar(None, pa.string()))


def plot_balance(qa_by_task: dict[str, pa.Table], band: tuple[float, float]):
    shares = balance_shares(qa_by_task)
    bars = [(f"{task}\n{label}", share, n) for task, d in shares.items() for label, (share, n) in d.items()]
    fig, ax = _figure((max(6.4, 0.9 * len(bars) + 1), 3.6))
    if not bars:
        _empty(ax)
    else:
        x = np.arange(len(bars))
        ax.axhspan(band[0], band[1], color="#cfe8cf", label="balance band")
        colors = ["#2b7bba" if band[0] <= s <= band[1] else "#c0392b" for _, s, _ in bars]
        ax.bar(x, [s for _, s, _ in bars], color=colors)
        ax.set_xticks(x, [b[0] for b in bars], fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share")
        ax.legend(loc="upper right", fontsize=7)
    ax.set_title("Answer balance per task")
    return _png(fig), shares


def _counting_values(qa_by_task) -> np.ndarray:
    t = qa_by_task.get("counting")
    if t is None or not t.num_rows:
        return np.zeros(0)
    from sf_platform.quality.answers import parse_count

    v = parse_count(t.column("answer").combine_chunks())
    return v[v >= 0]


def plot_count_histogram(qa_by_task, count_cap: int):
    v = _counting_values(qa_by_task)
    fig, ax = _figure()
    hist = np.bincount(v.astype(np.int64), minlength=count_cap + 1)[1:] if len(v) else np.zeros(count_cap, np.int64)
    if not len(v):
        _empty(ax)
    else:
        ax.bar(np.arange(1, len(hist) + 1), hist, color="#2b7bba")
        ax.set_xticks(np.arange(1, len(hist) + 1))
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("count answer")
        ax.set_ylabel("pairs")
    ax.set_title("Counting answers")
    return _png(fig), {int(i + 1): int(c) for i, c in enumerate(hist) if c}


def all_boxes(qa_by_task) -> np.ndarray:
    """[N, 4] bbox_1000 of every mentioned object, all tasks."""
    parts = []
    for t in qa_by_task.values():
        if t.num_rows:
            flat = pc.list_flatten(pc.struct_field(pc.list_flatten(t.column("objects").combine_chunks()), "bbox_1000"))
            parts.append(np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float64))
    v = np.concatenate(parts) if parts else np.zeros(0)
    return v[: len(v) // 4 * 4].reshape(-1, 4)


def plot_box_sizes(qa_by_task):
    b = all_boxes(qa_by_task)
    fig, ax = _figure()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / 1e6 if len(b) else np.zeros(0)
    area = area[area > 0]
    if not len(area):
        _empty(ax)
    else:
        ax.hist(np.log10(area), bins=40, color="#2b7bba")
        ax.set_xlabel("log10(box area / image area)")
        ax.set_ylabel("mentioned objects")
    ax.set_title("Box sizes")
    q = np.quantile(area, [0.1, 0.5, 0.9]).tolist() if len(area) else []
    return _png(fig), {"boxes": len(b), "area_quantiles_10_50_90": q}


def plot_box_centres(qa_by_task, bins: int = 20):
    b = all_boxes(qa_by_task)
    fig, ax = _figure((4.6, 4.0))
    grid = np.zeros((bins, bins))
    if len(b):
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        grid, _, _ = np.histogram2d(cy, cx, bins=bins, range=[[0, 1000], [0, 1000]])
        im = ax.imshow(grid, extent=(0, 1000, 1000, 0), cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, label="objects")
        ax.set_xlabel("x centre [0,1000]")
        ax.set_ylabel("y centre [0,1000]")
    else:
        _empty(ax)
    ax.set_title("Box centre positions")
    left = float(grid[:, : bins // 2].sum() / max(grid.sum(), 1))
    return _png(fig), {"left_half_share": left}


def plot_depth_gap(qa_by_task, threshold: float | None = None):
    t = qa_by_task.get("near_far")
    fig, ax = _figure()
    margin = np.zeros(0)
    if t is not None and t.num_rows:
        m = pc.struct_field(t.column("evidence").combine_chunks(), "margin")
        margin = np.asarray(pc.cast(m, pa.float64()).to_numpy(zero_copy_only=False))
        margin = margin[~np.isnan(margin)]
    if not len(margin):
        _empty(ax, "no near_far margins")
    else:
        ax.hist(margin, bins=40, color="#2b7bba")
        if threshold is not None:
            ax.axvline(threshold, color="#c0392b", ls="--", label=f"threshold {threshold:g}")
            ax.legend(fontsize=7)
        ax.set_xlabel("depth gap (evidence.margin)")
        ax.set_ylabel("near_far pairs")
    ax.set_title("Depth gap of near/far pairs")
    below = int((margin < threshold).sum()) if threshold is not None else 0
    return _png(fig), {"pairs": len(margin), "below_threshold": below,
                       "min": float(margin.min()) if len(margin) else None}


def category_counts(qa_by_task) -> list[tuple[str, int]]:
    """Categories of the first-mentioned object, over all tasks, most frequent first."""
    parts = [pc.struct_field(pc.list_element(t.column("objects").combine_chunks().filter(
        pc.greater(pc.list_value_length(t.column("objects").combine_chunks()), 0)), 0), "category")
        for t in qa_by_task.values() if t.num_rows]
    if not parts:
        return []
    vc = pc.value_counts(pa.concat_arrays([pc.fill_null(p, "<none>") for p in parts]))
    pairs = list(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def plot_categories(qa_by_task, top_n: int = 25):
    counts = category_counts(qa_by_task)[:top_n]
    fig, ax = _figure((6.4, max(3.0, 0.22 * len(counts) + 1)))
    if not counts:
        _empty(ax)
    else:
        y = np.arange(len(counts))[::-1]
        ax.barh(y, [c for _, c in counts], color="#2b7bba")
        ax.set_yticks(y, [k for k, _ in counts], fontsize=7)
        ax.set_xlabel("pairs")
    ax.set_title(f"Category frequency (top {top_n})")
    return _png(fig), counts


def qa_per_image(qa_by_task) -> np.ndarray:
    uris = [t.column("image_uri") for t in qa_by_task.values() if t.num_rows]
    if not uris:
        return np.zeros(0, np.int64)
    vc = pc.value_counts(pa.concat_arrays([u.combine_chunks() for u in uris]))
    return np.asarray(vc.field("counts").to_numpy(zero_copy_only=False))


def plot_qa_per_image(qa_by_task):
    per = qa_per_image(qa_by_task)
    fig, ax = _figure()
    if not len(per):
        _empty(ax)
    else:
        hist = np.bincount(per)
        ax.bar(np.arange(len(hist)), hist, color="#2b7bba")
        ax.set_xlabel("QA pairs on the image (all tasks)")
        ax.set_ylabel("images")
    ax.set_title("QA pairs per image")
    return _png(fig), {"images": len(per), "mean": float(per.mean()) if len(per) else 0.0,
                       "max": int(per.max()) if len(per) else 0}
