"""Arrow schemas of every table that crosses a module or storage boundary.

These are the contract of DESIGN.md in code: readers, curation, perception, scene, QA and
the quality suites all build and check tables against them.  Columns are added here first,
never ad hoc in one producer, so a consumer can rely on a column being present (possibly null).

Box conventions (see :mod:`sf_platform.core.boxes`):
- ``bbox_px``: float64 ``[x1, y1, x2, y2]`` in pixels of the *oriented* image (EXIF applied).
- ``bbox_1000``: int16 ``[x1, y1, x2, y2]`` in [0, 1000], Qwen3-VL / InternVL convention.
"""

from __future__ import annotations

import pyarrow as pa

BOX_PX = pa.list_(pa.float64(), 4)
BOX_1000 = pa.list_(pa.int16(), 4)
POINT = pa.struct([("x", pa.float64()), ("y", pa.float64())])
# COCO-17 keypoints: 17 x (x, y, score); score 0 means "not labelled / not visible".
KEYPOINTS = pa.list_(pa.float32(), 51)

# --- What a source reader yields for one shard (before curation) -----------------------
RAW_IMAGES = pa.schema(
    [
        ("source", pa.string()),
        ("shard", pa.string()),
        ("image_id", pa.string()),
        ("file_name", pa.string()),  # path relative to the source's images root
        ("width", pa.int32()),  # as annotated (may be null / wrong; curation measures)
        ("height", pa.int32()),
        ("depth_uri", pa.string()),  # given depth map, or null
        ("count", pa.int32()),  # PixMo count annotation, or null
        ("count_label", pa.string()),  # PixMo label that `count` counts, or null
    ]
)

OBJECTS = pa.schema(
    [
        ("source", pa.string()),
        ("shard", pa.string()),
        ("object_id", pa.string()),
        ("image_id", pa.string()),
        ("category", pa.string()),  # fixed display name ("Dining Table", not "Dinning Table")
        ("bbox_px", BOX_PX),  # null for point-only objects (PixMo before detection)
        ("bbox_1000", BOX_1000),
        # Normalized [0,1] xyxy box as a source gives it (OpenImages) before curation knows the
        # true image size; curation turns it into bbox_px.  Null for pixel-box sources.
        ("bbox_norm", BOX_PX),
        ("points", pa.list_(POINT)),  # pixel points (PixMo), else null
        ("is_crowd", pa.bool_()),
        ("is_group", pa.bool_()),
        ("is_depiction", pa.bool_()),
        ("is_occluded", pa.bool_()),
        ("is_truncated", pa.bool_()),
        ("is_fake", pa.bool_()),
        ("is_reflected", pa.bool_()),
        ("is_inside", pa.bool_()),
        ("score", pa.float32()),  # detector confidence; 1.0 for annotations
        ("provenance", pa.string()),  # "annotation" | "detector:<model>" | "points"
        ("keypoints", KEYPOINTS),  # given COCO keypoints (persons), in oriented pixels, or null
        # Display names of the category's ancestor classes in the source's class hierarchy
        # (OpenImages with ``hierarchy`` configured: "Man" -> ["Person"]); null when the source
        # has no hierarchy.  Scene uses it to mark categories whose relatives share the image.
        ("category_ancestors", pa.list_(pa.string())),
    ]
)

# --- Curated images ---------------------------------------------------------------------
IMAGES = pa.schema(
    [
        ("source", pa.string()),
        ("shard", pa.string()),
        ("image_id", pa.string()),
        ("file_name", pa.string()),
        ("image_uri", pa.string()),  # absolute URI (file:///... or s3://...)
        ("width", pa.int32()),  # after EXIF orientation
        ("height", pa.int32()),
        ("exif_orientation", pa.int8()),  # 1..8 (1 = none)
        ("mode", pa.string()),  # original PIL mode, e.g. "CMYK", "I;16", "P"
        ("sha256", pa.string()),
        ("depth_uri", pa.string()),
        ("count", pa.int32()),
        ("count_label", pa.string()),
        # Categories that lost an object of this image to quarantine (curation): their counts
        # and uniqueness in the image are not known (sorted; empty when none).
        ("incomplete_categories", pa.list_(pa.string())),
        # An object of this image was quarantined without a recorded category (other than an
        # unknown-category reject): no category's count or uniqueness is known.
        ("all_categories_incomplete", pa.bool_()),
        # 64-bit DCT perceptual hash of the oriented image, as int64 (core.near_duplicates).
        ("phash", pa.int64()),
    ]
)

QUARANTINE = pa.schema(
    [
        ("source", pa.string()),
        ("shard", pa.string()),
        ("kind", pa.string()),  # "image" | "object" | "depth" | "keypoints" | ...
        ("image_id", pa.string()),
        ("image_uri", pa.string()),
        ("object_id", pa.string()),
        ("reason", pa.string()),  # short machine code, e.g. "truncated_image"
        ("detail", pa.string()),  # one human sentence
        ("category", pa.string()),  # the rejected object's category (kind "object"), if known
    ]
)

# --- Perception outputs -----------------------------------------------------------------
MASKS = pa.schema(
    [
        ("source", pa.string()),
        ("shard", pa.string()),
        ("object_id", pa.string()),
        ("image_id", pa.string()),
        # Mask as a bitmap downsampled into the object's box (MASK_GRID x MASK_GRID, packed
        # bits), so depth statistics can be taken over the object's own pixels cheaply.
        ("mask_bits", pa.binary()),
        ("mask_grid", pa.int16()),
        ("mask_area", pa.float64()),  # pixels in the full-resolution image
        ("mask_pred_iou", pa.float32()),  # SAM's own IoU prediction (1.0 for box masks)
        ("mask_box_iou", pa.float32()),  # IoU between mask and its prompt box
        ("mask_provenance", pa.string()),  # "box" | "given" | "sam:<model_type>:<checkpoint hash>"
        # The pixel box the mask grid covers: the object's box, or for a point-prompted mask
        # (no box) the mask's own bounding box.  Null when a point-prompted mask is empty.
        ("mask_frame_px", BOX_PX),
    ]
)

