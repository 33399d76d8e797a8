"""Alignment: clock model, timecode decoding, frame <-> state matching, alignment report."""
