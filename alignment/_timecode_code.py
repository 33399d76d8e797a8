"""The timecode's code and geometry (docs/timecode.md): seq <-> 40 x 3 cells of black/white.

The encoder is what the demo game draws; the Luau plugin implements the same table. The video
decoder (locating the strip in captured frames) builds on `cells_to_seq`.
"""

from __future__ import annotations

import numpy as np

COLUMNS = 40
ROWS = 3
PAYLOAD_BITS = 24
START_MARKER = (1, 0, 1)
END_MARKER = (0, 1, 0)
DEFAULT_CELL = 8
CRC_XOR_OUT = 0x55


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial 0x00, final XOR 0x55."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ CRC_XOR_OUT


def data_bits(seq: int) -> list[int]:
    """The 32 data bits (payload then check, most significant first) that encode `seq`."""
    payload = (seq % (1 << PAYLOAD_BITS)).to_bytes(3, "big")
    word = payload + bytes([crc8(payload)])
    return [(byte >> (7 - i)) & 1 for byte in word for i in range(8)]


def encode_cells(seq: int) -> np.ndarray:
    """The strip as a (3, 40) uint8 grid of 0 (black) and 1 (white): the code row in the
    middle, and under it its complement (the check row), so that every column from 1 to 38
    holds one white and one black cell and no uniform occluder can pass for data."""
    grid = np.zeros((ROWS, COLUMNS), np.uint8)
    grid[1, 1:-1] = [*START_MARKER, *data_bits(seq), *END_MARKER]
    grid[2, 1:-1] = 1 - grid[1, 1:-1]
    return grid


def render_strip(seq: int, cell: int = DEFAULT_CELL) -> np.ndarray:
    """The strip as an RGB image (3*cell, 40*cell, 3) uint8, white 255 and black 0."""
    grid = np.kron(encode_cells(seq), np.ones((cell, cell), np.uint8)) * 255
    return np.repeat(grid[:, :, None], 3, axis=2)


def cells_to_payload(middle_row: np.ndarray) -> int | None:
    """The 24-bit payload of the 38 middle-row cells (0/1), or None when the markers or the
    check do not match (the frame is undecodable, never guessed)."""
    row = [int(v) for v in middle_row]
    if len(row) != COLUMNS - 2:
        return None
    if tuple(row[:3]) != START_MARKER or tuple(row[-3:]) != END_MARKER:
        return None
    bits = row[3:-3]
    word = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, 32, 8))
    if crc8(word[:3]) != word[3]:
        return None
    return int.from_bytes(word[:3], "big")
