"""Never publish a degraded release silently: volume against the previous release, quarantine.

A release whose images vanished is not an error anywhere upstream: every image is quarantined
with a reason, every QA table is valid and empty, every check on an empty table passes.  Only a
comparison catches it, so before anything is written the release compares

- each task's pairs with the previous published release (the newest by ``published_at``):
  below ``release.min_task_share_of_previous`` of it, the task shrank;
- the share of indexed images that were quarantined with ``release.max_quarantine_share``.

Either refuses the release with :class:`ShrinkError` naming the figures, unless
``allow_shrink`` (a person decided the shrink is real: a source withdrawn, a stricter curation).
"""

from __future__ import annotations

import json

from sf_platform.core.release import ReleaseError
from sf_platform.storage import layout
from sf_platform.storage.object_store import ObjectStore
from sf_platform.storage.publish import published_versions


class ShrinkError(ReleaseError):
    """The release would shrink or is mostly quarantine; pass allow_shrink to publish anyway."""


def previous_release(store: ObjectStore, version: str) -> dict | None:
    """The manifest of the newest published release other than ``version`` (None if none)."""
    best = None
    for v in published_versions(store):
        if v == version:
            continue
        m = json.loads(store.read_text(layout.release_manifest_key(v)))
        rank = (m.get("published_at") or "", v)
        if best is None or rank > best[0]:
            best = (rank, m)
    return best[1] if best else None


def quarantine_share(funnel: dict) -> float:
    """Quarantined images over indexed images (:func:`~sf_platform.core.release_inputs.collect_funnel`)."""
    dropped = sum(n for k, n in (funnel.get("dropped") or {}).items() if k.startswith("image:"))
    images = int(funnel.get("images") or 0)
    return dropped / images if images else 0.0


def shrink_problems(totals: dict[str, int], previous: dict | None, funnel: dict, settings) -> list[str]:
    """What makes this release degraded, one sentence each (empty: it may publish).

    ``totals``: task -> pairs of the release about to be written; ``previous``: the previous
    release's manifest; ``settings``: :class:`~sf_platform.config.ReleaseSettings`."""
    problems = []
    if previous:
        before = {t: sum(v.values()) for t, v in (previous.get("counts") or {}).items()}
        floor = settings.min_task_share_of_previous
        for task, n in sorted(before.items()):
            now = int(totals.get(task, 0))
            if n and now < floor * n:
                problems.append(f"{task}: {now:,} pairs, {now / n:.0%} of the {n:,} in release "
                                f"{previous.get('version')} (floor {floor:.0%})")
    share = quarantine_share(funnel)
    if share > settings.max_quarantine_share:
        problems.append(f"{share:.0%} of the {int(funnel.get('images') or 0):,} indexed images were quarantined "
                        f"(limit {settings.max_quarantine_share:.0%}; reasons: {funnel.get('dropped')})")
    return problems


def check_release_volume(store: ObjectStore, version: str, keys_by_task: dict[str, list[str]], funnel: dict,
                         settings, allow_shrink: bool = False) -> list[str]:
    """Raise :class:`ShrinkError` before anything is written when the release is degraded and
    ``allow_shrink`` (argument or setting) is not given; returns the problems it let through."""
    totals = {t: sum(store.num_rows(k) for k in keys) for t, keys in keys_by_task.items()}
    problems = shrink_problems(totals, previous_release(store, version), funnel, settings)
    if problems and not (allow_shrink or settings.allow_shrink):
        raise ShrinkError(f"refusing to publish release {version}: it is degraded:\n- " + "\n- ".join(problems)
                          + "\nCheck the sources; if the shrink is intended, publish with --allow-shrink.")
    return problems
