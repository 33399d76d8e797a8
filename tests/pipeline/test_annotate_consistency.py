"""The caption consistency checker and the entity association, on synthetic truth."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.annotate import FrameLabel, LabeledObject, TrackLinker, associate, check_caption
from pipeline.annotate._associate import appearance


def label(**changes) -> FrameLabel:
    base = {"frame_index": 3, "t": 0.1, "objects": (), "humanoid_state": "Running",
            "grounded": True, "speed": 12.0, "move_dir_cam": "forward-left", "keys": ("W", "A"),
            "caption": ""}
    return FrameLabel(**{**base, **changes})


@pytest.mark.parametrize("caption", [
    "The character runs forward and to the left across the grass.",
    "The avatar is moving left toward the trees; it is not jumping.",
    "A player walks away from the camera.",
])
def test_consistent_captions_pass(caption: str) -> None:
    verdict = check_caption(caption, label())
    assert verdict.consistent and verdict.reason == ""


@pytest.mark.parametrize(("caption", "truth", "reason"), [
    ("The character jumps over the box.", {}, "says 'jumps' but the character is grounded"),
    ("The player is in the air.", {}, "says 'in the air'"),
    ("The character runs to the right.", {}, "moves right relative to the camera but it "
                                             "moves forward-left"),
    ("The player walks toward the camera.", {}, "moves back relative"),
    ("The character is running.", {"speed": 0.0, "move_dir_cam": "none"},
     "character is stopped (speed 0.0 studs/s)"),
    ("The character is standing still.", {}, "moves at 12.0 studs/s"),
])
def test_planted_contradictions_are_flagged(caption: str, truth: dict, reason: str) -> None:
    verdict = check_caption(caption, label(**truth))
    assert not verdict.consistent
    assert reason in verdict.reason


def test_airborne_claim_is_fine_when_airborne() -> None:
    assert check_caption("The character jumps.", label(grounded=False,
                                                       humanoid_state="Jumping")).consistent


def test_association_on_synthetic_masks() -> None:
    objects = (LabeledObject("char", "Player", "character", (10.0, 10.0, 30.0, 40.0), True),
               LabeledObject("e1", "Crate", "entity", (50.0, 5.0, 70.0, 20.0), True),
               LabeledObject("e2", "Hidden", "entity", (0.0, 0.0, 100.0, 100.0), False))
    masks = [(51.0, 5.0, 70.0, 21.0), (10.0, 12.0, 30.0, 40.0), (80.0, 80.0, 90.0, 90.0),
             (12.0, 10.0, 30.0, 38.0)]
    matches = associate(masks, objects, min_iou=0.3)
    assert [m.entity_id for m in matches] == ["e1", "char", None, None]  # one mask per entity
    assert matches[1].iou == pytest.approx(20 * 28 / (20 * 30))


def test_track_linker_keeps_ids_for_the_same_object() -> None:
    image = np.zeros((20, 20, 3), np.uint8)
    image[:, 10:] = (200, 10, 10)
    left, right = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    left[5:10, 2:8], right[5:10, 12:18] = True, True
    linker = TrackLinker()
    features = [appearance(image, left), appearance(image, right)]
    first = linker.link(["box", "box"], [(2, 5, 8, 10), (12, 5, 18, 10)], features)
    second = linker.link(["box", "box"], [(13, 5, 19, 10), (2, 5, 8, 10)], features[::-1])
    assert first == ["track-00000", "track-00001"]
    assert second == ["track-00001", "track-00000"]
    third = linker.link(["tree"], [(13, 5, 19, 10)], [features[1]])
    assert third == ["track-00002"]  # another prompt never continues a track
