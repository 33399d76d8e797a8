"""Captions read as the facts they state: keys lead when held, otherwise the motion does."""

from __future__ import annotations

import numpy as np

from pipeline.labels._caption import captions


def _one(keys, direction="forward", speed=14.3, airborne=False, character=True):
    (text,) = captions(np.array([5]), np.array([True]), [keys], np.array([direction]),
                       np.array([speed]), np.array([airborne]), np.array([0.0]),
                       np.array([character]))
    return text


def test_no_keys_held_never_leads_the_sentence():
    assert _one([]) == "The character runs forward at 14.3 studs/s; no keys are held."
    assert _one([], direction="none") == "The character stands still; no keys are held."
    assert _one([], character=False) == "No character is present; no keys are held."


def test_held_keys_lead():
    assert _one(["W", "D"], direction="forward-right", speed=4.0) == (
        "Holding D and W, the character walks forward-right at 4.0 studs/s.")
    assert _one(["Space"], direction="none", airborne=True) == (
        "Holding Space, the character is in the air.")
