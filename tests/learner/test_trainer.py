from learner.trainer import prompts_for_step


def test_each_epoch_visits_every_prompt_once_in_a_seeded_order():
    prompts = [f"p{i}" for i in range(10)]
    steps = [prompts_for_step(prompts, s, 5, seed=0) for s in (1, 2, 3, 4)]
    assert sorted(steps[0] + steps[1]) == sorted(prompts) == sorted(steps[2] + steps[3])
    assert steps[0] + steps[1] != steps[2] + steps[3]  # a fresh order per epoch
    assert prompts_for_step(prompts, 3, 5, seed=0) == steps[2]  # a function of the step: resumable
    assert prompts_for_step(prompts, 1, 5, seed=1) != steps[0]
