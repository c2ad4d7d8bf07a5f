"""Image decoding: every mode becomes RGB as documented; bad files raise naming the path."""

import sys

import numpy as np
import pytest
from PIL import Image

from neuroprobe import media
from neuroprobe.media import image as image_mod
from neuroprobe.stimuli import StimulusError


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _save(img, path, **kw):
    img.save(path, **kw)
    return str(path)


def _rgb_array(path, **kw):
    out = media.load(path, "image", **kw)
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    return np.asarray(out)


def test_rgb_png_round_trip(tmp_path, rng):
    a = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    path = _save(Image.fromarray(a), tmp_path / "x.png")
    np.testing.assert_array_equal(_rgb_array(path), a)


def test_grayscale_replicated(tmp_path, rng):
    g = rng.integers(0, 256, (6, 4), dtype=np.uint8)
    path = _save(Image.fromarray(g), tmp_path / "g.png")
    np.testing.assert_array_equal(_rgb_array(path), np.stack([g, g, g], axis=-1))


def test_bilevel_is_black_and_white(tmp_path, rng):
    bits = rng.random((5, 9)) > 0.5
    path = _save(Image.fromarray(bits), tmp_path / "b.png")
    assert Image.open(path).mode == "1"
    expected = np.where(bits, 255, 0).astype(np.uint8)
    np.testing.assert_array_equal(_rgb_array(path), np.stack([expected] * 3, axis=-1))


def test_rgba_alpha_dropped_by_default(tmp_path, rng):
    a = rng.integers(0, 256, (6, 6, 4), dtype=np.uint8)
    path = _save(Image.fromarray(a), tmp_path / "a.png")
    np.testing.assert_array_equal(_rgb_array(path), a[..., :3])


def test_rgba_composited_over_background(tmp_path, rng):
    a = rng.integers(0, 256, (6, 6, 4), dtype=np.uint8)
    a[0, 0, 3], a[0, 1, 3] = 0, 255  # fully transparent / opaque pixels
    path = _save(Image.fromarray(a), tmp_path / "a.png")
    bg = np.array([200, 100, 50], dtype=np.float64)
    alpha = a[..., 3:4] / 255.0
    expected = alpha * a[..., :3] + (1 - alpha) * bg
    out = _rgb_array(path, background=(200, 100, 50)).astype(np.float64)
    assert np.abs(out - expected).max() <= 1.0  # Pillow's integer blending
    np.testing.assert_array_equal(out[0, 0], bg)
    np.testing.assert_array_equal(out[0, 1], a[0, 1, :3])
    white = _rgb_array(path, background="white")
    np.testing.assert_array_equal(white[0, 0], [255, 255, 255])


def test_la_alpha_dropped(tmp_path, rng):
    la = rng.integers(0, 256, (4, 5, 2), dtype=np.uint8)
    path = _save(Image.fromarray(la, "LA"), tmp_path / "la.png")
    np.testing.assert_array_equal(_rgb_array(path), np.stack([la[..., 0]] * 3, axis=-1))


def test_palette_looked_up(tmp_path, rng):
    idx = rng.integers(0, 4, (5, 7), dtype=np.uint8)
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [17, 34, 51]], dtype=np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette(palette.ravel().tolist())
    path = _save(img, tmp_path / "p.png")
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(_rgb_array(path), palette[idx])


def test_palette_transparency_treated_as_alpha(tmp_path, rng):
    idx = rng.integers(0, 3, (5, 7), dtype=np.uint8)
    idx[0, 0] = 2
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette(palette.ravel().tolist())
    path = _save(img, tmp_path / "pt.png", transparency=2)
    np.testing.assert_array_equal(_rgb_array(path), palette[idx])  # alpha dropped
    out = _rgb_array(path, background=(255, 255, 255))
    expected = palette[idx].copy()
    expected[idx == 2] = 255
    np.testing.assert_array_equal(out, expected)


def test_16bit_png_scaled_to_8bit(tmp_path, rng):
    v = rng.integers(0, 65536, (8, 9), dtype=np.uint16)
    v[0, :4] = [0, 255, 65535, 32896]
    path = _save(Image.fromarray(v), tmp_path / "d.png")
    assert Image.open(path).mode.startswith("I")
    expected = np.rint(v.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)
    out = _rgb_array(path)
    np.testing.assert_array_equal(out, np.stack([expected] * 3, axis=-1))
    assert list(out[0, :4, 0]) == [0, 1, 255, 128]
    # Pillow's own convert clips to 255 instead of scaling: the scaling matters
    naive = np.asarray(Image.open(path).convert("RGB"))
    assert not np.array_equal(naive, out)


