"""Captions in GenEval's six task families, their rules, and scenes that satisfy them.

| family         | example                          | satisfied when (over the cells the verifier reads)   |
|----------------|----------------------------------|------------------------------------------------------|
| single_object  | "a seven"                        | some cell holds a seven                              |
| two_object     | "a seven and a two"              | a seven and a two are both present                   |
| counting       | "three fives"                    | exactly three cells hold a five                      |
| colors         | "a red seven"                    | some cell holds a red seven                          |
| position       | "a seven left of a two"          | a seven sits in a column left of a two (rows: above) |
| color_attr     | "a red seven and a blue two"     | a red seven and a blue two, in different cells       |

A training scene for a caption holds exactly the objects the caption names, in random cells, with
random colours where the caption names none.
"""

import re
from dataclasses import dataclass

import numpy as np

from world.scenes import COLOUR_NAMES, DIGIT_NAMES, PLURAL_NAMES, Item, Scene, cell_row_col

FAMILIES = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
# The evaluation set's prompts per family: what every job evaluates on and what training never sees.
EVAL_PER_FAMILY = 16
RELATIONS = ("left of", "right of", "above", "below")
COUNT_WORDS = {2: "two", 3: "three", 4: "four"}
_VOWEL_SOUNDS = ("eight", "orange")  # "an eight", "an orange two", but "a one"


@dataclass(frozen=True)
class PromptSpec:
    """digits: 1 or 2 digits; colours: a colour index or None per digit; count: for counting."""

    family: str
    digits: tuple[int, ...]
    colours: tuple[int | None, ...] = (None,)
    count: int = 1
    relation: str | None = None

    def text(self) -> str:
        def noun(k: int) -> str:
            colour = self.colours[k]
            words = ([COLOUR_NAMES[colour]] if colour is not None else []) + [DIGIT_NAMES[self.digits[k]]]
            return ("an " if words[0] in _VOWEL_SOUNDS else "a ") + " ".join(words)

        match self.family:
            case "single_object" | "colors":
                return noun(0)
            case "two_object" | "color_attr":
                return f"{noun(0)} and {noun(1)}"
            case "counting":
                return f"{COUNT_WORDS[self.count]} {PLURAL_NAMES[self.digits[0]]}"
            case "position":
                return f"{noun(0)} {self.relation} {noun(1)}"
        raise ValueError(f"unknown family {self.family!r}")


_NOUN = rf"an? (?:({'|'.join(COLOUR_NAMES)}) )?({'|'.join(DIGIT_NAMES)})"


def parse_prompt(text: str) -> PromptSpec:
    """The inverse of `PromptSpec.text`; a prompt outside the grammar is a ValueError."""
    text = " ".join(text.lower().split())
    if m := re.fullmatch(rf"({'|'.join(COUNT_WORDS.values())}) ({'|'.join(PLURAL_NAMES)})", text):
        count = {v: k for k, v in COUNT_WORDS.items()}[m[1]]
        return PromptSpec("counting", (PLURAL_NAMES.index(m[2]),), (None,), count=count)
    if m := re.fullmatch(_NOUN, text):
        colour = COLOUR_NAMES.index(m[1]) if m[1] else None
        return PromptSpec("colors" if m[1] else "single_object", (DIGIT_NAMES.index(m[2]),), (colour,))
    if m := re.fullmatch(rf"{_NOUN} (and|{'|'.join(RELATIONS)}) {_NOUN}", text):
        colours = tuple(COLOUR_NAMES.index(c) if c else None for c in (m[1], m[4]))
        digits = (DIGIT_NAMES.index(m[2]), DIGIT_NAMES.index(m[5]))
        if m[3] != "and":
            return PromptSpec("position", digits, colours, relation=m[3])
        return PromptSpec("color_attr" if all(c is not None for c in colours) else "two_object", digits, colours)
    raise ValueError(f"prompt {text!r} is outside the tiny world's grammar (see world/prompts.py)")


def sample_spec(family: str, rng: np.random.Generator) -> PromptSpec:
    d1, d2 = (int(x) for x in rng.choice(10, size=2, replace=False))
    c1, c2 = (int(x) for x in rng.integers(len(COLOUR_NAMES), size=2))
    match family:
        case "single_object":
            return PromptSpec(family, (d1,), (None,))
        case "colors":
            return PromptSpec(family, (d1,), (c1,))
        case "two_object":
            return PromptSpec(family, (d1, d2), (None, None))
        case "counting":
            return PromptSpec(family, (d1,), (None,), count=int(rng.integers(2, 5)))
        case "position":
            return PromptSpec(family, (d1, d2), (None, None), relation=RELATIONS[int(rng.integers(4))])
        case "color_attr":
            return PromptSpec(family, (d1, d2), (c1, c2))
    raise ValueError(f"family={family!r} is not one of {FAMILIES}")


