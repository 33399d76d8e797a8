import numpy as np
import pytest

from alignment._timecode_code import cells_to_payload, data_bits, encode_cells, render_strip

GOLDEN = {  # docs/timecode.md
    0: "00000000000000000000000001010101",
    1: "00000000000000000000000101010010",
    1234567: "00010010110101101000011101111001",
    16777215: "11111111111111111111111101011010",
}


@pytest.mark.parametrize("seq", sorted(GOLDEN))
def test_golden_bits(seq):
    assert "".join(map(str, data_bits(seq))) == GOLDEN[seq]


@pytest.mark.parametrize("seq", [0, 1, 59, 1234567, 2**24 - 1, 2**24 + 5])
def test_round_trip(seq):
    assert cells_to_payload(encode_cells(seq)[1, 1:-1]) == seq % 2**24


def test_every_single_and_double_bit_error_is_detected():
    row = encode_cells(987654)[1, 1:-1]
    for i in range(3, 35):
        flipped = row.copy()
        flipped[i] ^= 1
        assert cells_to_payload(flipped) is None
        for j in range(i + 1, 35):
            both = flipped.copy()
            both[j] ^= 1
            assert cells_to_payload(both) is None


def test_blank_strips_never_decode():
    assert cells_to_payload(np.zeros(38, np.uint8)) is None
    assert cells_to_payload(np.ones(38, np.uint8)) is None


def test_render_has_quiet_zone_and_cell_size():
    img = render_strip(1, cell=4)
    assert img.shape == (12, 160, 3) and img.dtype == np.uint8
    assert img[:4].max() == 0  # the top row is quiet
    assert img[:, :4].max() == 0 and img[:, -4:].max() == 0  # so are the end columns
    assert img[4:8, 4:8].min() == 255  # first start-marker cell is white
    assert img[8:, 4:8].max() == 0 and img[8:, 8:12].min() == 255  # the check row under it


@pytest.mark.parametrize("seq", [0, 1, 987654, 2**24 - 1])
def test_every_code_column_holds_one_white_and_one_black_cell(seq):
    grid = encode_cells(seq)
    assert grid[0].sum() == 0 and grid[:, 0].sum() == 0 and grid[:, -1].sum() == 0
    assert (grid[1, 1:-1] + grid[2, 1:-1] == 1).all()


@pytest.mark.parametrize("cell", [0, 1, 2, 35, 36, 37])
def test_a_wrong_marker_cell_is_refused_even_with_a_valid_check(cell):
    # the data and its check are intact: only the framing can refuse this row
    row = encode_cells(0x3C5A96)[1, 1:-1].copy()
    assert cells_to_payload(row) == 0x3C5A96
    row[cell] ^= 1
    assert cells_to_payload(row) is None


def test_a_row_of_the_wrong_length_is_refused():
    row = encode_cells(77)[1, 1:-1]
    assert cells_to_payload(row[:-1]) is None
    assert cells_to_payload(np.r_[row, 0]) is None
