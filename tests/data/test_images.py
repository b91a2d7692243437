from __future__ import annotations

import gzip
import struct

import h5py
import numpy as np
import pytest
from PIL import Image

from nebula.data import load
from nebula.errors import DataError
from tests.conftest import shared_dataset


def write_idx(path, arr: np.ndarray, compress: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    (gzip.open(path, "wb") if compress else open(path, "wb")).write(data)


def test_digits_default():
    ds = load("digits")
    assert ds.x.shape == (1797, 1, 8, 8) and float(ds.x.max()) == 1.0 and float(ds.x.min()) == 0.0
    assert ds.y.shape == (1797,) and set(np.unique(ds.split)) == {0, 1}
    assert abs(ds.split.mean() - 0.2) < 0.01
    assert ds.meta["split_kind"].startswith("stratified")


def test_idx_folder_with_official_split(tmp_path, tiny_images):
    x, y = tiny_images
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x[:40])
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y[:40])
    write_idx(tmp_path / "t10k-images-idx3-ubyte", x[40:], compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", y[40:], compress=False)
    ds = load(tmp_path)
    assert ds.x.shape == (60, 1, 8, 8) and ds.meta["split_kind"] == "official"
    np.testing.assert_array_equal(ds.split, [0] * 40 + [1] * 20)
    np.testing.assert_array_equal(ds.y, y)
    np.testing.assert_allclose(ds.x[0, 0].numpy(), x[0] / 255.0, rtol=1e-6)


def test_idx_truncated_and_mismatched(tmp_path, tiny_images):
    x, y = tiny_images
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x)
    raw = gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz").read()
    gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb").write(raw[:-7])
    with pytest.raises(DataError, match="payload has"):
        load(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y[:-1])
    with pytest.raises(DataError, match="59 labels for 60 images"):
        load(tmp_path)


def test_usps_h5(tmp_path, tiny_images):
    x, y = tiny_images
    with h5py.File(tmp_path / "u.h5", "w") as f:
        f["train/data"] = (x[:50].reshape(50, -1) / 255.0).astype(np.float32)
        f["train/target"] = y[:50]
        f["test/data"] = (x[50:].reshape(10, -1) / 255.0).astype(np.float32)
        f["test/target"] = y[50:]
    ds = load(tmp_path / "u.h5")
    assert ds.x.shape == (60, 1, 8, 8) and ds.split.sum() == 10


def test_optdigits_with_header(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.hstack([rng.integers(0, 17, (12, 64)), (np.arange(12) % 3)[:, None]])
    text = "header,line\n" + "\n".join(",".join(map(str, r)) for r in rows)
    (tmp_path / "optdigits.tra").write_text(text)
    (tmp_path / "optdigits.tes").write_text(text)
    ds = load(tmp_path)
    assert ds.x.shape == (24, 1, 8, 8) and ds.split.sum() == 12
    np.testing.assert_allclose(ds.x[0, 0].numpy().ravel(), rows[0, :64] / 16.0, rtol=1e-6)
    (tmp_path / "bad.tra").write_text("1,2,3\n")
    with pytest.raises(DataError, match="expected 65"):
        load(tmp_path / "bad.tra")


def test_npz_layouts(tmp_path, tiny_images):
    x, y = tiny_images
    np.savez(tmp_path / "a.npz", x=x, y=y)
    np.savez(tmp_path / "b.npz", x=x[:, None].astype(np.float32) * 3.0, y=y)
    a, b = load(tmp_path / "a.npz"), load(tmp_path / "b.npz")
    assert a.x.shape == b.x.shape == (60, 1, 8, 8)
    assert float(b.x.max()) <= 1.0
    np.savez(tmp_path / "c.npz", x=x, y=y[:10])
    with pytest.raises(DataError, match="10 labels for 60"):
        load(tmp_path / "c.npz")
    bad = x.astype(np.float32)
    bad[3, 0, 0] = np.nan
    np.savez(tmp_path / "d.npz", x=bad)
    with pytest.raises(DataError, match="NaN"):
        load(tmp_path / "d.npz")


def test_image_folder(tmp_path, tiny_images):
    x, y = tiny_images
    for i in range(12):
        d = tmp_path / f"class{y[i]}"
        d.mkdir(exist_ok=True)
        Image.fromarray(x[i]).save(d / f"{i}.png")
    ds = load(tmp_path)
    assert ds.x.shape == (12, 1, 8, 8)
    assert ds.meta["class_names"] == ["class0", "class1", "class2"]
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "class0" / "odd.png")
    with pytest.raises(DataError, match="expected 8x8"):
        load(tmp_path)


def test_missing_and_unknown(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "nothing")
    (tmp_path / "f.xyz123").write_text("?")
    with pytest.raises(DataError, match="unknown data format"):
        load(tmp_path / "f.xyz123")


@pytest.mark.parametrize("name, n", [("mnist_test", 10000), ("usps/usps.h5", 9298), ("optdigits", 5620)])
def test_real_copies(name, n):
    ds = load(shared_dataset(name))
    assert len(ds) == n and ds.num_classes == 10
