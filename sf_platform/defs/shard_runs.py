"""Many shards per run: how a shard asset's step handles a range of partitions.

A run over one shard pays a fixed cost (a process, imports, the event log, model loading)
that a 1,000-image shard does not amortize well. Each shard asset therefore declares a
``BackfillPolicy.multi_run``: a backfill (from the UI, the regeneration sensor or
``sf-platform run``) gives each run a contiguous range of up to ``MAX_SHARDS_PER_RUN``
shards. The step then receives every shard of the range and must still process each one on
its own, so results never depend on which shards shared a run: :func:`per_shard` yields them
one at a time, and the IO manager reads and writes one table per shard.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa

# BackfillPolicy is marked beta in Dagster 1.13; it is the documented way to give a run many
# partitions, and the warning would print once per asset definition in every process.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy`", category=dg.BetaWarning)

# Up to this many shards in one run. 16 shards of 1,000 images keep a run to minutes (a
# failure re-runs at most that much) while the fixed cost per run is paid 16 times less.
MAX_SHARDS_PER_RUN = 16
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_SHARDS_PER_RUN)


def shard_table(value: pa.Table | dict[str, pa.Table], key: str) -> pa.Table:
    """One shard's table from an input loaded for one shard (a table) or for a range (a dict)."""
    return value[key] if isinstance(value, dict) else value


def per_shard(context: dg.AssetExecutionContext, **inputs) -> Iterator[tuple[str, dict[str, pa.Table]]]:
    """``(partition_key, {input name: that shard's table})`` for each shard of this step."""
    for key in context.partition_keys:
        yield key, {name: shard_table(value, key) for name, value in inputs.items()}
