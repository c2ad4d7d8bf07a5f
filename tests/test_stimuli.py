"""StimulusSet: CSV/folder/paths/array construction, edge cases, array-like indexing, sklearn."""

import csv
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from neuroprobe.stimuli import StimulusError, StimulusSet, as_stimulus_set, read_dnnbrain_stim


def _img(path, value=0, size=(4, 3)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 2 * value % 256, 3 * value % 256)).save(path)
    return path


@pytest.fixture
def study(tmp_path):
    """A CSV with quoting, relative + absolute paths, numeric/text/empty cells and a BOM."""
    folder = tmp_path / "study"
    for i in range(4):
        _img(folder / "images" / f"im{i}.png", value=10 * i)
    outside = _img(tmp_path / "elsewhere" / "far.png", value=99)
    rows = [
        ["stim_id", "path", "label", "condition", "onset", "score", "note"],
        ["s0", "images/im0.png", "1", "face", "0", "0.5", "plain"],
        ["s1", "images/im1.png", "0", "house, large", "2.5", "", 'says "hi"'],
        ["s2", "images/im2.png", "1", "face", "5", "1e-3", ""],
        ["s3", "./images/../images/im3.png", "0", "house", "7.5", "-2", "multi\nline"],
        ["s4", str(outside), "1", "", "10", "3", "x"],
    ]
    path = folder / "stimuli.csv"
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f).writerows(rows)
    return path, rows, outside


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- CSV


def test_csv_parsing(study, tmp_path, monkeypatch):
    path, rows, outside = study
    monkeypatch.chdir(tmp_path / "elsewhere")  # relative paths are relative to the CSV
    s = StimulusSet.from_csv(path)
    assert len(s) == 5 and s.shape == (5,) and s.modality == "image"
    assert list(s.ids) == ["s0", "s1", "s2", "s3", "s4"]
    expected_paths = [str(path.parent / "images" / f"im{i}.png") for i in range(4)]
    assert s.paths == [*expected_paths, str(outside)]
    assert all(os.path.isabs(p) for p in s.paths)
    assert s.attributes["label"].dtype == np.int64
    np.testing.assert_array_equal(s.column("label"), [1, 0, 1, 0, 1])
    assert s.column("onset").dtype == np.float64
    np.testing.assert_array_equal(s.column("onset"), [0, 2.5, 5, 7.5, 10])
    score = s.column("score")
    assert score.dtype == np.float64 and np.isnan(score[1])
    np.testing.assert_array_equal(score[[0, 2, 3, 4]], [0.5, 1e-3, -2, 3])
    assert list(s.column("condition")) == ["face", "house, large", "face", "house", ""]
    assert list(s.column("note")) == ["plain", 'says "hi"', "", "multi\nline", "x"]
    assert set(s.attributes) == {"label", "condition", "onset", "score", "note"}


def test_csv_matches_pandas(study):
    pd = pytest.importorskip("pandas")
    path, _, _ = study
    s = StimulusSet.from_csv(path)
    ref = pd.read_csv(path, encoding="utf-8-sig")
    frame = s.to_frame()
    assert list(frame["stim_id"]) == list(ref["stim_id"])
    for name in ("label", "onset", "score"):
        np.testing.assert_array_equal(frame[name].to_numpy(), ref[name].to_numpy())
    for name in ("condition", "note"):
        assert list(frame[name]) == list(ref[name].fillna(""))


def test_csv_missing_columns_named(tmp_path):
    p = _write(tmp_path / "s.csv", "id,file,label\na,a.png,1\n")
    with pytest.raises(StimulusError, match="'stim_id', 'path'") as err:
        StimulusSet.from_csv(p)
    assert "s.csv" in str(err.value)
    p = _write(tmp_path / "t.csv", "stim_id,label\na,1\n")
    with pytest.raises(StimulusError, match="missing required column.*'path'"):
        StimulusSet.from_csv(p)


