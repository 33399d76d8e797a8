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


def _many(rows):
    """Captions of consecutive frames 10, 11, ..; each row (keys, direction, speed, airborne,
    camera yaw rate deg/s, has_state, character)."""
    keys, direction, speed, airborne, rate, state, character = zip(*rows, strict=True)
    return captions(np.arange(10, 10 + len(rows)), np.array(state), list(keys),
                    np.array(direction), np.array(speed), np.array(airborne),
                    np.radians(np.array(rate, float)), np.array(character))


def test_changes_since_the_previous_frame_by_hand():
    got = _many([
        (["W"], "forward", 8.0, False, 0.0, True, True),
        (["W", "Space"], "forward", 12.0, True, 0.0, True, True),
        (["Space"], "none", 0.0, True, 19.9, True, True),
        ([], "none", 0.0, False, 20.0, True, True),
        (["A", "D", "S"], "back", 7.95, False, -35.4, True, True),
        ([], "", 0.0, False, 0.0, False, False),
        (["A"], "left", 3.0, False, 0.0, True, True),
        (["A"], "none", 0.0, False, 0.0, True, False),
        ([], "none", 0.0, False, 0.0, True, True),
    ])
    assert got == [
        "Holding W, the character runs forward at 8.0 studs/s.",
        "Holding Space and W, the character moves forward at 12.0 studs/s; it leaves the "
        "ground at frame 11; Space pressed.",
        "Holding Space, the character is in the air; it stops at frame 12; W released.",
        "The character stands still; no keys are held; it lands at frame 13; Space released; "
        "the camera turns left at 20 deg/s.",
        "Holding A, D and S, the character walks back at 8.0 studs/s; it starts moving at "
        "frame 14; A, D and S pressed; the camera turns right at 35 deg/s.",
        "",
        "Holding A, the character walks left at 3.0 studs/s; A pressed.",
        "Holding A, no character is present.",
        "The character stands still; no keys are held; A released.",
    ]


def test_an_event_needs_the_frame_before_to_have_state_and_a_character():
    run = ("forward", 14.3)
    # frame 11 has no state, so frame 12's take-off is not an event of 11 -> 12
    # (frame 10, two back, had state and stood on the ground)
    got = _many([([], *run, False, 0, True, True), ([], *run, False, 0, False, True),
                 ([], *run, True, 0, True, True)])
    assert got[2] == "The character moves forward at 14.3 studs/s; no keys are held."
    # frame 11 has a character and frame 10 does not: frame 12's take-off is an event
    got = _many([([], *run, False, 0, True, False), ([], *run, False, 0, True, True),
                 ([], *run, True, 0, True, True)])
    assert got[2] == ("The character moves forward at 14.3 studs/s; no keys are held; "
                      "it leaves the ground at frame 12.")
