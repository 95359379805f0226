"""Which blessed model the Trainer warm-starts from."""

from components.warm_start_trainer.base_model_lib import choose_base_model


def test_the_newest_blessed_model_trained_on_other_examples():
    # Models 3 and 7 were trained on examples 2 (today's), model 5 on examples 1, model 6 was not blessed.
    examples_of = {3: {2}, 5: {1}, 6: {1}, 7: {2}}
    blessed = {3, 5, 7}
    assert choose_base_model([3, 5, 6, 7], blessed, examples_of, current_examples_ids={2}) == 5
    # A new day's examples: the newest blessed model of all.
    assert choose_base_model([3, 5, 6, 7], blessed, examples_of, current_examples_ids={9}) == 7


def test_none_when_every_blessed_model_was_trained_on_these_examples_or_none_is_blessed():
    assert choose_base_model([3, 7], {3, 7}, {3: {2}, 7: {2}}, {2}) is None
    assert choose_base_model([3, 7], set(), {3: {1}, 7: {1}}, {2}) is None
    assert choose_base_model([], set(), {}, {2}) is None