def test_csv_duplicate_ids_named(tmp_path):
    _img(tmp_path / "a.png")
    p = _write(
        tmp_path / "s.csv",
        "stim_id,path\nx,a.png\ndupA,a.png\ny,a.png\ndupA,a.png\ndupB,a.png\ndupB,a.png\n",
    )
    with pytest.raises(StimulusError, match="duplicate") as err:
        StimulusSet.from_csv(p)
    assert "dupA" in str(err.value) and "dupB" in str(err.value) and "'x'" not in str(err.value)


def test_csv_missing_files_listed_or_deferred(tmp_path):
    _img(tmp_path / "ok.png")
    lines = ["stim_id,path", "ok,ok.png"] + [f"m{i},gone{i}.png" for i in range(8)]
    p = _write(tmp_path / "s.csv", "\n".join(lines) + "\n")
    with pytest.raises(StimulusError) as err:
        StimulusSet.from_csv(p)
    msg = str(err.value)
    assert "8 of 9" in msg and "gone0.png" in msg and "gone4.png" in msg and "3 more" in msg
    assert "gone7.png" not in msg  # only the first few are listed
    s = StimulusSet.from_csv(p, check_files=False)
    assert len(s) == 9
    s.load(0)
    with pytest.raises(StimulusError, match="gone0.png"):
        s.load(1)


def test_csv_mixed_modalities(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "b.wav").write_bytes(b"")
    p = _write(tmp_path / "s.csv", "stim_id,path\nimg,a.png\nsnd,b.wav\n")
    with pytest.raises(StimulusError, match="mixed modalities") as err:
        StimulusSet.from_csv(p)
    assert "a.png" in str(err.value) and "b.wav" in str(err.value)
    p = _write(tmp_path / "m.csv", "stim_id,path,modality\nimg,a.png,image\nsnd,a.png,video\n")
    with pytest.raises(StimulusError, match="image.*video"):
        StimulusSet.from_csv(p)
    p = _write(tmp_path / "u.csv", "stim_id,path,modality\nimg,a.png,smell\n")
    with pytest.raises(StimulusError, match="smell"):
        StimulusSet.from_csv(p)


def test_csv_modality_column_overrides_extension(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "pic.dat").write_bytes((tmp_path / "a.png").read_bytes())
    p = _write(tmp_path / "s.csv", "stim_id,path,modality\nx,pic.dat,image\ny,a.png,\n")
    s = StimulusSet.from_csv(p)
    assert s.modality == "image" and "modality" not in s.attributes
    assert np.asarray(s.load(0)).shape == (3, 4, 3)
    bad = _write(tmp_path / "b.csv", "stim_id,path\nx,pic.dat\n")
    with pytest.raises(StimulusError, match="pic.dat"):
        StimulusSet.from_csv(bad)


def test_csv_edge_rows(tmp_path):
    _img(tmp_path / "a.png")
    p = _write(tmp_path / "s.csv", "stim_id,path,v\n\nx,a.png,1,,\n\n")  # blank + trailing empties
    s = StimulusSet.from_csv(p)
    assert list(s.ids) == ["x"] and s.column("v").tolist() == [1]
    p = _write(tmp_path / "bad.csv", "stim_id,path,v\nx,a.png,1\ny,a.png\n")
    with pytest.raises(StimulusError, match="line 3"):
        StimulusSet.from_csv(p)
    p = _write(tmp_path / "empty.csv", "stim_id,path\n")
    with pytest.raises(StimulusError, match="empty"):
        StimulusSet.from_csv(p)
    p = _write(tmp_path / "nothing.csv", "")
    with pytest.raises(StimulusError, match="empty"):
        StimulusSet.from_csv(p)
    p = _write(tmp_path / "blank_id.csv", "stim_id,path\n,a.png\n")
    with pytest.raises(StimulusError, match="stim_id"):
        StimulusSet.from_csv(p)
    p = _write(tmp_path / "onset.csv", "stim_id,path,onset\nx,a.png,soon\n")
    with pytest.raises(StimulusError, match="onset.*soon"):
        StimulusSet.from_csv(p)
    with pytest.raises(StimulusError, match="not found"):
        StimulusSet.from_csv(tmp_path / "nope.csv")
    p = _write(tmp_path / "d.stim.csv", "type=image\npath=.\ndata=stimID\na.png\n")
    with pytest.raises(StimulusError, match="read_dnnbrain_stim"):
        StimulusSet.from_csv(p)


