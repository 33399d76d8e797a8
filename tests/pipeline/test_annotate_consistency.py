"""The structured caption check: answers parsed, each field compared with the state, and
the kept caption chosen (model, constrained retry or state), on hand-written answers."""

from __future__ import annotations

import json

import pytest

from pipeline.annotate import FrameLabel, LabelEvent, check_answer, parse_answer
from pipeline.annotate._caption import choose, finish_retry, retry_prefix


def label(**changes) -> FrameLabel:
    base = {"frame_index": 3, "t": 0.1, "objects": (), "humanoid_state": "Running",
            "grounded": True, "speed": 12.0, "move_dir_cam": "forward-left", "keys": ("W", "A"),
            "caption": "The character runs forward-left."}
    return FrameLabel(**{**base, **changes})


def answer(**changes) -> str:
    base = {"direction": "forward-left", "motion": "moving", "airborne": False,
            "camera": "still", "caption": "The character runs forward and to the left."}
    return json.dumps({**base, **changes})


CAMERA_LEFT = LabelEvent("turn", 1, 5, (("degrees", 95.0), ("direction", "left"),
                                         ("subject", "camera")))
CHARACTER_RIGHT = LabelEvent("turn", 1, 5, (("direction", "right"), ("subject", "character")))


def test_a_correct_answer_is_consistent() -> None:
    parsed = parse_answer("Sure: " + answer() + " trailing text")
    assert parsed is not None and parsed.caption == "The character runs forward and to the left."
    verdict = check_answer(parsed, label(), [])
    assert verdict.consistent and verdict.reason == ""


@pytest.mark.parametrize(("fields", "truth", "events", "field"), [
    ({"direction": "right"}, {}, [], "direction"),
    ({"motion": "stopped", "direction": "none"}, {}, [], "motion"),
    ({"airborne": True}, {}, [], "airborne"),
    ({"airborne": False}, {"grounded": False, "humanoid_state": "Freefall"}, [], "airborne"),
    ({"camera": "turning right"}, {}, [CAMERA_LEFT], "camera"),
    ({"camera": "turning left"}, {}, [], "camera"),
    ({"direction": "forward-left", "motion": "moving"},
     {"speed": 0.2, "move_dir_cam": "none"}, [], "direction"),
])
def test_each_contradicting_field_is_named(fields, truth, events, field) -> None:
    parsed = parse_answer(answer(**fields))
    assert parsed is not None
    verdict = check_answer(parsed, label(**truth), events)
    assert not verdict.consistent
    assert any(reason.startswith(f"{field} is") for reason in verdict.reasons)


def test_camera_turn_matches_and_a_character_turn_is_not_the_camera() -> None:
    turning = parse_answer(answer(camera="turning left"))
    still = parse_answer(answer())
    assert check_answer(turning, label(), [CAMERA_LEFT]).consistent
    assert check_answer(still, label(), [CHARACTER_RIGHT]).consistent
    assert check_answer(still, label(frame_index=9), [CAMERA_LEFT]).consistent  # after it


@pytest.mark.parametrize("text", [
    "", "The character flies into the sky.", "{not json", "[1, 2]",
    answer(direction="up"), answer(motion="swimming"), answer(airborne="yes"),
    answer(caption=""), answer(camera="spinning"),
])
def test_unusable_answers_parse_to_none(text: str) -> None:
    assert parse_answer(text) is None


def test_a_frame_without_state_checks_nothing() -> None:
    parsed = parse_answer(answer(direction="back", airborne=True))
    assert check_answer(parsed, None, []).consistent
    assert check_answer(parsed, label(has_state=False), []).consistent


def test_retry_prefix_carries_the_state_and_finishes_at_the_quote() -> None:
    prefix = retry_prefix(label(grounded=False), [CAMERA_LEFT])
    assert prefix == ('{"direction": "forward-left", "motion": "moving", "airborne": true, '
                      '"camera": "turning left", "caption": "')
    done = finish_retry(prefix, 'It leaps \\"high\\" to the left." extra')
    assert done is not None and done.caption == 'It leaps "high" to the left.'
    assert finish_retry(prefix, "never closed") is None


def test_choose_keeps_model_then_retry_then_state() -> None:
    good, bad = parse_answer(answer()), parse_answer(answer(direction="back"))
    assert choose(good, label(), [], None) == (good.caption, "model", "")
    caption, kept, why = choose(bad, label(), [], good)
    assert (caption, kept) == (good.caption, "retry") and why.startswith("direction is 'back'")
    caption, kept, why = choose(None, label(), [], None)
    assert (caption, kept) == ("The character runs forward-left.", "state")
    assert "not the asked JSON object" in why and "retry was unusable" in why
    caption, kept, _ = choose(bad, label(), [], bad)
    assert kept == "state"
