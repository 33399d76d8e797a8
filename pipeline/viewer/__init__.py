"""A session in the Rerun viewer (`stpe view`; needs the `view` extra)."""

from pipeline.viewer._launch import display_problem, open_viewer, viewer_executable
from pipeline.viewer._rerun import ViewResult, save_recording

__all__ = ["ViewResult", "display_problem", "open_viewer", "save_recording",
           "viewer_executable"]
