"""Reading labels back: missing or damaged files name the command that re-creates them, and
what is written is byte-for-byte reproducible."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline._errors import PipelineError
from pipeline.labels import (
    compute_labels,
    labels_summary,
    read_label_events,
    read_labels,
    write_labels,
)
from pipeline.labels._motion import camera_angular_velocity, camera_velocity, rotation_log
from tests.pipeline.session_kit import make_session


@pytest.fixture
def session(tmp_path):
    samples = [synthetic_sample(i, i / 30) for i in range(12)]
    return Session.open(make_session(tmp_path, samples, range(12), [i / 30 for i in range(12)]))


def test_missing_and_damaged_files_name_stpe_labels(session):
    with pytest.raises(PipelineError, match=r"has no labels.parquet; run `stpe labels .*s1`"):
        read_labels(session)
    assert read_label_events(session) == []
    (session.path / "labels.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(PipelineError, match=r"not a readable parquet .* `stpe labels .*s1`"):
        read_labels(session)
    (session.path / "label_events.jsonl").write_bytes(b'{"kind": "jump"}\n{broken\n')
    with pytest.raises(PipelineError, match=r"label_events.jsonl is corrupt .* `stpe labels"):
        read_label_events(session)


def test_written_labels_are_reproducible_and_keep_their_summary(session):
    labels = compute_labels(session)
    write_labels(session, labels)
    first = [(session.path / n).read_bytes() for n in ("labels.parquet", "label_events.jsonl")]
    write_labels(session, compute_labels(session))
    again = [(session.path / n).read_bytes() for n in ("labels.parquet", "label_events.jsonl")]
    assert first == again
    table = read_labels(session)
    assert labels_summary(table)["frames"] == 12 == table.num_rows
    assert labels_summary(table.replace_schema_metadata({})) == {}
    events = first[1].splitlines()
    assert events and all(line.startswith(b'{"') for line in events)
    keys = [list(e) for e in read_label_events(session)]
    assert all(k == sorted(k) for k in keys)  # keys sorted: stable diffs between runs


def test_backward_differences_at_the_edges():
    t = np.array([0.0, 0.5, 1.5, 2.0])
    x = np.array([[0.0], [1.0], [4.0], [4.0]])
    np.testing.assert_allclose(camera_velocity(x, t), [[2.0], [2.0], [3.0], [0.0]])
    assert np.isnan(camera_velocity(x[:1], t[:1])).all()  # one frame: no velocity
    assert np.isnan(camera_angular_velocity(np.eye(4)[None], t[:1])).all()


def test_still_camera_has_zero_angular_velocity_despite_rounding():
    """R_{N-1} R_N^T of one rotation has a trace a hair above 3 for some rotations: the
    angle must be 0, not NaN."""
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(200, 3, 3)))[0]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    traces = np.trace(q @ np.swapaxes(q, -1, -2), axis1=-2, axis2=-1)
    assert (traces > 3.0).any()  # the case exists in this sample
    still = np.zeros((200, 2, 4, 4))
    still[:, :, :3, :3] = q[:, None]
    for pair in still:
        w = camera_angular_velocity(pair, np.array([0.0, 1 / 60]))
        np.testing.assert_allclose(w[1], 0.0, atol=1e-6)
    quarter = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # +90 degrees about x
    np.testing.assert_allclose(rotation_log(quarter), [math.pi / 2, 0, 0], atol=1e-12)
