"""Session ids from URLs: any text either names a session directly inside the folder or is
refused with a 404, whatever it holds (hypothesis draws hostile ids)."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture._guard import RefusedError
from serve import ServeContext, resolve_session

ATOMS = ["..", ".", "/", "\\", "%2e", "%2f", "demo", "beside", "sessions", "linked", "~",
         ":", "\0", "C:", "//", " "]


@pytest.fixture
def layout(demo_sessions):
    """The demo folder, a real session beside it, and a link out to that session."""
    beside = demo_sessions.parent / "beside"
    shutil.copytree(demo_sessions / "demo", beside)
    os.symlink(beside, demo_sessions / "linked")
    return ServeContext.for_sessions(demo_sessions)


def test_a_session_in_the_folder_resolves_to_itself(layout):
    assert resolve_session(layout, "demo") == layout.sessions_dir / "demo"
    assert layout.work_dir == layout.sessions_dir / ".stpe-serve"


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(session_id=st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(ATOMS), min_size=1, max_size=6).map("".join),
    st.lists(st.sampled_from(ATOMS), min_size=1, max_size=6).map(lambda p: "/" + "/".join(p))))
def test_any_id_is_a_direct_child_session_or_a_404(layout, session_id):
    try:
        folder = resolve_session(layout, session_id)
    except RefusedError as exc:
        assert exc.status == 404
        return
    assert folder.parent == layout.sessions_dir.resolve()
    assert (folder / "session.json").is_file()
    assert folder.name == session_id


@pytest.mark.parametrize("session_id", ["../beside", "linked", "/" + "x", "..", ".stpe-serve",
                                        "demo/..", "demo/../demo", "DEMO/../demo"])
def test_ids_that_leave_or_wander_are_refused(layout, session_id):
    with pytest.raises(RefusedError) as refused:
        resolve_session(layout, session_id)
    assert refused.value.status == 404
