import alignment


def test_public_names_are_sorted_unique_and_exist():
    names = alignment.__all__
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all(hasattr(alignment, name) for name in names)
