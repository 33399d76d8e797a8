from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capture import Sample, Session, SessionError, SessionWriter, synthetic_sample
from capture._arrow import (
    frames_table,
    frames_table_from_records,
    state_table,
    state_table_from_records,
)
from tests.conftest import make_sample


def _state_line(sample: dict, arrival: int) -> bytes:
    return orjson.dumps({"seq": sample["seq"], "arrival_mono_ns": arrival,
                         "arrival_wall_ns": arrival + 10, "sample": sample})


def test_round_trip_state_as_flat_columns(tmp_path):
    writer = SessionWriter.create(tmp_path, "s1")
    samples = [make_sample(i, i / 60, with_character=i % 2 == 0) for i in range(5)]
    for s in samples:
        Sample.model_validate(s)
    writer.append_state(_state_line(s, 1000 + i) for i, s in reversed(list(enumerate(samples))))
    writer.finalize()
    writer.finalize()  # idempotent

    session = Session.open(tmp_path / "s1")
    assert session.manifest.status == "complete"
    table = session.read_state()
    assert table["seq"].to_pylist() == [0, 1, 2, 3, 4]
    assert table["camera.fov_y"].to_pylist() == [70.0] * 5
    assert table["character.root.cframe"][2].as_py()[0] == pytest.approx(4.0 * 2 / 60)
    assert table["character.root.cframe"][1].as_py() is None
    assert table["entities"][0].as_py()[0]["name"] == "Crate"
    kinds = [e["kind"] for e in session.events()]
    assert kinds == ["start", "stop"]


def test_truncated_tail_is_skipped_but_corrupt_middle_is_an_error(tmp_path):
    writer = SessionWriter.create(tmp_path, "s2")
    writer.append_state([_state_line(make_sample(0, 0.0), 1)])
    writer.close()
    path = tmp_path / "s2" / "state.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"seq": 1, "arrival')
    assert Session.open(tmp_path / "s2").read_state().num_rows == 1
    path.write_bytes(b'{"seq": 1, "arr\n' + path.read_bytes())
    with pytest.raises(SessionError, match="corrupt record"):
        Session.open(tmp_path / "s2").read_state()


_OPTIONAL = ["wall_ms", "character", "inputs", "entities", "camera.subject",
             "camera.root_projection", "inputs.keys", "inputs.mouse_delta",
             "character.ground.instance", "character.ground.distance"]


@settings(max_examples=40, deadline=None)
@given(dropped=st.lists(st.lists(st.sampled_from(_OPTIONAL), max_size=4), min_size=1,
                        max_size=6),
       order=st.randoms())
def test_arrow_reader_equals_the_record_reader(dropped, order):
    """The fast reader and the line-by-line one give the same table, whatever optional
    fields the samples leave out and in whatever order they were stored."""
    lines = []
    for seq, leave_out in enumerate(dropped):
        sample = synthetic_sample(seq, seq / 60)
        for path in leave_out:
            *parents, leaf = path.split(".")
            node = sample
            for key in parents:
                node = node.get(key) or {}
            node.pop(leaf, None)
        Sample.model_validate(sample)
        lines.append(_state_line(sample, 1000 + seq))
    order.shuffle(lines)
    data = b"\n".join(lines) + b"\n"
    fast = state_table(data)
    assert fast.equals(state_table_from_records([orjson.loads(line) for line in lines]))
    assert fast["seq"].to_pylist() == list(range(len(dropped)))


@pytest.mark.parametrize("line", [
    b'{"note": "not a sample"}',
    b'{"arrival_mono_ns": 2, "arrival_wall_ns": 3, "sample": {"seq": "one"}}',
    b'{"arrival_mono_ns": 2, "arrival_wall_ns": 3, "sample": {"seq": 1, "t": [1, 2]}}',
    b'{"arrival_mono_ns": 99999999999999999999999, "arrival_wall_ns": 3, "sample": {}}',
    b'[1, 2, 3]',
])
def test_records_that_are_not_state_records_are_refused(tmp_path, line):
    writer = SessionWriter.create(tmp_path, "s3")
    writer.append_state([_state_line(make_sample(0, 0.0), 1), line])
    writer.close()
    with pytest.raises(SessionError, match="not a state log"):
        Session.open(tmp_path / "s3").read_state()


def test_open_refuses_a_folder_without_manifest(tmp_path):
    with pytest.raises(SessionError, match="not a session"):
        Session.open(tmp_path)


def test_create_refuses_existing_folder(tmp_path):
    SessionWriter.create(tmp_path, "dup").close()
    with pytest.raises(SessionError, match="already exists"):
        SessionWriter.create(tmp_path, "dup")


def test_append_after_close_is_refused(tmp_path):
    writer = SessionWriter.create(tmp_path, "c")
    writer.close()
    with pytest.raises(SessionError, match="closed"):
        writer.append_event("marker")


def test_frame_table_readers_agree_and_refuse_foreign_rows(tmp_path):
    writer = SessionWriter.create(tmp_path, "s4")
    rows = [{"index": i, "pts_us": i * 33_333, "grab_start_ns": 10 + i, "grab_end_ns": 20 + i,
             "wall_ns": 30 + i} for i in range(5)]
    rows[2]["dropped_before"] = 3
    rows[3]["pts_us"] = None
    writer.append_frames(rows)
    writer.close()
    table = Session.open(tmp_path / "s4").read_frames()
    lines = b"\n".join(orjson.dumps(r) for r in rows) + b"\n"
    assert table.equals(frames_table_from_records(rows))
    assert table.equals(frames_table(lines))
    assert table["dropped_before"].to_pylist() == [0, 0, 3, 0, 0]
    assert table["pts_us"].to_pylist() == [0, 33_333, 66_666, 0, 133_332]
    with open(tmp_path / "s4" / "frames.jsonl", "ab") as f:
        f.write(b'["not", "a", "row"]\n')
    with pytest.raises(SessionError, match="not a frame row"):
        Session.open(tmp_path / "s4").read_frames()


def _session_with_video(tmp_path, name, write_video):
    writer = SessionWriter.create(tmp_path, name)
    writer.append_frames([{"index": 0, "pts_us": 0, "grab_start_ns": 0, "grab_end_ns": 1,
                           "wall_ns": 0}])
    writer.finalize()
    write_video(tmp_path / name / "video.mkv")
    return Session.open(tmp_path / name)


def test_a_video_ffmpeg_cannot_read_is_a_session_error(tmp_path):
    import av

    def junk(path):
        path.write_bytes(b"\x1aE\xdf\xa3" + bytes(4000))  # an EBML id, then nothing valid

    def sound_only(path):
        with av.open(str(path), "w") as container:
            stream = container.add_stream("pcm_s16le", rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16",
                                               layout="mono")
            frame.rate = 8000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                container.mux(packet)

    broken = _session_with_video(tmp_path, "junk", junk)
    with pytest.raises(SessionError, match=f"cannot open {broken.path / 'video.mkv'}: "):
        list(broken.iter_frames())
    silent = _session_with_video(tmp_path, "sound", sound_only)
    with pytest.raises(SessionError, match=f"{silent.path / 'video.mkv'} holds no video stream"):
        list(silent.iter_frames())
