"""Property-based tests: random bytes, truncations and corruptions of every supported file format, and
random configuration input, only ever succeed or raise the clear :class:`NebulaError` (never a crash)."""

from __future__ import annotations

import gzip
import os
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nebula.config import Config
from nebula.data import load
from nebula.data.base import NebulaDataset
from nebula.errors import ConfigError, NebulaError

from .helpers import cloud, csv_text, idx_bytes, optdigits_text, pcd_bytes, ply_bytes, tiny_images, write_h5

#: examples per property (raise with NEBULA_HYPOTHESIS_EXAMPLES=500 for a thorough run)
EXAMPLES = int(os.environ.get("NEBULA_HYPOTHESIS_EXAMPLES", "8"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _h5_bytes(tmp: Path) -> bytes:
    x, y = tiny_images(8)
    return write_h5(tmp / "valid.h5", x, y).read_bytes()


def _valid_files(tmp: Path) -> dict[str, tuple[str, bytes]]:
    """format -> (file name, bytes of a valid file)."""
    x, y = tiny_images(12)
    pts = cloud(40)
    return {
        "idx": ("train-images-idx3-ubyte", idx_bytes(x)),
        "idx-gz": ("train-images-idx3-ubyte.gz", gzip.compress(idx_bytes(x))),
        "h5": ("usps.h5", _h5_bytes(tmp)),
        "pcd-binary": ("cloud.pcd", pcd_bytes(pts, binary=True)),
        "pcd-ascii": ("cloud.pcd", pcd_bytes(pts, binary=False)),
        "ply-binary": ("cloud.ply", ply_bytes(pts, binary=True)),
        "ply-ascii": ("cloud.ply", ply_bytes(pts, binary=False)),
        "xyz": ("cloud.xyz", "\n".join(" ".join(f"{v:.4f}" for v in p) for p in pts).encode()),
        "off": ("mesh.off", b"OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n"),
        "optdigits": ("optdigits.tra", optdigits_text(x, y).encode()),
        "csv": ("texts.csv", csv_text().encode()),
        "tsv": ("texts.tsv", csv_text().replace(",", "\t").encode()),
        "trec": ("questions.txt", b"".join(f"{c}:x what is {w} ?\n".encode() for c, w in
                                            zip(["DESC", "HUM", "LOC"] * 4, string.ascii_lowercase))),
        "npz-images": ("images.npz", _npz_bytes(tmp, x=x, y=y)),
        "binvox": ("shape.binvox", b"#binvox 1\ndim 4 4 4\ntranslate 0 0 0\nscale 1\ndata\n" + bytes([0, 32, 1, 32])),
    }


def _npz_bytes(tmp: Path, **arrays: np.ndarray) -> bytes:
    path = tmp / "valid.npz"
    np.savez(path, **arrays)
    return path.read_bytes()


def _load_only_clear_errors(path: Path) -> None:
    try:
        ds = load(path)
    except NebulaError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip(), message
        return
    assert isinstance(ds, NebulaDataset) and len(ds) > 0


_VALID: dict[str, tuple[str, bytes]] = {}


def _valid(fmt: str) -> tuple[str, bytes]:
    """(file name, bytes) of a valid ``fmt`` file, made once per session."""
    if not _VALID:
        with tempfile.TemporaryDirectory() as tmp:
            _VALID.update(_valid_files(Path(tmp)))
    return _VALID[fmt]


FORMATS = ["idx", "idx-gz", "h5", "pcd-binary", "pcd-ascii", "ply-binary", "ply-ascii", "xyz", "off", "optdigits",
           "csv", "tsv", "trec", "npz-images", "binvox"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_files_load(fmt, tmp_path):
    name, data = _valid(fmt)
    path = tmp_path / name
    path.write_bytes(data)
    assert len(load(path)) > 0


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(cut=st.floats(0.0, 0.999))
def test_truncated_files_give_clear_errors(fmt, tmp_path, cut):
    name, data = _valid(fmt)
    path = tmp_path / name
    path.write_bytes(data[: int(cut * len(data))])
    _load_only_clear_errors(path)


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(edits=st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_files_give_clear_errors(fmt, tmp_path, edits):
    name, data = _valid(fmt)
    buf = bytearray(data)
    for where, value in edits:
        buf[int(where * len(buf))] = value
    path = tmp_path / name
    path.write_bytes(bytes(buf))
    _load_only_clear_errors(path)


@pytest.mark.parametrize("name", ["x-images-idx3-ubyte", "d.h5", "c.pcd", "c.ply", "c.xyz", "m.off", "o.tra", "t.csv",
                                  "t.tsv", "t.txt", "a.npz", "a.npy", "s.binvox", "unknown.bin"])
@SETTINGS
@given(data=st.binary(max_size=600))
def test_random_bytes_give_clear_errors(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    _load_only_clear_errors(path)


# ------------------------------------------------------------------ configuration parser
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=6)
_keys = st.sampled_from(["data", "model", "loss", "train", "contrastive", "output", "method", "trian", "lr", "epochs",
                         "latent_dim", "num_anchors", "batch_size", "hidden", "source", "options", "beta"])
_sections = st.dictionaries(_keys, st.one_of(_values, st.dictionaries(_keys, _values, max_size=4)), max_size=4)


@SETTINGS
@given(data=_sections)
def test_config_from_dict_only_raises_config_error(data):
    try:
        cfg = Config.from_dict(data)
        cfg.validate()
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert Config.from_dict(cfg.to_dict()) == cfg


@SETTINGS
@given(key=st.one_of(_keys, st.text(max_size=20), st.builds(lambda a, b: f"{a}.{b}", _keys, _keys)),
       raw=st.text(max_size=20))
def test_config_override_only_raises_config_error(key, raw):
    cfg = Config()
    try:
        cfg.override([f"{key}={raw}"])
        cfg.validate()
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=300), _sections.map(lambda d: yaml.safe_dump(d).encode())))
def test_config_file_only_raises_config_error(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    try:
        Config.from_yaml(path).validate()
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