def _free_colour(colour: int | None, rng: np.random.Generator) -> int:
    return int(rng.integers(len(COLOUR_NAMES))) if colour is None else colour


def scene_for(spec: PromptSpec, rng: np.random.Generator) -> Scene:
    """A random scene holding exactly the caption's objects."""
    cells: list[Item | None] = [None] * 4
    if spec.family == "counting":
        for k in rng.choice(4, size=spec.count, replace=False):
            cells[int(k)] = Item(spec.digits[0], _free_colour(None, rng))
        return Scene(tuple(cells))
    if spec.family == "position":
        a, b = _cells_in_relation(spec.relation, rng)
    else:
        a, b = (int(k) for k in rng.choice(4, size=2, replace=False))
    cells[a] = Item(spec.digits[0], _free_colour(spec.colours[0], rng))
    if len(spec.digits) == 2:
        cells[b] = Item(spec.digits[1], _free_colour(spec.colours[1], rng))
    return Scene(tuple(cells))


def _cells_in_relation(relation: str, rng: np.random.Generator) -> tuple[int, int]:
    pairs = [(a, b) for a in range(4) for b in range(4) if a != b and _in_relation(a, b, relation)]
    return pairs[int(rng.integers(len(pairs)))]


def _in_relation(a: int, b: int, relation: str) -> bool:
    (ra, ca), (rb, cb) = cell_row_col(a), cell_row_col(b)
    return {"left of": ca < cb, "right of": ca > cb, "above": ra < rb, "below": ra > rb}[relation]


def satisfies(spec: PromptSpec, cells: tuple[Item | None, ...]) -> bool:
    """GenEval's rule for the family, applied to what is in each cell."""

    def matches(item: Item | None, k: int) -> bool:
        return item is not None and item.digit == spec.digits[k] and spec.colours[k] in (None, item.colour)

    first = [i for i, it in enumerate(cells) if matches(it, 0)]
    match spec.family:
        case "single_object" | "colors":
            return bool(first)
        case "counting":
            return len(first) == spec.count
        case "two_object" | "color_attr":
            second = [i for i, it in enumerate(cells) if matches(it, 1)]
            return any(a != b for a in first for b in second)
        case "position":
            second = [i for i, it in enumerate(cells) if matches(it, 1)]
            return any(a != b and _in_relation(a, b, spec.relation) for a in first for b in second)
    raise ValueError(f"unknown family {spec.family!r}")


def eval_prompts(family: str, n: int, seed: int = 1234) -> list[str]:
    """A fixed evaluation set: n distinct prompts of one family (all of them when there are fewer)."""
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    prompts: list[str] = []
    for _ in range(50 * n):
        text = sample_spec(family, rng).text()
        if text not in prompts:
            prompts.append(text)
        if len(prompts) == n:
            break
    return prompts


def held_out(family: str, n: int) -> set[str]:
    """Evaluation prompts never used as training captions: the compositional families' combinations
    (two_object, position, color_attr). Single objects, colours and counts are too few to hold out;
    like GenEval's, those prompts name concepts the model has seen."""
    return set(eval_prompts(family, n)) if family in ("two_object", "position", "color_attr") else set()


def all_eval_prompts(n: int) -> list[str]:
    """The evaluation set of every family, n prompts each, family by family."""
    return [p for f in FAMILIES for p in eval_prompts(f, n)]


def all_held_out(n: int) -> frozenset[str]:
    """The held-out prompts of every family's n-prompt evaluation set: never a training caption."""
    return frozenset().union(*(held_out(f, n) for f in FAMILIES))


def training_prompts(n: int, seed: int = 0, eval_per_family: int = EVAL_PER_FAMILY) -> list[str]:
    """n distinct RL training prompts, families uniform, never one of the held-out evaluation prompts."""
    excluded = all_held_out(eval_per_family)
    rng = np.random.default_rng([seed, 77])
    prompts: list[str] = []
    seen: set[str] = set()
    for _ in range(100 * n):
        text = sample_spec(FAMILIES[int(rng.integers(len(FAMILIES)))], rng).text()
        if text not in excluded and text not in seen:
            prompts.append(text)
            seen.add(text)
        if len(prompts) == n:
            return prompts
    raise ValueError(f"the grammar has fewer than {n} distinct training prompts; ask for fewer")