def test_16bit_tiff_scaled(tmp_path, rng):
    v = rng.integers(0, 65536, (4, 4), dtype=np.uint16)
    path = _save(Image.fromarray(v), tmp_path / "d.tif")
    expected = np.rint(v / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(_rgb_array(path)[..., 1], expected)


def test_mode_i_and_f_rules(rng):
    v = rng.integers(0, 65536, (3, 4)).astype(np.int32)
    out = np.asarray(image_mod.to_rgb(Image.fromarray(v, "I")))
    np.testing.assert_array_equal(out[..., 0], np.rint(v / 257.0).astype(np.uint8))
    # out of the 16-bit range: min..max mapped to 0..255
    w = np.array([[-1000, 0], [500, 3000]], dtype=np.int32)
    out = np.asarray(image_mod.to_rgb(Image.fromarray(w, "I")))[..., 0]
    np.testing.assert_array_equal(out, np.rint((w + 1000) * 255.0 / 4000).astype(np.uint8))
    f = rng.random((3, 3)).astype(np.float32)
    out = np.asarray(image_mod.to_rgb(Image.fromarray(f, "F")))[..., 2]
    np.testing.assert_array_equal(out, np.rint(f.astype(np.float64) * 255).astype(np.uint8))


def test_cmyk_matches_pillow(tmp_path, rng):
    c = rng.integers(0, 256, (5, 5, 4), dtype=np.uint8)
    img = Image.fromarray(c, "CMYK")
    path = _save(img, tmp_path / "c.tif")
    expected = np.asarray(Image.fromarray(c, "CMYK").convert("RGB"))
    np.testing.assert_array_equal(_rgb_array(path), expected)
    # with no black (K=0), RGB is the complement of CMY
    c[..., 3] = 0
    out = np.asarray(image_mod.to_rgb(Image.fromarray(c, "CMYK")))
    np.testing.assert_array_equal(out, 255 - c[..., :3])


def test_result_detached_from_file(tmp_path, rng):
    a = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    _save(Image.fromarray(a), path)
    img = image_mod.load(path)
    path.unlink()
    np.testing.assert_array_equal(np.asarray(img), a)


@pytest.mark.parametrize(
    "content, name",
    [
        (b"this is not an image at all", "text.png"),
        (bytes(range(256)) * 4, "noise.jpg"),
        (None, "missing.png"),
        ("truncated", "trunc.png"),
    ],
)
def test_bad_files_raise_naming_path(tmp_path, content, name, rng):
    path = tmp_path / name
    if content == "truncated":
        big = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(big).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(StimulusError, match=name):
        media.load(path, "image")
    with pytest.raises(ValueError):  # StimulusError is a ValueError
        image_mod.load(path)


def test_directory_is_an_error(tmp_path):
    with pytest.raises(StimulusError, match=str(tmp_path.name)):
        image_mod.load(tmp_path)


def test_bad_background_rejected(tmp_path):
    path = _save(Image.new("RGBA", (2, 2)), tmp_path / "a.png")
    with pytest.raises(ValueError, match="background"):
        image_mod.load(path, background=(300, 0, 0))


def test_modality_from_path():
    assert media.modality_from_path("a/B.PNG") == "image"
    assert media.modality_from_path("x.jpeg") == "image"
    assert media.modality_from_path("s.wav") == "audio"
    assert media.modality_from_path("s.flac") == "audio"
    assert media.modality_from_path("m.MP4") == "video"
    assert media.modality_from_path("m.unknown", default=None) is None
    with pytest.raises(StimulusError, match=r"m\.xyz"):
        media.modality_from_path("m.xyz")
    # the tables do not overlap
    tables = list(media.EXTENSIONS.values())
    assert all(not (a & b) for i, a in enumerate(tables) for b in tables[i + 1 :])


def test_load_infers_modality_and_validates(tmp_path):
    path = _save(Image.new("L", (3, 2), 7), tmp_path / "g.png")
    img = media.load(path)
    assert img.mode == "RGB" and img.size == (3, 2)
    with pytest.raises(ValueError, match="modality"):
        media.load(path, "smell")


def test_missing_decoder_module_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "neuroprobe.media.audio", None)
    with pytest.raises(NotImplementedError, match="neuroprobe.media.audio"):
        media.load(tmp_path / "x.wav", "audio")
