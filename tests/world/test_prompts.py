"""The verifier's rules on hand-made scenes, and the caption grammar."""

import numpy as np
import pytest

from learner.job_config import PromptConfig
from world.prompts import (
    EVAL_PER_FAMILY, FAMILIES, PromptSpec, eval_prompts, held_out, parse_prompt, sample_spec, satisfies, scene_for,
)
from world.scenes import COLOUR_NAMES, Item, Scene

RED, BLUE, GREEN = (COLOUR_NAMES.index(c) for c in ("red", "blue", "green"))
SEVEN, TWO, FIVE = 7, 2, 5


def cells(*items):
    return tuple(items)


def ok(prompt, *items):
    return satisfies(parse_prompt(prompt), cells(*items))


def test_single_object_and_colours():
    scene = (Item(SEVEN, RED), None, None, None)
    assert ok("a seven", *scene) and ok("a red seven", *scene)
    assert not ok("a blue seven", *scene) and not ok("a two", *scene)


def test_counting_is_exact():
    three = (Item(FIVE, RED), Item(FIVE, BLUE), None, Item(FIVE, GREEN))
    assert ok("three fives", *three)
    assert not ok("two fives", *three) and not ok("four fives", *three)


def test_position_uses_the_grid():
    # 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right
    scene = (Item(SEVEN, RED), None, None, Item(TWO, BLUE))
    assert ok("a seven left of a two", *scene) and ok("a seven above a two", *scene)
    assert not ok("a seven right of a two", *scene) and not ok("a seven below a two", *scene)
    same_column = (Item(SEVEN, RED), None, Item(TWO, BLUE), None)
    assert ok("a seven above a two", *same_column) and not ok("a seven left of a two", *same_column)


def test_a_scene_that_satisfies_clip_but_breaks_binding():
    # Both words and both colours are present, bound the other way round: CLIP's bag of words is
    # satisfied, GenEval's colour attribution is not.
    swapped = (Item(SEVEN, BLUE), Item(TWO, RED), None, None)
    assert ok("a seven and a two", *swapped)
    assert not ok("a red seven and a blue two", *swapped)
    assert ok("a blue seven and a red two", *swapped)


def test_two_objects_need_two_cells():
    assert not ok("a seven and a seven", Item(SEVEN, RED), None, None, None)
    assert ok("a seven and a seven", Item(SEVEN, RED), Item(SEVEN, RED), None, None)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_caption_parses_back_and_its_scene_satisfies_it(family):
    rng = np.random.default_rng(0)
    for _ in range(50):
        spec = sample_spec(family, rng)
        assert parse_prompt(spec.text()) == spec
        assert satisfies(spec, scene_for(spec, rng).cells)


def test_articles_follow_the_sound():
    assert PromptSpec("single_object", (8,)).text() == "an eight"
    assert PromptSpec("single_object", (1,)).text() == "a one"
    assert PromptSpec("colors", (1,), (COLOUR_NAMES.index("orange"),)).text() == "an orange one"


def test_prompts_outside_the_grammar_are_refused():
    with pytest.raises(ValueError, match="outside the tiny world's grammar"):
        parse_prompt("a photo of a cat")


def test_eval_sets_are_fixed_and_compositional_ones_held_out():
    assert eval_prompts("color_attr", 16) == eval_prompts("color_attr", 16)
    assert len(eval_prompts("single_object", 16)) == 10  # all of them
    assert held_out("position", 16) == set(eval_prompts("position", 16))
    assert held_out("counting", 16) == set()


def test_scene_needs_four_cells():
    with pytest.raises(ValueError, match="4 cells"):
        Scene((None, None))


def test_the_training_jobs_default_evaluation_is_the_worlds_held_out_set():
    """learner/ may not import world/, so PromptConfig spells the world's count as a literal; keep them equal."""
    assert PromptConfig().eval_per_family == EVAL_PER_FAMILY
