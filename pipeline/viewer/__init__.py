"""A session in the Rerun viewer (`stpe view`; needs the `view` extra)."""

from pipeline.viewer._rerun import ViewResult, view_session

__all__ = ["ViewResult", "view_session"]
