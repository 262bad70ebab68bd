"""The data-quality report: written through the ObjectStore (local and S3), self-contained, and
rendered by a real headless chromium without console errors or broken images, with the
gallery's boxes really drawn on the photos."""

from __future__ import annotations

import io
import json
import os
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from PIL import Image

from sf_platform.core.qa.settings import QASettings
from sf_platform.quality.report import build_report, counts_by_task_source, report_summary_markdown
from sf_platform.quality.suites import validate_qa
from sf_platform.storage.object_store import read_uri
from sf_platform.testing.qa_tables import H, W, allowed_answers, good_tables
from sf_platform_tests.quality import browser

N_IMAGES = 12
SETTINGS = QASettings(balance_tolerance=0.2)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[str]:
    """Real photos (scikit-image ships them offline), resized to the factory's 800x600."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field()]
    uris = []
    for i in range(N_IMAGES):
        im = Image.fromarray(sources[i % len(sources)]).convert("RGB").resize((W, H))
        path = folder / f"img{i:03d}.jpg"
        im.save(path, quality=90)
        uris.append("file://" + str(path))
    return uris


@pytest.fixture(scope="module")
def release(photos, tmp_path_factory):
    qa, scene, images = good_tables(N_IMAGES, 2, image_uris=photos)
    qa_by_task = {t: qa.filter(pc.equal(qa.column("task"), t)) for t in ("grounding", "counting", "near_far", "left_right", "perspective", "referring")}
    docs = tmp_path_factory.mktemp("docs")
    validation = {
        "release": validate_qa(qa, SETTINGS, scene=scene, images=images, expected_images=N_IMAGES,
                               data_docs_dir=str(docs / "release"), name="release", allowed_answers=allowed_answers),
    }
    funnel = {"images": 15, "curated": N_IMAGES, "objects": scene.num_rows, "qa": {t: v.num_rows for t, v in qa_by_task.items()},
              "dropped": {"truncated_image": 2, "too_small": 1, "box_outside_image": 4}}
    return qa_by_task, funnel, validation


def test_report_is_written_through_the_store(store, release):
    qa_by_task, funnel, validation = release
    key = build_report(store, "v9.9.9", qa_by_task, funnel, validation, read_uri, settings=SETTINGS, gallery_per_task=2)
    assert key == "release/v9.9.9/quality/index.html"
    keys = store.list("release/v9.9.9/quality/")
    assert key in keys
    page = store.read_text(key)
    linked = set(re.findall(r'(?:src|href)="([^"#]+)"', page))
    assert linked, "the page links its plots, gallery and data docs"
    for rel in linked:
        assert not re.match(r"^[a-z]+://", rel), f"external link {rel}"
        assert f"release/v9.9.9/quality/{rel}" in keys, f"{rel} is linked but was not written"
    assert sum(k.endswith(".png") and "/plots/" in k for k in keys) == 7
    assert sum("/gallery/" in k for k in keys) == 2 * len(qa_by_task)


def test_report_renders_in_headless_chromium(file_store, release, photos, tmp_path):
    qa_by_task, funnel, validation = release
    key = build_report(file_store, "v1", qa_by_task, funnel, validation, read_uri, settings=SETTINGS, gallery_per_task=3)
    index = os.path.join(file_store.root[len("file://"):], key)
    dom_js = """JSON.stringify({
      samples: [...document.querySelectorAll('figure.qa-sample')].map(f => ({task: f.dataset.task,
        drawn: f.dataset.drawn, boxes: JSON.parse(f.dataset.boxes).length,
        img: f.querySelector('img') ? f.querySelector('img').naturalWidth : 0})),
      outcomes: document.querySelectorAll('tr.outcome').length,
      docs_links: [...document.querySelectorAll('tr.outcome a')].length,
      sections: [...document.querySelectorAll('section h2')].map(h => h.textContent)})"""
    seen = browser.inspect_page(index, str(tmp_path / "chromium-profile"), dom_js)
    (tmp_path / "report.png").write_bytes(seen.screenshot)
    assert not seen.console_errors, seen.console_errors
    assert not seen.failed_requests, seen.failed_requests
    assert not browser.external(seen.requested), browser.external(seen.requested)
    assert len(seen.images) == 7 + 3 * len(qa_by_task)
    broken = [i for i in seen.images if not (i["complete"] and i["w"] > 0)]
    assert not broken, broken
    samples = seen.dom["samples"]
    assert {s["task"] for s in samples} == set(qa_by_task)
    assert all(s["drawn"] == "true" and s["boxes"] >= 1 and s["img"] > 0 for s in samples)
    assert seen.dom["outcomes"] == len(validation["release"].outcomes)
    assert seen.dom["docs_links"] >= 10
    assert {"Quality gates", "Funnel", "Distributions", "Gallery (spot-check by eye)"} <= set(seen.dom["sections"])
    shot = Image.open(io.BytesIO(seen.screenshot))
    assert shot.width >= 1000 and shot.height > 2000  # the whole page, not a blank viewport
    if os.environ.get("SF_REPORT_SCREENSHOT"):
        shot.save(os.environ["SF_REPORT_SCREENSHOT"])

    # The Data Docs pages the report links to also open offline without errors.
    with open(index) as f:
        page = re.search(r'href="(data_docs/[^"]+/validations/[^"]+\.html)"', f.read()).group(1)
    docs = browser.inspect_page(os.path.join(os.path.dirname(index), page), str(tmp_path / "chromium-docs"))
    assert not docs.console_errors and not docs.failed_requests and not browser.external(docs.requested)


def test_gallery_images_have_the_boxes_drawn(file_store, release, photos):
    qa_by_task, funnel, validation = release
    key = build_report(file_store, "v2", qa_by_task, funnel, validation, read_uri, settings=SETTINGS, gallery_per_task=2)
    root = os.path.dirname(os.path.join(file_store.root[len("file://"):], key))
    with open(os.path.join(root, "index.html")) as f:
        page = f.read()
    figures = re.findall(r'<figure class="qa-sample"[^>]*data-boxes="([^"]+)"[^>]*><img src="([^"]+)"', page)
    assert len(figures) == 2 * len(qa_by_task)
    meta = re.findall(r'<div class="meta">[^&]+ &middot; (file://[^<]+)</div>', page)
    for (boxes_attr, src), uri in zip(figures, meta):
        boxes = json.loads(boxes_attr.replace("&quot;", '"'))
        drawn = np.asarray(Image.open(os.path.join(root, src)).convert("RGB"), dtype=np.float64)
        h, w = drawn.shape[:2]
        original = np.asarray(Image.open(uri[len("file://"):]).convert("RGB").resize((w, h)), dtype=np.float64)
        for b in boxes:
            x1, _, x2, y2 = (round(v * s / 1000) for v, s in zip(b["bbox_1000"], (w, h, w, h)))
            # PIL draws the outline inward from the box edge: the strongest changed row among the
            # last few rows of the box is the drawn bottom edge.
            rows = range(max(y2 - 4, 0), min(y2 + 1, h))
            bottom_edge = max(np.abs(drawn[y, x1:x2] - original[y, x1:x2]).mean() for y in rows)
            assert bottom_edge > 40, f"box {b} not visible on {src}"
        # far from any box (the factory keeps boxes in the upper 60% of the image) nothing changed
        assert np.abs(drawn[-3:, :] - original[-3:, :]).mean() < 12


def test_summary_and_counts(release):
    qa_by_task, funnel, validation = release
    md = report_summary_markdown(qa_by_task, funnel, validation)
    total = sum(t.num_rows for t in qa_by_task.values())
    assert f"**{total:,} QA pairs**" in md and "all checks passed" in md
    assert "box_outside_image 4" in md
    counts = counts_by_task_source(qa_by_task)
    assert counts["counting"] == {"synthetic": qa_by_task["counting"].num_rows}


def test_unreadable_image_is_a_note_not_a_broken_image(file_store, release):
    qa_by_task, funnel, validation = release
    def failing_loader(uri: str) -> bytes:
        raise FileNotFoundError(uri)
    key = build_report(file_store, "v3", {"counting": qa_by_task["counting"]}, funnel, validation, failing_loader,
                       settings=SETTINGS, gallery_per_task=2)
    page = file_store.read_text(key)
    assert page.count("image unavailable: FileNotFoundError") == 2
    assert 'data-drawn="false"' in page and "/gallery/" not in "".join(file_store.list("release/v3/quality/"))


def test_failed_checks_are_shown_with_examples(file_store, release):
    qa_by_task, funnel, _ = release
    qa = qa_by_task["referring"]
    objs = qa.column("objects").to_pylist()
    objs[0][0]["bbox_1000"] = [-5, 0, 10, 10]
    bad = qa.set_column(qa.column_names.index("objects"), "objects", pa.array(objs, type=qa.schema.field("objects").type))
    rep = validate_qa(bad, SETTINGS, allowed_answers=allowed_answers, name="referring")
    key = build_report(file_store, "v4", {"referring": bad}, funnel, {"referring": rep}, read_uri, settings=SETTINGS, gallery_per_task=1)
    page = file_store.read_text(key)
    assert 'data-name="boxes.bbox_1000_in_grid" data-success="false"' in page
    assert "FAILED" in page and bad.column("qa_id")[0].as_py() in page
