"""Custom properties the Trainer's executor records on its Model artifact: how the model was started."""

WARM_START = "warm_start"  # 1 warm, 0 cold
ITEMS_CARRIED_OVER = "items_carried_over"  # rows taken from the base model, matched by item id
ITEMS_NEW = "items_new"  # items the base model did not know (every item on a cold start)
ITEMS_DROPPED = "items_dropped"  # the base model's items this vocabulary no longer has
BASE_MODEL = "warm_start_base_model"  # the base Model artifact's directory
NOTE = "warm_start_note"  # why a run given a base model started cold