DEPTH = pa.schema(
    [
        ("source", pa.string()),
        ("shard", pa.string()),
        ("image_id", pa.string()),
        # Depth map downsampled to at most DEPTH_MAX_SIDE on its long side, float16 C-order.
        ("depth_map", pa.binary()),
        ("map_height", pa.int32()),
        ("map_width", pa.int32()),
        ("depth_kind", pa.string()),  # "metric" (metres, smaller = closer) | "disparity"
        ("depth_provenance", pa.string()),  # "given" | model id
        ("depth_min", pa.float32()),
        ("depth_max", pa.float32()),
        # "given" | "estimated" | "skipped" (no map: the source's depth_policy is skip).  A map
        # the depth op rejected, or a skip, carries why (a core.depth_io / models.depth reason).
        ("depth_status", pa.string()),
        ("depth_reason", pa.string()),
        ("depth_detail", pa.string()),
    ]
)

POSES = pa.schema(
    [
        ("source", pa.string()),
        ("shard", pa.string()),
        ("object_id", pa.string()),
        ("image_id", pa.string()),
        ("keypoints", KEYPOINTS),
        ("facing", pa.string()),  # "toward" | "away" | "left" | "right" | "unknown"
        ("facing_confidence", pa.float32()),
        ("pose_provenance", pa.string()),  # "given" | model id
    ]
)

# --- Scene: one row per object ready for QA ---------------------------------------------
SCENE = pa.schema(
    list(OBJECTS)
    + [
        ("image_uri", pa.string()),
        ("file_name", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("mask_area", pa.float64()),
        ("mask_pred_iou", pa.float32()),
        ("mask_box_iou", pa.float32()),
        ("mask_provenance", pa.string()),
        ("depth_median", pa.float32()),
        ("depth_p10", pa.float32()),
        ("depth_p90", pa.float32()),
        ("depth_reliable", pa.bool_()),
        ("depth_kind", pa.string()),
        ("depth_provenance", pa.string()),
        ("image_depth_min", pa.float32()),
        ("image_depth_max", pa.float32()),
        ("category_count", pa.int32()),  # countable instances of this category in the image
        ("category_unique", pa.bool_()),  # the only instance of its clean category
        ("x_rank", pa.int32()),  # 0 = leftmost within its category
        ("size_rank", pa.int32()),  # 0 = largest within its category
        ("depth_rank", pa.int32()),  # 0 = closest within its category
        ("facing", pa.string()),
        ("facing_confidence", pa.float32()),
        ("image_count", pa.int32()),  # given image-level count (PixMo), or null
        ("image_count_label", pa.string()),
        # The image may hold instances of this category the scene does not show as countable
        # objects: an annotation of it was quarantined (images.incomplete_categories), or an
        # ancestor / descendant class is present (category_ancestors).  QA then neither counts
        # nor names the category (a box in the question is still fine).
        ("category_incomplete", pa.bool_()),
        ("pose_provenance", pa.string()),  # "given" | pose model id (persons only)
        # Instance facts (core.instances): decided once here, read by every QA task.
        ("countable", pa.bool_()),  # one real instance: a category and no crowd/group/... flag
        ("instances", pa.int32()),  # instances it stands for: 1 per box, 1 per point, 0
        ("category_all_boxed", pa.bool_()),  # every countable instance of the category has a box
        ("category_clean", pa.bool_()),  # the category may be counted and named in this image
    ]
)

# --- QA: one row per question-answer pair, every task -----------------------------------
QA_OBJECT = pa.struct(
    [("object_id", pa.string()), ("category", pa.string()), ("bbox_1000", BOX_1000)]
)
FACT = pa.struct(
    [
        ("subject", pa.string()),
        ("predicate", pa.string()),
        ("object", pa.string()),
        ("value", pa.string()),
    ]
)
EVIDENCE = pa.struct(
    [
        ("depth_a", pa.float32()),
        ("depth_b", pa.float32()),
        ("margin", pa.float32()),  # the quantity compared against the threshold
        ("threshold", pa.float32()),
        ("count", pa.int32()),
        ("score", pa.float32()),  # facing confidence / detector score
        ("note", pa.string()),
    ]
)
QA = pa.schema(
    [
        ("qa_id", pa.string()),
        ("task", pa.string()),
        ("source", pa.string()),
        ("shard", pa.string()),
        ("image_id", pa.string()),
        ("image_uri", pa.string()),
        ("file_name", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("template_id", pa.string()),
        ("objects", pa.list_(QA_OBJECT)),
        ("fact", FACT),
        ("evidence", EVIDENCE),
    ]
)

TASKS = (
    "grounding",
    "referring",
    "counting",
    "near_far",
    "left_right",
    "perspective",
    "conditional_counting",
)


def empty(schema: pa.Schema) -> pa.Table:
    """An empty table of ``schema`` (a shard with nothing usable still writes a file)."""
    return schema.empty_table()


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns, in order; missing columns are null.

    Raises ``ValueError`` naming the column when a present column cannot be cast, so a
    producer that drifts from the contract fails loudly instead of writing odd types.
    """
    cols = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            if col.type != field.type:
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise ValueError(f"column {field.name!r}: cannot cast {col.type} to {field.type}") from exc
            cols.append(col)
        else:
            cols.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(cols, schema=schema)
