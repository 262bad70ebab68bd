"""Thresholds and balance targets for QA generation and its quality gates (``qa:`` in config).

Shared by the generators (``sf_platform.core.qa``) and the expectation suites
(``sf_platform.quality``), so the rule that drops a pair and the check that audits it read the
same numbers.  Each default is justified where the rule that uses it lives; the short reason
is repeated here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from sf_platform.core.scene import MIN_MASK_BOX_IOU


class QASettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # near_far: ask only when the depth gap is clear.  Metric depth: |log dA - log dB| > 0.2
    # (DESIGN.md: cuts wrong answers at 10% depth error from 9.4% to 2.1%, keeps ~75%).
    # Disparity: gap over the image's own normalized disparity range.
    near_far_log_margin: float = Field(default=0.2, gt=0)
    near_far_disparity_margin: float = Field(default=0.15, gt=0, lt=1)
    # left_right (and perspective, leftmost/rightmost): no overlap, or ordered extents with
    # centres over this share of the image width apart AND an overlap of at most
    # left_right_max_overlap of the narrower box's width (scene_view.clearly_left_of: at
    # least 70% of each box on its own side; heavier overlap is contact / occlusion, where
    # "left of" is an opinion, so the pair is dropped).
    left_right_margin: float = Field(default=0.05, ge=0, lt=1)
    left_right_max_overlap: float = Field(default=0.3, ge=0, lt=1)
    # perspective: only for people whose facing estimate is at least this confident.
    min_facing_confidence: float = Field(default=0.6, ge=0, le=1)
    # Mask quality under which the scene does not trust a mask for an object's depth
    # statistics (core.scene.mask_trusted; QA then relies on the scene's depth_reliable).
    min_mask_box_iou: float = Field(default=MIN_MASK_BOX_IOU, ge=0, le=1)
    # Objects smaller than this share of the image are not used as relation endpoints.
    min_object_area_frac: float = Field(default=0.001, ge=0, lt=1)
    # counting: largest count asked; histogram of counts flattened so that no count's rows
    # exceed this ratio times the median non-empty bin of the shard (the median, not the
    # smallest bin, so one rare count in a shard does not throw most of the shard away).
    count_cap: int = Field(default=10, ge=1)
    count_max_bin_ratio: float = Field(default=3.0, ge=1)
    # conditional_counting: no answer value above this share of the task's rows (when at
    # least ceil(1/share) values occur): "0" and "1" otherwise dominate and the prior answers.
    conditional_count_max_value_share: float = Field(default=0.4, gt=0, le=1)
    # referring/grounding: "the largest <category>" only when its box area is at least this
    # many times the next largest instance's -- people judge relative size with a ~20-30%
    # Weber fraction, so 1.5x is a difference nobody disputes.
    referring_size_ratio: float = Field(default=1.5, gt=1)
    # Relation tasks consider at most this many objects per image (the largest ones): pairs
    # grow quadratically (a 200-object photo has 19,900), while max_pairs_per_image keeps at
    # most 8 anyway; 20 objects give 190 candidate pairs, plenty to find 8 clear ones.
    max_relation_objects_per_image: int = Field(default=20, ge=2)
    # Balance bands (yes/no, first-mentioned-correct, left/right, closer/farther).
    balance_target: float = Field(default=0.5, gt=0, lt=1)
    balance_tolerance: float = Field(default=0.05, ge=0, lt=0.5)
    # No category above this share of one task's rows.
    max_category_share: float = Field(default=0.3, gt=0, le=1)
    # Per-image caps keep one busy image from dominating a task.
    max_pairs_per_image: int = Field(default=8, ge=1)
    max_grounding_per_image: int = Field(default=6, ge=1)
    # Near-duplicate images (core.near_duplicates): perceptual hashes at most this many bits
    # apart (of 64) are one photo.  6 caught every resized (1/2, 1/4) and re-encoded (q50)
    # copy of 200 synthetic scenes and 78% of 5%-cropped ones, while 0.06% of distinct
    # synthetic pairs (flat renders, alike by design) and none of 253 pairs of real photos
    # came within it (sf_platform_tests/core/test_near_duplicates.py, README).
    near_duplicate_max_hamming: int = Field(default=6, ge=0, le=32)
    # Multi-turn packing of several QA pairs of one image into one conversation (exports).
    multi_turn: bool = False
    max_turns: int = Field(default=6, ge=1)
    seed: int = 0

    @property
    def balance_band(self) -> tuple[float, float]:
        return (
            self.balance_target - self.balance_tolerance,
            self.balance_target + self.balance_tolerance,
        )
