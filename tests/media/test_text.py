"""Text decoding: UTF-8 files (a byte-order mark tolerated), errors naming the file."""

import pytest

from neuroprobe.exceptions import StimulusError
from neuroprobe.media import load, modality_from_path
from neuroprobe.media.text import Text, load_text


def test_load_text(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffcafé au lait\n".encode())
    assert modality_from_path(path) == "text"
    text = load(path)
    assert text == "café au lait" and isinstance(text, Text) and text.stim_id is None
    assert load_text(path, strip=False) == "café au lait\n"
    assert Text("x", stim_id=3).describe() == "stimulus '3'"
    assert Text("y" * 50).describe().startswith("text 'yyyy") and "..." in Text("y" * 50).describe()


def test_errors_name_the_file(tmp_path):
    with pytest.raises(StimulusError, match="missing.txt: text file not found"):
        load_text(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(StimulusError, match="bad.txt: the bytes are not valid utf-8"):
        load_text(bad)
