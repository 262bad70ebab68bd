"""Question templates of the six tasks, their closed answer sets, and vectorized rendering.

A template is a question text with named slots (``{A}``, ``{B}`` for the two objects of a
relation, ``{P}``/``{O}`` for person and object, ``{R}`` a referring phrase, ``{BOX}`` a box,
``{C}`` a category).  Slots hold object phrases *without* their article; the text supplies
"the", so answers can start with "The" without re-casing category names such as "TV".

Each template also says what kind of answer it takes, which is what the balance rules and
the quality suites need:

- ``choice``: the answer names one of the two objects; ``asks`` says whether the question
  asks for the positive side of its axis ("closer", "left", ...) or the negative one.
- ``yesno``: the answer is "Yes." or "No."; ``asks`` as above.
- ``word``: the answer is one of two fixed words (``answers = (positive, negative)``).
- ``single`` / ``multi`` (grounding), ``refer``, ``count``: open answers.

Axes and their positive side: ``depth`` closer, ``x`` left (camera-centric), ``lr`` the
person's own left, ``fb`` in front of the person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sf_platform.core.qa.count_templates import PHRASINGS as COUNT_PHRASINGS
from sf_platform.core.qa.ids import coin

YES, NO = "Yes.", "No."
POLARITY = {
    "depth": ("closer", "farther"),
    "x": ("left", "right"),
    "lr": ("left", "right"),
    "fb": ("front", "behind"),
}
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Template:
    id: str
    kind: str
    text: str
    axis: str | None = None
    asks: str | None = None  # "positive" | "negative" (choice, yesno)
    answers: tuple[str, str] | None = None  # word: (positive, negative)

    @cached_property
    def slots(self) -> tuple[str, ...]:
        return tuple(_SLOT.findall(self.text))

    @cached_property
    def pieces(self) -> tuple[str, ...]:
        return tuple(_SLOT.split(self.text)[0::2])

    @property
    def allowed_answers(self) -> frozenset[str] | None:
        if self.kind == "yesno":
            return frozenset({YES, NO})
        if self.kind == "word":
            return frozenset(self.answers)
        return None


def _relation(
    prefix: str, axis: str, choice: dict, yesno: dict, word: list
) -> tuple[Template, ...]:
    out = []
    for asks, texts in choice.items():
        out += [
            Template(f"{prefix}.c{asks[0]}{i}", "choice", t, axis, asks)
            for i, t in enumerate(texts, 1)
        ]
    for asks, texts in yesno.items():
        out += [
            Template(f"{prefix}.y{asks[0]}{i}", "yesno", t, axis, asks)
            for i, t in enumerate(texts, 1)
        ]
    out += [
        Template(f"{prefix}.w{i}", "word", t, axis, None, ans) for i, (t, ans) in enumerate(word, 1)
    ]
    return tuple(out)


NEAR_FAR = _relation(
    "nf",
    "depth",
    choice={
        "positive": [
            "Which is closer to the camera, the {A} or the {B}?",
            "Between the {A} and the {B}, which one is nearer to the viewer?",
        ],
        "negative": [
            "Which is farther from the camera, the {A} or the {B}?",
            "Between the {A} and the {B}, which one is farther away from the viewer?",
        ],
    },
    yesno={
        "positive": [
            "Is the {A} closer to the camera than the {B}?",
            "Is the {A} nearer to the viewer than the {B}?",
        ],
        "negative": [
            "Is the {A} farther from the camera than the {B}?",
            "Is the {A} farther away from the viewer than the {B}?",
        ],
    },
    word=[
        ("Is the {A} closer to or farther from the camera than the {B}?", ("Closer.", "Farther.")),
        (
            "Compared with the {B}, is the {A} nearer to the camera or farther from it?",
            ("Nearer.", "Farther."),
        ),
    ],
)

LEFT_RIGHT = _relation(
    "lr",
    "x",
    choice={
        "positive": [
            "Which is more to the left in the image, the {A} or the {B}?",
            "Between the {A} and the {B}, which one appears further left in the picture?",
        ],
        "negative": [
            "Which is more to the right in the image, the {A} or the {B}?",
            "Between the {A} and the {B}, which one appears further right in the picture?",
        ],
    },
    yesno={
        "positive": [
            "Is the {A} to the left of the {B}?",
            "In the image, is the {A} on the left side of the {B}?",
        ],
        "negative": [
            "Is the {A} to the right of the {B}?",
            "From the camera's viewpoint, is the {A} to the right of the {B}?",
        ],
    },
    word=[
        ("Is the {A} to the left or to the right of the {B}?", ("To the left.", "To the right.")),
        ("From the camera's viewpoint, is the {A} left or right of the {B}?", ("Left.", "Right.")),
    ],
)

PERSPECTIVE = (
    Template(
        "pp.wl1",
        "word",
        "From the viewpoint of the {P}, is the {O} on their left or on their right?",
        "lr",
        None,
        ("On their left.", "On their right."),
    ),
    Template(
        "pp.wl2",
        "word",
        "Imagine you are the {P}. Is the {O} on your left or on your right?",
        "lr",
        None,
        ("On my left.", "On my right."),
    ),
    Template(
        "pp.wf1",
        "word",
        "From the viewpoint of the {P}, is the {O} in front of them or behind them?",
        "fb",
        None,
        ("In front of them.", "Behind them."),
    ),
    Template(
        "pp.wf2",
        "word",
        "Imagine you are the {P}. Is the {O} in front of you or behind you?",
        "fb",
        None,
        ("In front of me.", "Behind me."),
    ),
    Template(
        "pp.yl1",
        "yesno",
        "From the viewpoint of the {P}, is the {O} on their left?",
        "lr",
        "positive",
    ),
    Template(
        "pp.yl2",
        "yesno",
        "Is the {O} on the left-hand side of the {P}, from that person's own point of view?",
        "lr",
        "positive",
    ),
    Template(
        "pp.yr1",
        "yesno",
        "From the viewpoint of the {P}, is the {O} on their right?",
        "lr",
        "negative",
    ),
    Template(
        "pp.yr2",
        "yesno",
        "Is the {O} on the right-hand side of the {P}, from that person's own point of view?",
        "lr",
        "negative",
    ),
    Template(
        "pp.yf1",
        "yesno",
        "From the viewpoint of the {P}, is the {O} in front of them?",
        "fb",
        "positive",
    ),
    Template(
        "pp.yb1",
        "yesno",
        "From the viewpoint of the {P}, is the {O} behind them?",
        "fb",
        "negative",
    ),
)

GROUNDING = (
    Template(
        "gr.s1",
        "single",
        "Locate the {R} in the image and output its bbox coordinates in JSON format.",
    ),
    Template("gr.s2", "single", "Find the {R} and give its bounding box as JSON."),
    Template("gr.s3", "single", "Where is the {R}? Answer with its bbox_2d in JSON format."),
    Template("gr.s4", "single", "Output the bounding box of the {R} in JSON format."),
    Template(
        "gr.m1",
        "multi",
        "Locate every {R} in the image and output the bbox coordinates in JSON format.",
    ),
    Template(
        "gr.m2",
        "multi",
        "Find all instances of {R} in the image and give their bounding boxes as a JSON list.",
    ),
    Template(
        "gr.m3",
        "multi",
        "Detect each {R} in the picture; answer with a JSON list of bbox_2d entries.",
    ),
)

REFERRING = (
    Template("rf.1", "refer", "What is the object in the region {BOX}?"),
    Template(
        "rf.2",
        "refer",
        "Describe the object at {BOX} with a short phrase that tells it apart from the others.",
    ),
    Template("rf.3", "refer", "Which object is inside the box {BOX}? Refer to it unambiguously."),
    Template("rf.4", "refer", "Give a referring expression for the object in {BOX}."),
)

COUNTING = (
    Template("ct.1", "count", "How many {C} are there in the image?"),
    Template("ct.2", "count", "Count the {C} in this image."),
    Template("ct.3", "count", "How many {C} can you see?"),
    Template("ct.4", "count", "What is the number of {C} in the picture?"),
    Template("ct.5", "count", "How many {C} are visible? Answer with a number."),
)

CONDITIONAL_COUNTING = tuple(
    Template(f"cc.{cond.removeprefix('count_')}.{i}", "count", text, axis=cond)
    for cond, texts in COUNT_PHRASINGS.items()
    for i, text in enumerate(texts, 1)
)

TEMPLATES: dict[str, tuple[Template, ...]] = {
    "grounding": GROUNDING,
    "referring": REFERRING,
    "counting": COUNTING,
    "near_far": NEAR_FAR,
    "left_right": LEFT_RIGHT,
    "perspective": PERSPECTIVE,
    "conditional_counting": CONDITIONAL_COUNTING,
}
BY_ID: dict[str, Template] = {t.id: t for ts in TEMPLATES.values() for t in ts}
assert len(BY_ID) == sum(len(ts) for ts in TEMPLATES.values()), "template ids must be unique"


def template(template_id: str) -> Template:
    try:
        return BY_ID[template_id]
    except KeyError:
        raise KeyError(f"unknown QA template id {template_id!r}") from None


def allowed_answers(task: str, template_id: str) -> frozenset[str] | None:
    """The closed answer set of a template, or None when its answers are open."""
    if task not in TEMPLATES:
        raise KeyError(f"unknown QA task {task!r} (known: {sorted(TEMPLATES)})")
    t = template(template_id)
    if t not in TEMPLATES[task]:
        raise KeyError(f"template {template_id!r} does not belong to task {task!r}")
    return t.allowed_answers


def pick(
    task: str, hashes: np.ndarray, kind: str, axis: str | None = None, asks=None
) -> np.ndarray:
    """Per row, the index (into ``TEMPLATES[task]``) of a template of that kind/axis/asks.

    ``asks`` may be a per-row bool array (True = positive); the choice among the matching
    phrasings is uniform on the row's hash, so it is deterministic and independent of order.
    """
    ts = TEMPLATES[task]
    u = coin(hashes)
    n = len(u)
    out = np.full(n, -1, dtype=np.int64)
    asks_arr = np.broadcast_to(np.asarray(asks if asks is not None else True), (n,))
    for value, name in ((True, "positive"), (False, "negative")):
        rows = asks_arr == value
        if not rows.any():
            continue
        cands = [
            i
            for i, t in enumerate(ts)
            if t.kind == kind
            and (axis is None or t.axis == axis)
            and (asks is None or t.asks == name)
        ]
        if not cands:
            raise ValueError(f"no {task} template of kind={kind} axis={axis} asks={name}")
        out[rows] = np.asarray(cands)[(u[rows] * len(cands)).astype(np.int64)]
    return out


def const(value: str | None, n: int) -> pa.Array:
    """A string array of ``n`` copies of ``value``."""
    return pa.array([value], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))


def concat(*parts) -> pa.Array:
    """Elementwise string concatenation of arrays and literal strings (null if any is null)."""
    return pc.binary_join_element_wise(*parts, "")


def render(task: str, tpl: np.ndarray, slots: dict[str, pa.Array]) -> pa.Array:
    """Questions of rows with template indices ``tpl`` filled from per-row ``slots`` arrays."""
    ts = TEMPLATES[task]
    n = len(tpl)
    if n == 0:
        return pa.array([], type=pa.string())
    names = sorted(slots)
    stacked = pa.concat_arrays([slots[s] for s in names] + [const("", n)])
    rows = np.arange(n, dtype=np.int64)
    maxk = max(len(t.slots) for t in ts)
    parts = []
    for k in range(maxk + 1):
        piece = [t.pieces[k] if k < len(t.pieces) else "" for t in ts]
        parts.append(pa.array(piece, type=pa.string()).take(pa.array(tpl)))
        if k < maxk:
            code = np.asarray(
                [names.index(t.slots[k]) if k < len(t.slots) else len(names) for t in ts]
            )
            parts.append(stacked.take(pa.array(code[tpl] * n + rows)))
    return concat(*parts)


def slot_position(task: str, tpl: np.ndarray, slot: str) -> np.ndarray:
    """Per row, where ``slot`` comes in its template's mention order (0 = first)."""
    pos = np.asarray([t.slots.index(slot) if slot in t.slots else -1 for t in TEMPLATES[task]])
    return pos[tpl]


def template_ids(task: str, tpl: np.ndarray) -> pa.Array:
    return pa.array([t.id for t in TEMPLATES[task]], type=pa.string()).take(pa.array(tpl))
