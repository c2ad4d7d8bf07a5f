"""Provenance records: one per output, replaced on re-run, written whole."""

import argparse
import json

import pytest

from neuroprobe.report.provenance import (
    PROVENANCE_FILE,
    library_versions,
    read_provenance,
    record_command,
)


def _args(out, **kw):
    return argparse.Namespace(command="rdm", out=str(out), func=print, **kw)


def test_a_record_stores_the_command_line_and_every_parameter(tmp_path):
    path = record_command(_args(tmp_path / "a.rdm.h5", metric="euclidean"),
                          ["rdm", "x.h5", "--metric", "euclidean"], seconds=1.23456)
    assert path == tmp_path / PROVENANCE_FILE
    rec = read_provenance(tmp_path)["a.rdm.h5"]
    assert rec["argv"] == ["rdm", "x.h5", "--metric", "euclidean"]
    assert rec["parameters"]["metric"] == "euclidean" and "func" not in rec["parameters"]
    assert rec["seconds"] == 1.235 and rec["versions"] == library_versions()


def test_rerunning_into_the_same_output_replaces_its_record_only(tmp_path):
    record_command(_args(tmp_path / "a.h5", metric="correlation"), ["rdm"])
    record_command(_args(tmp_path / "b.h5", metric="cosine"), ["rdm"])
    record_command(_args(tmp_path / "a.h5", metric="euclidean"), ["rdm"])
    records = read_provenance(tmp_path)
    assert records["a.h5"]["parameters"]["metric"] == "euclidean"
    assert records["b.h5"]["parameters"]["metric"] == "cosine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_folder_outputs_are_keyed_dot_and_no_out_records_nothing(tmp_path):
    record_command(_args(tmp_path), ["demo"], is_folder=True)
    assert set(read_provenance(tmp_path)) == {"."}
    assert record_command(argparse.Namespace(command="layers"), ["layers"]) is None


def test_a_broken_provenance_file_names_itself(tmp_path):
    (tmp_path / PROVENANCE_FILE).write_text("[1, 2")
    with pytest.raises(ValueError, match=PROVENANCE_FILE):
        read_provenance(tmp_path)
    (tmp_path / PROVENANCE_FILE).write_text(json.dumps([1]))
    with pytest.raises(ValueError, match="JSON object"):
        read_provenance(tmp_path)
