"""Lesson 04's own tests, beyond its bug zoo (tests/zoos/lesson04.py): what the lesson's text states."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch.nn import functional as F

from course_tools.notebooks import read_notebook
from course_utils.data import make_course_data
from course_utils.recipe import DEFAULT_RECIPE, default_model
from tests.helpers import ROOT

LESSON = "04_loss"


def test_the_first_loss_numbers_in_the_text_are_what_the_course_model_gives():
    """Section 2 states the first loss of the course's model over 100 seeds, and lesson 07's 1.2: measured here."""
    features, targets = make_course_data()
    with torch.no_grad():
        losses = sorted(F.cross_entropy(default_model(replace(DEFAULT_RECIPE, seed=seed))(features / 100), targets).item()
                        for seed in range(100))
        seed_31 = F.cross_entropy(default_model(DEFAULT_RECIPE)(features / 100), targets).item()
    text = "\n".join(cell.source for cell in read_notebook(ROOT / "solutions" / LESSON / f"{LESSON}.ipynb").cells
                     if cell.cell_type == "markdown")
    stated = [f"{sum(losses) / len(losses):.2f} on average", f"from {losses[0]:.2f} to {losses[-1]:.2f}",
              f"between {losses[5]:.2f} and {losses[94]:.2f}", f"is {seed_31:.2f}"]
    for phrase in stated:
        assert phrase in text, phrase
    assert "about **1.2**" in text
