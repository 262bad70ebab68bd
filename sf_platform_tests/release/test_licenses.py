"""Source licences from config: defaults per format, ids from Creative Commons URLs, no local
path as an image origin, and licence keys that never re-index a source."""

from __future__ import annotations

import pytest

from sf_platform.config import ConfigError, S3Config, parse_config
from sf_platform.core.licenses import license_id, source_terms
from sf_platform.core.sources.index import source_fingerprint


def test_licence_ids_from_urls_and_ids():
    assert license_id("https://creativecommons.org/licenses/by/2.0/") == "cc-by-2.0"
    assert license_id("http://creativecommons.org/licenses/by-sa/2.0/") == "cc-by-sa-2.0"
    assert license_id("https://creativecommons.org/publicdomain/zero/1.0/") == "cc0-1.0"
    assert license_id(" CC-BY-4.0 ") == "cc-by-4.0"


def test_source_terms_from_config(tmp_path):
    ann = tmp_path / "a.json"
    ann.write_text("{}")
    (tmp_path / "imgs").mkdir()
    cfg = parse_config({"sources": [
        {"name": "o365", "format": "objects365", "images": str(tmp_path / "imgs"), "annotations": str(ann)},
        {"name": "o365s3", "format": "objects365", "images": "s3://bucket/o365", "annotations": str(ann)},
        {"name": "px", "format": "pixmo", "images": str(tmp_path / "imgs"), "annotations": str(ann),
         "license": "https://creativecommons.org/licenses/by/4.0/", "images_origin": "https://example.org/px"},
    ]})
    t = {s.name: source_terms(s) for s in cfg.sources}
    assert (t["o365"].license, t["o365"].images_origin) == ("cc-by-4.0", "https://www.objects365.org/download.html")
    assert str(tmp_path) not in t["o365"].images_origin  # a local folder is never stated
    assert t["o365s3"].images_origin == "s3://bucket/o365"
    assert (t["px"].license, t["px"].images_origin) == ("cc-by-4.0", "https://example.org/px")
    with pytest.raises(ConfigError, match="'image_licenses' is only used by format openimages"):
        parse_config({"sources": [{"name": "o", "format": "objects365", "images": str(tmp_path),
                                   "annotations": str(ann), "image_licenses": str(ann)}]})
    with pytest.raises(ConfigError, match="image_licenses: path does not exist"):
        parse_config({"sources": [{"name": "o", "format": "openimages", "images": str(tmp_path),
                                   "annotations": str(ann), "classes": str(ann),
                                   "image_licenses": str(tmp_path / "missing.csv")}]})
    # Licence keys are the release's business: changing them re-indexes nothing.
    a = cfg.sources[0]
    assert source_fingerprint(a, S3Config()) == source_fingerprint(
        a.model_copy(update={"license": "cc0-1.0", "images_origin": "x"}), S3Config())
    assert source_fingerprint(a, S3Config()) != source_fingerprint(a.model_copy(update={"shard_size": 7}), S3Config())
