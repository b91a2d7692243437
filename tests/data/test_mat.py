"""The MATLAB .mat loader on files the tests write (scipy.io.savemat for v5, h5py for v7.3)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from nebula.data import load
from nebula.errors import DataError
from tests.conftest import shared_dataset


def _images(n: int = 12, h: int = 4, w: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, h, w) uint8 images, each asymmetric (a bright top-left corner), and labels 1..3."""
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 100, (n, h, w)).astype(np.uint8)
    imgs[:, 0, 0] = 255
    return imgs, (np.arange(n) % 3 + 1).reshape(-1, 1).astype(np.float64)


def write_v73(path, **variables) -> None:
    """A MATLAB v7.3 file: 512-byte text header, then HDF5 with each array stored axis-reversed."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            if isinstance(value, str):
                ds = f.create_dataset(name, data=np.frombuffer(value.encode("utf-16-le"), np.uint16)[:, None])
                ds.attrs["MATLAB_class"] = np.bytes_("char")
            else:
                value = np.asarray(value)
                ds = f.create_dataset(name, data=value.T)
                ds.attrs["MATLAB_class"] = np.bytes_("double" if value.dtype == np.float64 else str(value.dtype))
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .".ljust(116, b" "))


@pytest.mark.parametrize("order", ["C", "F"])
def test_images_in_both_orders(tmp_path, order):
    imgs, y = _images()
    flat = imgs.reshape(len(imgs), -1, order=order)  # what a row of X holds in that order
    scipy.io.savemat(tmp_path / "faces.mat", {"X": flat, "Y": y})
    ds = load(tmp_path / "faces.mat", options={"shape": "4x6", "order": order})
    assert ds.modality == "image" and ds.x.shape == (12, 1, 4, 6)
    np.testing.assert_allclose(ds.x[:, 0].numpy(), imgs / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y, np.arange(12) % 3)  # 1-based file labels -> 0..K-1
    assert ds.meta["class_names"] == ["1", "2", "3"] and ds.meta["order"] == order


def test_shape_from_im_height_width_and_default_column_major(tmp_path):
    imgs, y = _images(h=5, w=3)
    scipy.io.savemat(tmp_path / "palm.mat", {"X": imgs.reshape(12, -1, order="F").astype(np.float64) * 2 - 11,
                                             "Y": y, "im_height": 5.0, "im_width": 3.0})
    ds = load(tmp_path / "palm.mat")
    assert ds.x.shape == (12, 1, 5, 3) and float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    assert int(ds.x[0, 0].argmax()) == 0  # the bright corner is top-left: upright


def test_tabular_standardised_and_custom_names(tmp_path):
    rng = np.random.default_rng(1)
    feats = rng.normal(3.0, 2.0, (30, 7))
    feats[:, 2] = 5.0  # a constant feature keeps scale 1
    scipy.io.savemat(tmp_path / "t.mat", {"fea": feats, "gnd": np.arange(30)[None] % 2})
    ds = load(tmp_path / "t.mat", options={"x": "fea", "y": "gnd"})
    assert ds.modality == "tabular" and ds.x.shape == (30, 7)
    np.testing.assert_allclose(ds.x.mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x.std(0, unbiased=False).numpy()[[0, 1, 3]], 1.0, atol=1e-4)
    np.testing.assert_array_equal(ds.y, np.arange(30) % 2)
    again = load(tmp_path / "t.mat", options={"x": "fea", "y": "gnd", "state": ds.meta["state"]})
    np.testing.assert_allclose(again.x.numpy(), ds.x.numpy())


def test_image_file_read_as_tabular(tmp_path):
    imgs, y = _images()
    scipy.io.savemat(tmp_path / "i.mat", {"X": imgs.reshape(12, -1), "Y": y, "im_height": 4, "im_width": 6})
    ds = load(tmp_path / "i.mat", modality="tabular")
    assert ds.modality == "tabular" and ds.x.shape == (12, 24)


def test_without_labels(tmp_path):
    scipy.io.savemat(tmp_path / "u.mat", {"X": np.ones((5, 3))})
    assert load(tmp_path / "u.mat").y is None


def test_v73_equals_v5(tmp_path):
    imgs, y = _images()
    flat = imgs.reshape(12, -1, order="F").astype(np.float64)
    scipy.io.savemat(tmp_path / "v5.mat", {"X": flat, "Y": y})
    write_v73(tmp_path / "v73.mat", X=flat, Y=y, name="faces")
    a = load(tmp_path / "v5.mat", options={"shape": [4, 6]})
    b = load(tmp_path / "v73.mat", options={"shape": [4, 6]})
    np.testing.assert_allclose(a.x.numpy(), b.x.numpy())
    np.testing.assert_array_equal(a.y, b.y)
    with pytest.raises(DataError, match=r"variable 'name' \(x\) is not a numeric array \(found char\)"):
        load(tmp_path / "v73.mat", options={"x": "name"})


def _error(path, **options) -> str:
    with pytest.raises(DataError) as info:
        load(path, options=options)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_errors(tmp_path):
    scipy.io.savemat(tmp_path / "a.mat", {"fea": np.ones((4, 3)), "gnd": np.ones((5, 1)),
                                          "names": np.array(["ab", "cd"]), "cells": np.array([[1, "x"]], dtype=object)})
    msg = _error(tmp_path / "a.mat")
    assert "no variable 'X'" in msg and "cells, fea, gnd, names" in msg
    assert "no variable 'lab'" in _error(tmp_path / "a.mat", x="fea", y="lab")
    assert "5 labels for 4 samples" in _error(tmp_path / "a.mat", x="fea", y="gnd")
    assert "not a numeric array (found char)" in _error(tmp_path / "a.mat", x="names")
    assert "not a numeric array (found cell or struct)" in _error(tmp_path / "a.mat", x="cells")
    assert "needs 4" in _error(tmp_path / "a.mat", x="fea", y="none", shape="2x2")
    assert "not an image shape" in _error(tmp_path / "a.mat", x="fea", y="none", shape="big")
    assert "order='Z'" in _error(tmp_path / "a.mat", x="fea", y="none", order="Z")
    (tmp_path / "b.mat").write_text("this is not a MATLAB file\n" * 20)
    assert "not a MATLAB .mat file" in _error(tmp_path / "b.mat")
    (tmp_path / "c.mat").write_bytes(b"")
    assert "not a MATLAB .mat file" in _error(tmp_path / "c.mat")


def test_cli_reads_mat_with_data_options(tmp_path):
    from nebula.cli import main

    imgs, y = _images(n=40, h=8, w=8)
    scipy.io.savemat(tmp_path / "f.mat", {"X": imgs.reshape(40, -1, order="F"), "Y": y})
    rc = main(["train", "--data", str(tmp_path / "f.mat"), "--data-option", "shape=8x8", "--data-option", "order=F",
               "--epochs", "1", "--set", "train.pretrain_epochs=0", "--set", "train.anchor_init=kmeans",
               "--anchors", "3", "-o", str(tmp_path / "run"), "--quiet"])
    assert rc == 0


@pytest.mark.parametrize("name, options, shape, classes", [
    ("JAFFE", {"shape": "32x32", "order": "C"}, (213, 1, 32, 32), 10),
    ("UMIST", {"shape": "32x32", "order": "F"}, (575, 1, 32, 32), 20),
    ("Palm", {}, (2000, 1, 16, 16), 100),
    ("Isolet", {}, (1560, 617), 26),
    ("segment_uni", {}, (2310, 19), 7),
])
def test_shared_mat_files(name, options, shape, classes):
    folder = shared_dataset("mat")
    ds = load(folder / f"{name}.mat", options=options)
    assert tuple(ds.x.shape) == shape and ds.num_classes == classes