def test_csv_number_inference(tmp_path):
    _img(tmp_path / "a.png")
    rows = [("1", "1", "", "1_000", "007"), ("2", "2.0", "", "2", "8"), ("", "nan", "", "3", "9")]
    text = "stim_id,path,i,f,e,u,z\n" + "".join(
        f"s{k},a.png,{','.join(r)}\n" for k, r in enumerate(rows)
    )
    s = StimulusSet.from_csv(_write(tmp_path / "s.csv", text))
    i = s.column("i")  # ints with an empty cell -> float with NaN
    assert i.dtype == np.float64 and i[:2].tolist() == [1.0, 2.0] and np.isnan(i[2])
    assert s.column("f").dtype == np.float64 and np.isnan(s.column("f")[2])
    assert np.isnan(s.column("e")).all()  # no value at all -> NaN
    assert s.column("u").dtype.kind == "U"  # "1_000" is text, not Python's 1000
    assert s.column("z").tolist() == [7, 8, 9]


def test_tsv(tmp_path):
    _img(tmp_path / "a.png")
    s = StimulusSet.from_csv(_write(tmp_path / "s.tsv", "stim_id\tpath\tc\nx\ta.png\ta,b\n"))
    assert s.column("c").tolist() == ["a,b"]


def test_write_csv_round_trip(study, tmp_path):
    path, _, _ = study
    s = StimulusSet.from_csv(path)
    for out in (path.parent / "copy.csv", tmp_path / "other" / "copy.csv"):
        s.write_csv(out)
        r = StimulusSet.from_csv(out)
        assert list(r.ids) == list(s.ids) and r.paths == s.paths and r.modality == s.modality
        assert list(r.attributes) == list(s.attributes)
        for name, values in s.attributes.items():
            assert r.column(name).dtype == values.dtype, name
            np.testing.assert_array_equal(r.column(name), values)
        assert not [f for f in os.listdir(out.parent) if f.startswith(".copy.csv")]
    with open(path.parent / "copy.csv", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert written[0]["path"] == "images/im0.png"  # inside the CSV's folder: relative
    assert written[4]["path"] == s.paths[4]
    with pytest.raises(StimulusError, match="array"):
        StimulusSet.from_array(np.zeros((2, 3, 3), np.uint8)).write_csv(tmp_path / "a.csv")


def test_write_csv_of_computed_attributes(tmp_path):
    paths = [_img(tmp_path / f"p{i}.png") for i in range(3)]
    attrs = {"x": np.array([0.1, np.nan, 1 / 3]), "k": np.array([1, 2, 3]), "t": ["a", "", "c"]}
    s = StimulusSet.from_paths(paths, attributes=attrs)
    s.write_csv(tmp_path / "s.csv")
    r = StimulusSet.from_csv(tmp_path / "s.csv")
    np.testing.assert_array_equal(r.column("x"), attrs["x"])  # full float precision
    np.testing.assert_array_equal(r.column("k"), attrs["k"])
    assert r.column("t").tolist() == attrs["t"]


# --------------------------------------------------------------------------- other constructors


def test_from_folder(tmp_path):
    for name in ["b.png", "a.JPG", "c.gif", "._hidden.png", "notes.txt"]:
        if name.endswith("txt"):
            (tmp_path / name).write_text("x")
        else:
            _img(tmp_path / name)
    _img(tmp_path / "sub" / "d.png")
    s = StimulusSet.from_folder(tmp_path)
    assert list(s.ids) == ["a", "b", "c"] and s.modality == "image"
    assert s.paths == [str(tmp_path / n) for n in ["a.JPG", "b.png", "c.gif"]]
    s = StimulusSet.from_folder(tmp_path, extensions=["png"], recursive=True)
    assert list(s.ids) == ["b", "d"]
    _img(tmp_path / "sub" / "b.png")  # stems collide -> relative paths
    s = StimulusSet.from_folder(tmp_path, extensions=[".png"], recursive=True)
    assert list(s.ids) == ["b", "sub/b", "sub/d"]
    (tmp_path / "s.wav").write_bytes(b"")
    with pytest.raises(StimulusError, match=r"mixed modalities.*s\.wav"):
        StimulusSet.from_folder(tmp_path)
    assert len(StimulusSet.from_folder(tmp_path, modality="image")) == 3
    assert StimulusSet.from_folder(tmp_path, modality="audio").ids.tolist() == ["s"]
    with pytest.raises(StimulusError, match="no video files"):
        StimulusSet.from_folder(tmp_path, modality="video")
    with pytest.raises(StimulusError, match="not found"):
        StimulusSet.from_folder(tmp_path / "nope")


def test_from_paths_and_empty(tmp_path):
    paths = [_img(tmp_path / "x" / "a.png"), _img(tmp_path / "y" / "a.png")]
    s = StimulusSet.from_paths(paths)
    assert list(s.ids) == ["x/a", "y/a"]  # colliding stems made unique
    assert StimulusSet.from_paths(paths, ids=["p", "q"]).ids.tolist() == ["p", "q"]
    with pytest.raises(StimulusError, match="empty"):
        StimulusSet.from_paths([])
    with pytest.raises(StimulusError, match="empty"):
        StimulusSet.from_array(np.zeros((0, 4, 4, 3), np.uint8))
    with pytest.raises(StimulusError, match="duplicate"):
        StimulusSet.from_paths(paths, ids=["p", "p"])
    with pytest.raises(StimulusError, match="exactly one"):
        StimulusSet()
    with pytest.raises(StimulusError, match="attribute 'a'"):
        StimulusSet.from_paths(paths, attributes={"a": [1, 2, 3]})


def test_from_array_uint8_and_float():
    rng = np.random.default_rng(1)
    torch = pytest.importorskip("torch")
    rgb = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    s = StimulusSet.from_array(rgb)
    assert s.ids.tolist() == ["0", "1", "2", "3", "4"] and s.paths is None
    for i in range(5):
        np.testing.assert_array_equal(np.asarray(s.load(i)), rgb[i])
    sub = s[np.array([4, 1])]
    np.testing.assert_array_equal(sub.data, rgb[[4, 1]])
    np.testing.assert_array_equal(np.asarray(sub.load(0)), rgb[4])
    gray = rng.integers(0, 256, (2, 3, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        np.asarray(StimulusSet.from_array(gray).load(1)), np.stack([gray[1]] * 3, -1)
    )
    x = torch.randn(4, 3, 8, 8)
    t = StimulusSet.from_array(x, ids=list("abcd"))
    assert torch.equal(t.load(2), x[2])
    assert torch.equal(t[np.array([True, False, True, False])].data, x[[0, 2]])
    assert torch.equal(t[1:3].data, x[1:3])
    with pytest.raises(StimulusError, match="uint8"):
        StimulusSet.from_array(np.zeros((2, 4, 4, 3), np.uint16))
    with pytest.raises(StimulusError, match=r"\(n, C, H, W\)"):
        StimulusSet.from_array(np.zeros((2, 4, 4), np.float32))


# --------------------------------------------------------------------------- array behaviour


@pytest.fixture
def small(tmp_path):
    paths = [_img(tmp_path / f"p{i}.png", value=i) for i in range(6)]
    attrs = {"label": np.array([0, 1, 0, 1, 0, 1]), "name": np.array(list("abcdef"))}
    return StimulusSet.from_paths(paths, ids=[f"id{i}" for i in range(6)], attributes=attrs)


@pytest.mark.parametrize(
    "key, expected",
    [
        (2, [2]),
        (-1, [5]),
        (np.int64(3), [3]),
        (slice(1, 5, 2), [1, 3]),
        ([4, 0, 4], [4, 0, 4]),
        (np.array([5, -6]), [5, 0]),
        (np.array([True, False, False, True, False, True]), [0, 3, 5]),
        ((np.array([1, 2]), Ellipsis), [1, 2]),
        (Ellipsis, [0, 1, 2, 3, 4, 5]),
        (np.array([], dtype=int), []),
    ],
)
def test_indexing_follows_numpy(small, key, expected):
    sub = small[key]
    assert isinstance(sub, StimulusSet) and len(sub) == len(expected)
    ref = np.arange(6)[key] if not isinstance(key, int) else np.arange(6)[[key]]
    np.testing.assert_array_equal(ref.ravel(), expected)  # same semantics as numpy
    assert sub.ids.tolist() == [f"id{i}" for i in expected]
    assert sub.paths == [small.paths[i] for i in expected]
    np.testing.assert_array_equal(sub.column("label"), small.column("label")[expected])
    assert sub.column("name").tolist() == [small.column("name")[i] for i in expected]


def test_indexing_errors_and_readonly(small):
    with pytest.raises(IndexError):
        small[6]
    with pytest.raises(IndexError):
        small[np.array([0, 9])]
    with pytest.raises(IndexError):
        small[np.array([True, False])]
    with pytest.raises(IndexError):
        small[0, 1]
    with pytest.raises(TypeError, match="column"):
        small["label"]
    with pytest.raises(ValueError):
        small.ids[0] = "zzz"
    with pytest.raises(ValueError):
        small[1:3].column("label")[0] = 7
    assert small.column("label").tolist() == [0, 1, 0, 1, 0, 1]


def test_accessors(small):
    assert small.indices_of(["id3", "id0"]).tolist() == [3, 0]
    with pytest.raises(KeyError, match="nope"):
        small.indices_of(["id1", "nope"])
    with pytest.raises(KeyError, match="label") as err:
        small.column("lable")
    assert "stim_id" in str(err.value)
    assert small.column("modality").tolist() == ["image"] * 6
    text = repr(small)
    assert text.startswith("StimulusSet(n=6") and "image" in text and len(text) < 200
    assert [len(x) for x in small] == [1] * 6
    with pytest.raises(TypeError, match="numpy array"):
        np.asarray(small)


def test_nothing_is_read_while_splitting(small, tmp_path, monkeypatch):
    from sklearn.model_selection import KFold, train_test_split
    from sklearn.utils import _safe_indexing
    from sklearn.utils.validation import _num_samples, check_consistent_length, indexable

    for p in small.paths:
        os.remove(p)  # any read would now fail

    def no_open(*a, **k):
        raise AssertionError("a file was opened")

    monkeypatch.setattr(Image, "open", no_open)
    assert _num_samples(small) == 6
    check_consistent_length(small, np.zeros(6))
    with pytest.raises(ValueError):
        check_consistent_length(small, np.zeros(5))
    X, y = indexable(small, np.arange(6))
    assert X is small
    for train, test in KFold(3).split(small):
        part = _safe_indexing(small, train)
        assert isinstance(part, StimulusSet)
        assert part.ids.tolist() == small.ids[train].tolist()
        assert _safe_indexing(small, test).paths == [small.paths[i] for i in test]
    mask = np.arange(6) % 2 == 0
    assert _safe_indexing(small, mask).ids.tolist() == ["id0", "id2", "id4"]
    a, b, ya, yb = train_test_split(small, np.arange(6), test_size=2, random_state=0)
    assert a.ids.tolist() == [f"id{i}" for i in ya] and b.ids.tolist() == [f"id{i}" for i in yb]
    back = pickle.loads(pickle.dumps(small[[5, 1]]))  # joblib workers receive pickles
    assert back.ids.tolist() == ["id5", "id1"] and back.paths == [small.paths[5], small.paths[1]]
    assert back.column("label").tolist() == [1, 1]


def test_cross_validate_and_grid_search_match_arrays(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, KFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.default_rng(0)
    n = 40
    feats = rng.normal(size=(n, 2))
    y = (feats[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    paths = [tmp_path / f"s{i}.png" for i in range(n)]  # files need not exist
    stims = StimulusSet.from_paths(
        paths, attributes={"f0": feats[:, 0], "f1": feats[:, 1]}, check_files=False
    )
    seen = []

    def to_features(X):
        assert isinstance(X, StimulusSet)
        seen.append(X.ids.copy())
        return np.column_stack([X.column("f0"), X.column("f1")])

    cv = KFold(4, shuffle=True, random_state=0)
    pipe = make_pipeline(FunctionTransformer(to_features), LogisticRegression())
    res = cross_validate(pipe, stims, y, cv=cv, return_indices=True)
    ref = cross_validate(LogisticRegression(), feats, y, cv=cv)
    np.testing.assert_allclose(res["test_score"], ref["test_score"])
    for train, test in zip(res["indices"]["train"], res["indices"]["test"]):
        assert any(np.array_equal(s, stims.ids[train]) for s in seen)
        assert any(np.array_equal(s, stims.ids[test]) for s in seen)
    grid = {"logisticregression__C": [0.01, 1.0]}
    gs = GridSearchCV(pipe, grid, cv=cv).fit(stims, y)
    gs_ref = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0]}, cv=cv).fit(feats, y)
    np.testing.assert_allclose(
        gs.cv_results_["mean_test_score"], gs_ref.cv_results_["mean_test_score"]
    )
    assert gs.best_params_["logisticregression__C"] == gs_ref.best_params_["C"]
    np.testing.assert_array_equal(gs.predict(stims[:5]), gs_ref.predict(feats[:5]))


# --------------------------------------------------------------------------- coercion


def test_as_stimulus_set(tmp_path, study):
    path, _, _ = study
    s = StimulusSet.from_csv(path)
    assert as_stimulus_set(s) is s
    assert as_stimulus_set(path).ids.tolist() == s.ids.tolist()
    assert as_stimulus_set(str(path.parent / "images")).ids.tolist() == [f"im{i}" for i in range(4)]
    assert as_stimulus_set(s.paths[:2]).paths == s.paths[:2]
    assert as_stimulus_set(np.array(s.paths[:2])).paths == s.paths[:2]
    assert len(as_stimulus_set(np.zeros((3, 4, 4, 3), np.uint8))) == 3
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"stim_id": ["a", "b"], "path": s.paths[:2], "v": [1.5, 2.5]})
    f = as_stimulus_set(frame)
    assert f.ids.tolist() == ["a", "b"] and f.column("v").tolist() == [1.5, 2.5]
    with pytest.raises(TypeError, match="StimulusSet"):
        as_stimulus_set(42)
    with pytest.raises(StimulusError, match="empty"):
        as_stimulus_set([])
    for missing in ("nope.csv", "nope.stim.csv", "nope.png", "nope"):
        with pytest.raises(StimulusError, match=f"stimuli '.*{missing}': no such file or folder"):
            as_stimulus_set(tmp_path / missing)


