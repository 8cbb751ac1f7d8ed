"""What lesson 01's exercises share: the lesson's name, the sections to revisit, the seeds with stored results."""

from __future__ import annotations

LESSON = "01_dataloader_batching"

# The lesson's sections a diagnosis sends a student back to.
DATASET_SECTION = "2 · Dataset: what one sample is"
LOADER_SECTION = "3 · DataLoader: from samples to batches"

# The seeds whose expected results are stored (``checks/expected/lesson01-*.json``, written by the grader's
# side): the notebook's own (5, 8) and those the course's tests use.
CHECK_SEEDS = (0, 1, 2, 3, 5, 8, 17)
