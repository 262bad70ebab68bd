"""Release diff: after a counting template change, only counting rows show as changed."""

from __future__ import annotations

import dataclasses
import json

import yaml
from click.testing import CliRunner

from sf_platform.cli import main
from sf_platform.core.qa import templates
from sf_platform.storage.object_store import ObjectStore
from sf_platform_tests.release.inputs import build, put_inputs


def test_template_change_shows_only_that_task_as_changed(tmp_path, monkeypatch):
    store = ObjectStore(root=f"file://{tmp_path}/store")
    keys = put_inputs(store)
    first = build(store, "v1", keys)
    assert first["diff"] is None

    changed = []
    for t in templates.TEMPLATES["counting"]:
        new = dataclasses.replace(t, text=t.text.replace("How many", "Tell me how many"))
        if new.text != t.text:
            changed.append(t.id)
        monkeypatch.setitem(templates.BY_ID, t.id, new)
    monkeypatch.setitem(templates.TEMPLATES, "counting",
                        tuple(templates.BY_ID[t.id] for t in templates.TEMPLATES["counting"]))
    assert changed, "no counting template says 'How many'"
    assert put_inputs(store) == keys  # regenerated in place, same keys

    second = build(store, "v2", keys, previous="v1")
    diff = second["diff"]
    assert set(diff) == {t for t, n in first["totals"].items() if n}
    for task, per_source in diff.items():
        for source, c in per_source.items():
            assert c["added"] == c["removed"] == 0, (task, source, c)
            if task == "counting":
                assert c["changed"] > 0
            else:
                assert c["changed"] == 0 and c["unchanged"] == first["counts"][task][source]
    n_changed = sum(c["changed"] for c in diff["counting"].values())
    card = store.read_text("release/v2/README.md")
    assert "## Changes since v1" in card and f"{n_changed:,} changed" in card
    assert json.loads(store.read_text("release/v2/manifest.json"))["diff"]["by_task"] == diff

    cfg = tmp_path / "sources.yaml"
    cfg.write_text(yaml.safe_dump({"storage": store.root}))
    out = CliRunner().invoke(main, ["diff", "v1", "v2", "--config", str(cfg)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    rows = [line for line in out.output.splitlines() if line.startswith("| counting |")]
    assert rows and all(int(r.split("|")[5].replace(",", "")) > 0 for r in rows)
    as_json = CliRunner().invoke(main, ["diff", "v1", "v2", "--json", "--config", str(cfg)])
    assert json.loads(as_json.output) == diff
    missing = CliRunner().invoke(main, ["diff", "v1", "v9", "--config", str(cfg)])
    assert missing.exit_code != 0 and "release v9 does not exist" in missing.output


def test_latest_published_is_the_default_previous(tmp_path):
    from sf_platform.core import release

    store = ObjectStore(root=f"file://{tmp_path}/store")
    keys = put_inputs(store, images=8, shards=(("o365", "00000", 1),))
    assert release.latest_published(store) is None
    build(store, "a", keys)
    build(store, "b", keys, previous="a")
    assert release.latest_published(store, exclude="c") == "b"
    assert release.latest_published(store, exclude="b") == "a"
    man = json.loads(store.read_text("release/a/manifest.json"))
    store.write_text("release/a/manifest.json", json.dumps({**man, "format": "sf_platform-release/1"}))
    assert release.latest_published(store, exclude="b") is None  # an old format has no content hashes
