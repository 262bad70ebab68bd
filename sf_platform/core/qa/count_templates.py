"""Question phrasings of conditional counting ("How many chairs are to the left of the person?").

One group of phrasings per condition (``templates.CONDITIONAL_COUNTING`` makes them templates
``cc.<condition>.<n>`` of kind ``count``); a template's ``axis`` is the condition's fact predicate
(``count_left_of``, ...), so :func:`templates.pick` chooses among the phrasings of the
condition a row asks, and no polarity balance (``templates.POLARITY``) applies: the answer is
a number.  Slots: ``{C}`` the counted category in the plural, ``{R}`` the reference object's
phrase (singular, without article).
"""

from __future__ import annotations

# Condition -> phrasings.  Conditions with a reference object mention {R}.
PHRASINGS: dict[str, tuple[str, ...]] = {
    "count_left_of": (
        "How many {C} are to the left of the {R} in the image?",
        "Count the {C} that appear to the left of the {R} in the picture.",
    ),
    "count_right_of": (
        "How many {C} are to the right of the {R} in the image?",
        "Count the {C} that appear to the right of the {R} in the picture.",
    ),
    "count_closer_than": (
        "How many {C} are closer to the camera than the {R}?",
        "Count the {C} that are nearer to the viewer than the {R}.",
    ),
    "count_farther_than": (
        "How many {C} are farther from the camera than the {R}?",
        "Count the {C} that are farther away from the viewer than the {R}.",
    ),
    "count_in_left_half": (
        "How many {C} are in the left half of the image?",
        "Count the {C} that lie entirely in the left half of the picture.",
    ),
    "count_in_right_half": (
        "How many {C} are in the right half of the image?",
        "Count the {C} that lie entirely in the right half of the picture.",
    ),
    "count_facing_camera": (
        "How many {C} are facing the camera?",
        "Count the {C} that face toward the viewer.",
    ),
    "count_facing_away": (
        "How many {C} are facing away from the camera?",
        "Count the {C} that have their backs to the viewer.",
    ),
    "count_larger_than": (
        "How many {C} appear larger in the image than the {R}?",
        "Count the {C} whose image region is larger than that of the {R}.",
    ),
}
CONDITIONS: tuple[str, ...] = tuple(PHRASINGS)
WITH_REFERENCE = frozenset(c for c, ts in PHRASINGS.items() if "{R}" in ts[0])