# --------------------------------------------------------------------------- DNNBrain


def test_dnnbrain_image_file(tmp_path):
    for rel in ["pic1.png", "pic2.png", "sub/pic3.png"]:
        _img(tmp_path / "stims" / rel)
    text = (
        "type=image\npath=stims\ntitle=image stimuli\n\n"
        "data=stimID,onset,duration,label,condition,acc,RT\n"
        "pic1.png,0,1,0,cat,0.4,0.5\npic2.png,1,1,1,dog,0.6,0.4\nsub\\pic3.png,2,1,0,cat,1,0.5\n"
    )
    s = read_dnnbrain_stim(_write(tmp_path / "exp.stim.csv", text))
    assert s.info == {"type": "image", "path": "stims", "title": "image stimuli"}
    assert s.ids.tolist() == ["pic1.png", "pic2.png", "sub\\pic3.png"]
    root = tmp_path / "stims"
    assert s.paths == [str(root / "pic1.png"), str(root / "pic2.png"), str(root / "sub/pic3.png")]
    assert s.column("label").dtype == np.int64 and s.column("label").tolist() == [0, 1, 0]
    assert s.column("condition").tolist() == ["cat", "dog", "cat"]
    assert s.column("acc").dtype == np.float64 and s.column("acc").tolist() == [0.4, 0.6, 1.0]
    assert s.column("onset").tolist() == [0.0, 1.0, 2.0]
    assert np.asarray(s.load(2)).shape == (3, 4, 3)
    assert s[1:].info["title"] == "image stimuli"
    assert as_stimulus_set(tmp_path / "exp.stim.csv").ids.tolist() == s.ids.tolist()
    # variant: the column names on the line after "data="
    text2 = f"type=image\npath={root}\ndata=\nstimID,label\npic2.png,3\n"
    s2 = read_dnnbrain_stim(_write(tmp_path / "v.stim.csv", text2))
    assert s2.paths == [str(root / "pic2.png")] and s2.column("label").tolist() == [3]


def test_dnnbrain_errors(tmp_path):
    _img(tmp_path / "a.png")
    cases = {
        "nodata": ("type=image\npath=.\nstimID\na.png\n", "data="),
        "notype": ("path=.\ndata=stimID\na.png\n", "type="),
        "nopath": ("type=image\ndata=stimID\na.png\n", "path="),
        "badtype": ("type=smell\npath=.\ndata=stimID\na.png\n", "smell"),
        "noid": ("type=image\npath=.\ndata=name\na.png\n", "stimID"),
        "cells": ("type=image\npath=.\ndata=stimID,label\na.png\n", "line 4"),
        "missing": ("type=image\npath=.\ndata=stimID\nzz.png\n", "zz.png"),
        "dup": ("type=image\npath=.\ndata=stimID\na.png\na.png\n", "duplicate"),
        "norows": ("type=image\npath=.\ndata=stimID\n", "empty"),
        "frame": ("type=video\npath=a.png\ndata=stimID\n0\n", "frame"),
    }
    for name, (text, match) in cases.items():
        with pytest.raises(StimulusError, match=match):
            read_dnnbrain_stim(_write(tmp_path / f"{name}.stim.csv", text))


def test_dnnbrain_video_frames(tmp_path):
    av = pytest.importorskip("av")
    video = tmp_path / "movie.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for k in range(6):
            frame = np.full((32, 32, 3), 40 * k, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    text = "type=video\npath=movie.mp4\ndata=stimID,label\n2,0\n5,1\n1,0\n"
    path = _write(tmp_path / "v.stim.csv", text)
    s = read_dnnbrain_stim(path)
    assert s.modality == "video" and s.paths == [str(video)] * 3
    assert s.column("frame").tolist() == [2, 5, 1] and s.ids.tolist() == ["2", "5", "1"]
    frames = read_dnnbrain_stim(path, frames="images")
    clip, _ = s.load(0)
    assert frames.modality == "image" and frames.column("label").tolist() == [0, 1, 0]
    for i, f in enumerate([2, 5, 1]):  # 1-based frame numbers, as in DNNBrain
        np.testing.assert_array_equal(np.asarray(frames.load(i)), clip[f - 1])
    means = [np.asarray(frames.load(i)).mean() for i in range(3)]
    assert means[1] > means[0] > means[2]  # frame 5 brightest, frame 1 darkest


def test_from_folder_relative_path_resolves_once(tmp_path, monkeypatch):
    folder = tmp_path / "sub" / "imgs"
    folder.mkdir(parents=True)
    Image.new("RGB", (4, 4), (10, 20, 30)).save(folder / "a.png")
    monkeypatch.chdir(tmp_path)
    stims = StimulusSet.from_folder("sub/imgs")
    assert stims.paths == [str(folder / "a.png")]
    assert stims.load(0).getpixel((0, 0)) == (10, 20, 30)
