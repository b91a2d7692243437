"""Point clouds: file readers/writers, folder layouts, normalisation, sampling, augmentation, completion.

Every loader returns ``x`` as (N, P, 3) float32 clouds with a fixed point count P (``num_points``,
default 1,024), labels from class folders and, for the completion task, ``target`` = the complete cloud
while ``x`` is a partial one.

Formats
    * files: PCD (v0.7 ``ascii`` and ``binary``), PLY (``ascii``, ``binary_little_endian``,
      ``binary_big_endian``; vertices, or faces sampled as a mesh), XYZ/TXT/PTS (whitespace- or
      comma-separated rows, first three columns), NPY (P, 3), OFF meshes (area-weighted surface sampling);
    * arrays: ``.npy`` (N, P, 3) and ``.npz`` with ``x`` (N, P, 3), optional ``y`` and ``split``;
    * folders: ModelNet layout ``root/<class>/<train|test>/<file>`` (official split kept; found below
      single-child wrapper folders such as ``modelnet10/ModelNet10/pcd``) and plain class folders
      ``root/<class>/<file>`` (seeded stratified split).

Pre-processing, in order: read (meshes sampled with ``mesh_points`` surface points) -> fixed count
(``sampling`` = ``random`` without replacement, or ``fps`` farthest-point sampling; smaller clouds are
padded with random repeats) -> normalise (centre on the centroid, scale to the unit sphere:
max_i ||p_i|| = 1) -> seeded augmentation (rotation about the ``up_axis``, Gaussian jitter) ->
task (``complete``: a seeded random plane removes 25-50 % of the points of each cloud).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nebula.data.base import NebulaDataset, peek_array, register_format
from nebula.errors import DataError

POINT_SUFFIXES = (".pcd", ".ply", ".xyz", ".txt", ".pts", ".npy", ".off")
MESH_SUFFIXES = (".off",)
SPLIT_NAMES = {"train": 0, "training": 0, "test": 1, "testing": 1, "val": 1, "valid": 1}
TASKS = ("reconstruct", "complete")


# =========================================================================== readers
def read_pcd(path: Path) -> np.ndarray:
    """PCD v0.5-0.7 with fields x y z (others ignored), ``DATA ascii`` or ``DATA binary`` -> (P, 3) float32.

    Binary data are read with one ``np.frombuffer`` over a structured dtype built from FIELDS/SIZE/TYPE/COUNT.
    """
    raw = _read_bytes(path)
    header: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise DataError(f"{path}: PCD header has no DATA line (expected 'DATA ascii' or 'DATA binary')")
        line = raw[pos:end].decode("ascii", "replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        header[key.upper()] = values
        if key.upper() == "DATA":
            break
    fields = header.get("FIELDS", [])
    if not {"x", "y", "z"} <= set(fields):
        raise DataError(f"{path}: PCD FIELDS must include x y z, found {fields}")
    sizes = [int(s) for s in header.get("SIZE", ["4"] * len(fields))]
    types = header.get("TYPE", ["F"] * len(fields))
    counts = [int(c) for c in header.get("COUNT", ["1"] * len(fields))]
    n = int(header.get("POINTS", header.get("WIDTH", ["0"]))[0])
    mode = header["DATA"][0].lower() if header["DATA"] else ""
    if mode == "ascii":
        text = raw[pos:].decode("ascii", "replace")
        table = _parse_table(text, path)
        columns = np.cumsum([0, *counts])
        idx = [columns[fields.index(a)] for a in "xyz"]
        pts = table[:, idx]
    elif mode == "binary":
        kinds = {"F": "f", "I": "i", "U": "u"}
        dtype = np.dtype([(f"{f}_{i}", f"<{kinds[t]}{s}", (c,) if c > 1 else ()) for i, (f, s, t, c) in
                          enumerate(zip(fields, sizes, types, counts))])
        if len(raw) - pos < n * dtype.itemsize:
            raise DataError(f"{path}: PCD binary data has {len(raw) - pos} bytes, expected {n * dtype.itemsize} for {n} points")
        rec = np.frombuffer(raw, dtype=dtype, count=n, offset=pos)
        names = {f: f"{f}_{i}" for i, f in enumerate(fields)}
        pts = np.stack([rec[names[a]].astype(np.float32) for a in "xyz"], axis=1)
    else:
        raise DataError(f"{path}: PCD 'DATA {mode}' is not supported (expected ascii or binary)")
    return np.ascontiguousarray(pts, dtype=np.float32)


_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """PLY (ascii / binary little or big endian) -> vertices (V, 3) float32 and faces (F, 3) int64 or None.

    Polygon faces are triangulated as fans; binary faces must all have the same vertex count (the
    common case of triangle meshes); elements other than vertex and face are skipped.
    """
    raw = _read_bytes(path)
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise DataError(f"{path}: not a PLY file (expected 'ply' ... 'end_header')")
    body = raw.index(b"\n", end) + 1
    elements: list[tuple[str, int, list[tuple[str, ...]]]] = []
    fmt = ""
    for line in raw[:end].decode("ascii", "replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            elements.append((parts[1], int(parts[2]), []))
        elif parts[0] == "property" and elements:
            elements[-1][2].append(tuple(parts[1:]))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise DataError(f"{path}: PLY format '{fmt}' not supported (expected ascii or binary_*_endian)")
    vertices, faces = None, None
    if fmt == "ascii":
        lines = raw[body:].decode("ascii", "replace").split("\n")
        row = 0
        for name, count, props in elements:
            chunk = lines[row : row + count]
            row += count
            if name == "vertex":
                table = _parse_table("\n".join(chunk), path)
                names = [p[-1] for p in props]
                vertices = table[:, [names.index(a) for a in "xyz"]]
            elif name == "face" and count:
                faces = _fan_triangulate([np.array(s.split()[1:], dtype=np.int64) for s in chunk if s.strip()])
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        offset = body
        for name, count, props in elements:
            if props and props[0][0] == "list":
                count_t, index_t = _PLY_TYPES[props[0][1]], _PLY_TYPES[props[0][2]]
                first = int(np.frombuffer(raw, dtype=order + count_t, count=1, offset=offset)[0]) if count else 3
                dtype = np.dtype([("n", order + count_t), ("idx", order + index_t, (first,))])
                rec = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
                if count and not np.all(rec["n"] == first):
                    raise DataError(f"{path}: binary PLY faces with mixed vertex counts are not supported")
                if name == "face":
                    faces = _fan_triangulate([rec["idx"].astype(np.int64)]) if count else None
            else:
                dtype = np.dtype([(p[-1], order + _PLY_TYPES[p[0]]) for p in props])
                if len(raw) - offset < count * dtype.itemsize:  # truncated file
                    raise DataError(f"{path}: PLY element '{name}' needs {count * dtype.itemsize} bytes, found "
                                    f"{max(len(raw) - offset, 0)} (truncated file?)")
                rec = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
                if name == "vertex":
                    if not {"x", "y", "z"} <= set(dtype.names):
                        raise DataError(f"{path}: PLY vertex properties must include x y z, found {list(dtype.names)}")
                    vertices = np.stack([rec[a].astype(np.float32) for a in "xyz"], axis=1)
            offset += count * dtype.itemsize
    if vertices is None:
        raise DataError(f"{path}: PLY has no vertex element with x y z")
    return np.ascontiguousarray(vertices, dtype=np.float32), faces


def read_xyz(path: Path) -> np.ndarray:
    """Rows of >= 3 numbers (whitespace or comma separated; '#' comments) -> (P, 3) float32 (first 3 columns)."""
    text = _read_bytes(path).decode("utf-8", "replace")
    return _parse_table(text, path)[:, :3].astype(np.float32)


def read_off(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """OFF mesh -> vertices (V, 3) float32, triangles (F, 3) int64 (polygons fan-triangulated).

    Accepts the ModelNet quirk where the counts follow ``OFF`` on the first line (``OFF490 518 0``).
    """
    text = _read_bytes(path).decode("ascii", "replace")
    tokens = re.sub(r"#[^\n]*", "", text).split()
    if not tokens or not tokens[0].startswith("OFF"):
        raise DataError(f"{path}: not an OFF file (expected first token 'OFF', found {tokens[:1]})")
    first = tokens[0][3:]
    rest = ([first] if first else []) + tokens[1:]
    try:
        nv, nf = int(rest[0]), int(rest[1])
        values = np.asarray(rest[3 : 3 + 3 * nv], dtype=np.float32)
        vertices = values.reshape(nv, 3)
        face_tokens = np.asarray(rest[3 + 3 * nv :], dtype=np.int64)
    except (ValueError, IndexError):
        raise DataError(f"{path}: malformed OFF body (expected V F E counts, V vertex rows, F face rows)") from None
    faces: list[np.ndarray] = []
    pos = 0
    if nf and len(face_tokens) >= 4 * nf and np.all(face_tokens[: 4 * nf : 4] == 3):
        faces = [face_tokens[: 4 * nf].reshape(nf, 4)[:, 1:]]  # all triangles: one reshape
    else:
        for _ in range(nf):
            k = int(face_tokens[pos])
            faces.append(face_tokens[pos + 1 : pos + 1 + k][None])
            pos += 1 + k
    tris = _fan_triangulate(faces) if nf else np.zeros((0, 3), np.int64)
    if len(tris) and (tris.max() >= nv or tris.min() < 0):
        raise DataError(f"{path}: face index out of range (found {int(tris.max())}, {nv} vertices)")
    return vertices, tris


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniformly on a triangle mesh: triangles drawn with probability proportional to area,
    then uniform barycentric coordinates (u, v) -> reflected into the triangle. Returns (n, 3) float32."""
    if len(faces) == 0:
        return vertices[rng.integers(0, len(vertices), n)].astype(np.float32)
    a, b, c = (vertices[faces[:, i]].astype(np.float64) for i in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    total = area.sum()
    prob = area / total if total > 0 else np.full(len(area), 1.0 / len(area))
    tri = rng.choice(len(faces), size=n, p=prob)
    u, v = rng.random((2, n, 1))
    flip = (u + v) > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    pts = a[tri] + u * (b[tri] - a[tri]) + v * (c[tri] - a[tri])
    return pts.astype(np.float32)


def read_point_file(path: Path, mesh_points: int = 4096, rng: np.random.Generator | None = None) -> np.ndarray:
    """Any supported single point file -> (P, 3) float32; meshes (OFF, PLY with faces) are sampled."""
    rng = rng or np.random.default_rng(0)
    suffix = path.suffix.lower()
    if suffix == ".pcd":
        return read_pcd(path)
    if suffix == ".ply":
        vertices, faces = read_ply(path)
        return sample_surface(vertices, faces, mesh_points, rng) if faces is not None and len(faces) else vertices
    if suffix == ".off":
        vertices, faces = read_off(path)
        return sample_surface(vertices, faces, mesh_points, rng)
    if suffix == ".npy":
        arr = _load_npy(path)
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise DataError(f"{path}: expected a (P, 3) array, found shape {arr.shape}")
        return arr[:, :3].astype(np.float32)
    if suffix in (".xyz", ".txt", ".pts"):
        return read_xyz(path)
    raise DataError(f"{path}: unsupported point file suffix '{suffix}' (expected one of {', '.join(POINT_SUFFIXES)})")


# =========================================================================== writers
def write_pcd(path: Path, points: np.ndarray, binary: bool = True) -> None:
    """Write (P, 3) points as PCD v0.7 (``binary`` little-endian float32, or ``ascii``)."""
    pts = np.asarray(points, dtype="<f4").reshape(-1, 3)
    header = ("# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\n"
              f"COUNT 1 1 1\nWIDTH {len(pts)}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(pts)}\n"
              f"DATA {'binary' if binary else 'ascii'}\n")
    body = pts.tobytes() if binary else "".join(f"{a:.7g} {b:.7g} {c:.7g}\n" for a, b, c in pts).encode()
    Path(path).write_bytes(header.encode() + body)


def write_ply(path: Path, points: np.ndarray, binary: bool = True, faces: np.ndarray | None = None) -> None:
    """Write (P, 3) points (and optional (F, 3) triangles) as PLY, binary little-endian or ascii."""
    pts = np.asarray(points, dtype="<f4").reshape(-1, 3)
    lines = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", f"element vertex {len(pts)}",
             "property float x", "property float y", "property float z"]
    if faces is not None:
        lines += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    header = ("\n".join(lines) + "\nend_header\n").encode()
    if binary:
        body = pts.tobytes()
        if faces is not None:
            rec = np.zeros(len(faces), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
            rec["n"], rec["idx"] = 3, faces
            body += rec.tobytes()
    else:
        body = "".join(f"{a:.7g} {b:.7g} {c:.7g}\n" for a, b, c in pts).encode()
        if faces is not None:
            body += "".join(f"3 {i} {j} {k}\n" for i, j, k in np.asarray(faces)).encode()
    Path(path).write_bytes(header + body)


# =========================================================================== array operations
def normalize_clouds(points: torch.Tensor) -> torch.Tensor:
    """Centre each cloud on its centroid and scale it into the unit sphere.

    points: (N, P, 3) -> p' = (p - mean_i p_i) / max_i ||p_i - mean||  (max radius 1).
    """
    centred = points - points.mean(1, keepdim=True)
    radius = centred.norm(dim=2).amax(1).clamp_min(1e-12)
    return centred / radius.view(-1, 1, 1)


def farthest_point_sample(points: torch.Tensor, k: int, generator: torch.Generator | None = None,
                          chunk: int = 512) -> torch.Tensor:
    """Farthest-point sampling: points (N, P, 3) -> (N, k, 3), batched over N (k sequential steps).

    Starts at a random point per cloud; each step adds the point whose distance to the chosen set
    is largest. Memory O(N P).
    """
    n, p, _ = points.shape
    out = []
    for s in range(0, n, chunk):
        pts = points[s : s + chunk]
        b = len(pts)
        chosen = torch.empty(b, k, dtype=torch.long)
        far = torch.randint(0, p, (b,), generator=generator)
        best = torch.full((b, p), float("inf"))
        rows = torch.arange(b)
        for j in range(k):
            chosen[:, j] = far
            d = (pts - pts[rows, far].unsqueeze(1)).pow(2).sum(2)
            best = torch.minimum(best, d)
            far = best.argmax(1)
        out.append(pts[rows.unsqueeze(1), chosen])
    return torch.cat(out)


def fixed_count(cloud: np.ndarray, k: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """One cloud (P, 3) -> (k, 3): random subset / farthest-point subset; P < k pads with random repeats."""
    p = len(cloud)
    if p == 0:
        raise DataError("empty point cloud")
    if p == k:
        return cloud
    if p < k:
        extra = rng.integers(0, p, k - p)
        return np.concatenate([cloud, cloud[extra]])
    if method == "fps":
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31 - 1)))
        return farthest_point_sample(torch.from_numpy(cloud)[None], k, gen)[0].numpy()
    return cloud[rng.choice(p, k, replace=False)]


def rotation_about_axis(angles: torch.Tensor, axis: int) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) by ``angles`` (N,) radians about coordinate ``axis`` (0=x, 1=y, 2=z)."""
    c, s = torch.cos(angles), torch.sin(angles)
    i, j = [a for a in range(3) if a != axis]
    rot = torch.zeros(len(angles), 3, 3, dtype=angles.dtype)
    rot[:, axis, axis] = 1.0
    rot[:, i, i], rot[:, i, j], rot[:, j, i], rot[:, j, j] = c, -s, s, c
    return rot


def augment_clouds(points: torch.Tensor, generator: torch.Generator, rotate: bool = True, jitter: float = 0.0,
                   up_axis: int = 2, clip: float = 0.05) -> torch.Tensor:
    """Seeded augmentation of (N, P, 3) clouds: a uniform random rotation about the up axis per cloud,
    then Gaussian jitter N(0, jitter^2) per coordinate clipped to +-clip."""
    out = points
    if rotate:
        angles = torch.rand(len(points), generator=generator, dtype=points.dtype) * (2 * torch.pi)
        out = out @ rotation_about_axis(angles, up_axis).transpose(1, 2)
    if jitter > 0:
        noise = torch.randn(out.shape, generator=generator, dtype=out.dtype) * jitter
        out = out + noise.clamp(-clip, clip)
    return out


def plane_cut(points: torch.Tensor, generator: torch.Generator, low: float = 0.25, high: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Completion inputs: a random plane removes a fraction f ~ U(low, high) of each cloud.

    For each cloud a unit normal n is drawn uniformly on the sphere; the round(f P) points with the
    largest p.n are removed (the half-space beyond the plane). The K = P - round(f P) kept points fill
    the first K of P slots (in random order) and the remaining slots repeat random kept points, so the
    partial cloud has the same fixed count P (repeats do not change its set of points).

    points: (N, P, 3). Returns partial (N, P, 3) and kept (N,) int64 counts K.
    """
    n, p, _ = points.shape
    normal = torch.randn(n, 3, generator=generator, dtype=points.dtype)
    normal = normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-12)
    frac = low + (high - low) * torch.rand(n, generator=generator, dtype=points.dtype)
    kept = (p - torch.round(frac * p)).long().clamp(1, p)
    height = (points * normal.unsqueeze(1)).sum(2)
    # kept points are the K lowest along the normal; shuffle them by sorting on (rank < K, random key)
    order = height.argsort(1)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(p).expand(n, p).contiguous())
    key = torch.rand(n, p, generator=generator) + (rank >= kept.unsqueeze(1)).float() * 2.0
    perm = key.argsort(1)
    slot = torch.arange(p).expand(n, p)
    repeat = (torch.rand(n, p, generator=generator) * kept.unsqueeze(1)).long()
    src = torch.where(slot < kept.unsqueeze(1), slot, repeat)
    index = perm.gather(1, src)
    partial = points.gather(1, index.unsqueeze(2).expand(n, p, 3))
    return partial, kept


# =========================================================================== dataset assembly
def _axis(up_axis: str | int) -> int:
    if isinstance(up_axis, int) and up_axis in (0, 1, 2):
        return up_axis
    names = {"x": 0, "y": 1, "z": 2}
    if str(up_axis).lower() not in names:
        raise DataError(f"data option up_axis: expected x, y or z, found {up_axis!r}")
    return names[str(up_axis).lower()]


def prepare_clouds(
    clouds: Sequence[np.ndarray] | np.ndarray,
    source: str,
    num_points: int = 1024,
    sampling: str = "random",
    normalize: bool = True,
    rotate: bool = False,
    jitter: float = 0.0,
    up_axis: str | int = "z",
    task: str = "reconstruct",
    missing: Sequence[float] = (0.25, 0.5),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """Clouds of any sizes -> (x, target, facts): fixed count, normalised, augmented, task applied.

    Returns x (N, num_points, 3) float32, target (N, num_points, 3) for ``task=complete`` (else None)
    and a dict of facts for ``meta``. Everything random is drawn from ``seed``.
    """
    if sampling not in ("random", "fps"):
        raise DataError(f"{source}: data option sampling must be random or fps, found {sampling!r}")
    if task not in TASKS:
        raise DataError(f"{source}: data option task must be one of {', '.join(TASKS)}, found {task!r}")
    low, high = (float(v) for v in missing)
    if not 0.0 <= low <= high < 1.0:
        raise DataError(f"{source}: data option missing must be [low, high] with 0 <= low <= high < 1, found {list(missing)}")
    rng = np.random.default_rng(seed)
    if isinstance(clouds, np.ndarray) and clouds.ndim == 3 and clouds.shape[1] == num_points and sampling == "random":
        arr = clouds.astype(np.float32, copy=False)
    elif isinstance(clouds, np.ndarray) and clouds.ndim == 3 and clouds.shape[1] > num_points and sampling == "fps":
        gen = torch.Generator().manual_seed(seed)
        arr = farthest_point_sample(torch.from_numpy(clouds.astype(np.float32)), num_points, gen).numpy()
    else:
        arr = np.stack([fixed_count(np.asarray(c, np.float32), num_points, sampling, rng) for c in clouds])
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).reshape(len(arr), -1).any(1).sum())
        raise DataError(f"{source}: {bad} clouds contain NaN or inf coordinates (expected finite numbers)")
    x = torch.from_numpy(np.ascontiguousarray(arr))
    if normalize:
        x = normalize_clouds(x)
    gen = torch.Generator().manual_seed(seed)
    if rotate or jitter > 0:
        x = augment_clouds(x, gen, rotate, float(jitter), _axis(up_axis))
    target = None
    facts: dict[str, Any] = {"num_points": num_points, "sampling": sampling, "normalize": "unit_sphere" if normalize else "none",
                             "task": task}
    if task == "complete":
        target = x
        x, kept = plane_cut(x, gen, low, high)
        facts["kept_fraction_mean"] = float(kept.float().mean() / num_points)
        facts["missing"] = [low, high]
    return x.float().contiguous(), None if target is None else target.float().contiguous(), facts


def points_dataset(clouds: Sequence[np.ndarray] | np.ndarray, y: np.ndarray | None, split: np.ndarray | None, source: str,
                   class_names: list[str] | None = None, state: dict | None = None, **options: Any) -> NebulaDataset:
    """A points :class:`NebulaDataset` from raw clouds (see :func:`prepare_clouds` for ``options``)."""
    del state  # point loaders need no vocabulary-like state; accepted so runs can hand it back
    x, target, facts = prepare_clouds(clouds, source, **options)
    meta: dict[str, Any] = {"modality": "points", **facts}
    if class_names is not None:
        meta["class_names"] = class_names
    return NebulaDataset(x=x, y=None if y is None else np.asarray(y, np.int64), split=split, target=target, meta=meta)


# =========================================================================== folder layouts
def _point_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes and _sniff(p))


def _sniff(path: Path) -> bool:
    """Cheap check that a .txt/.xyz/.pts file holds numeric rows (so text corpora are not mistaken for points)."""
    if path.suffix.lower() not in (".txt", ".xyz", ".pts"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(512).decode("utf-8", "replace")
    except OSError:
        return False
    for line in head.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            values = re.split(r"[\s,]+", line)
            try:
                return len(values) >= 3 and all(np.isfinite(float(v)) for v in values)
            except ValueError:
                return False
    return False


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def modelnet_root(path: Path, suffixes: Sequence[str] = POINT_SUFFIXES, depth: int = 4) -> Path | None:
    """The folder holding ``<class>/<train|test>/<files>`` at or below ``path`` (through folders that
    have exactly one sub-folder, e.g. ``modelnet10/ModelNet10/pcd``), or None."""
    for _ in range(depth + 1):
        if not path.is_dir():
            return None
        subs = _subdirs(path)
        if subs and all(any(s.name.lower() in SPLIT_NAMES for s in _subdirs(c)) for c in subs):
            first = next(s for s in _subdirs(subs[0]) if s.name.lower() in SPLIT_NAMES)
            if _has_files(first, suffixes):
                return path
            return None
        if len(subs) != 1:
            return None
        path = subs[0]
    return None


def class_folder_root(path: Path, suffixes: Sequence[str] = POINT_SUFFIXES) -> bool:
    """True when ``path`` holds ``<class>/<file>`` with files of ``suffixes`` (plain class folders)."""
    return path.is_dir() and any(_has_files(d, suffixes) for d in _subdirs(path))


def _has_files(folder: Path, suffixes: Sequence[str]) -> bool:
    for p in folder.iterdir():
        if p.is_file() and p.suffix.lower() in suffixes:
            return _sniff(p)
    return False


def scan_folder(path: Path, suffixes: Sequence[str]) -> tuple[list[Path], np.ndarray, np.ndarray | None, list[str]]:
    """Files, labels (N,), split (N,) or None and class names of a ModelNet-style or class-folder tree."""
    root = modelnet_root(path, suffixes)
    files: list[Path] = []
    labels: list[int] = []
    splits: list[int] = []
    if root is not None:
        classes = _subdirs(root)
        for k, c in enumerate(classes):
            for s in _subdirs(c):
                if s.name.lower() in SPLIT_NAMES:
                    found = _point_files(s, suffixes)
                    files += found
                    labels += [k] * len(found)
                    splits += [SPLIT_NAMES[s.name.lower()]] * len(found)
        split = np.asarray(splits, np.int8) if len(set(splits)) == 2 else None
    else:
        classes = [d for d in _subdirs(path) if _has_files(d, suffixes)]
        for k, c in enumerate(classes):
            found = _point_files(c, suffixes)
            files += found
            labels += [k] * len(found)
        split = None
    if not files:
        raise DataError(f"{path}: no point files ({', '.join(suffixes)}) in <class>/[<split>/] folders")
    return files, np.asarray(labels, np.int64), split, [c.name for c in classes]


def read_files(files: Sequence[Path], mesh_points: int, seed: int) -> list[np.ndarray] | np.ndarray:
    """Read many point files; equal-sized clouds come back as one (N, P, 3) array."""
    rng = np.random.default_rng(seed)
    clouds = [read_point_file(f, mesh_points, rng) for f in files]
    for f, c in zip(files, clouds):
        if len(c) == 0:
            raise DataError(f"{f}: point file holds no points")
    sizes = {len(c) for c in clouds}
    return np.stack(clouds) if len(sizes) == 1 else clouds


def load_cloud_folder(path: Path, build: Any = None, num_points: int = 1024, mesh_points: int = 4096, seed: int = 0,
                      **options: Any) -> NebulaDataset:
    """A class-folder tree of point files (ModelNet layout or plain) read into clouds and turned into a
    dataset by ``build(clouds, y, split, source, class_names=, num_points=, seed=, **options)``
    (default :func:`points_dataset`; the voxel loaders pass their voxeliser)."""
    files, y, split, classes = scan_folder(path, POINT_SUFFIXES)
    clouds = read_files(files, mesh_points, seed)
    build = points_dataset if build is None else build
    ds = build(clouds, y, split, str(path), class_names=classes, num_points=num_points, seed=seed, **options)
    ds.meta.update(name=path.name, files=len(files))
    return ds


@register_format("modelnet", "points", lambda p: modelnet_root(p) is not None, priority=20)
def load_modelnet(path: Path, **options: Any) -> NebulaDataset:
    """ModelNet layout ``root/<class>/<train|test>/<file>`` (official split kept when both exist).

    Options: num_points (1024), sampling (random|fps), normalize (true), rotate (false), jitter (0),
    up_axis (z), task (reconstruct|complete), missing ([0.25, 0.5]), mesh_points (4096), seed (0).
    """
    return load_cloud_folder(path, **options)


@register_format("point-folder", "points", class_folder_root, priority=3)
def load_point_folder(path: Path, **options: Any) -> NebulaDataset:
    """Plain class folders ``root/<class>/<file>`` of point files; labels in sorted folder order."""
    return load_cloud_folder(path, **options)


def _is_point_file(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() not in POINT_SUFFIXES:
        return False
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return False
        return arr.ndim == 2 and arr.shape[1] == 3
    return _sniff(path)


# priority 5: above the text formats' sniffers (a tab-separated numeric row also looks like "label<TAB>text")
@register_format("point-file", "points", _is_point_file, priority=5)
def load_point_file(path: Path, mesh_points: int = 4096, seed: int = 0, **options: Any) -> NebulaDataset:
    """One point file (PCD, PLY, XYZ/TXT, NPY (P, 3), OFF) as a dataset of one cloud."""
    cloud = read_point_file(path, mesh_points, np.random.default_rng(seed))
    return points_dataset([cloud], None, None, str(path), seed=seed, **options)


def _is_point_array(path: Path) -> bool:
    arr = peek_array(path)
    return arr is not None and arr.ndim == 3 and arr.shape[2] == 3 and arr.shape[1] > 4 and np.issubdtype(arr.dtype, np.floating)


@register_format("point-array", "points", _is_point_array, priority=6)
def load_point_array(path: Path, **options: Any) -> NebulaDataset:
    """``.npy`` (N, P, 3) or ``.npz`` with ``x`` (N, P, 3) float, optional ``y`` (N,), ``split`` (N,)
    and ``class_names``."""
    y = split = names = None
    if path.suffix.lower() == ".npy":
        x = _load_npy(path)
    else:
        with np.load(path, allow_pickle=False) as f:
            x = f["x"]
            y = f["y"] if "y" in f.files else None
            split = f["split"].astype(np.int8) if "split" in f.files else None
            names = [str(c) for c in f["class_names"]] if "class_names" in f.files else None
    for key, arr in (("y", y), ("split", split)):
        if arr is not None and len(arr) != len(x):
            raise DataError(f"{path}: '{key}' has {len(arr)} entries for {len(x)} clouds")
    return points_dataset(x, y, split, str(path), class_names=names, **options)


# =========================================================================== helpers
def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read .npy ({exc})") from None


def _parse_table(text: str, path: Path) -> np.ndarray:
    """Numeric rows (whitespace or comma separated, '#' comments skipped) -> (R, C) float32, vectorised."""
    lines = [ln for ln in (s.split("#", 1)[0].strip() for s in text.splitlines()) if ln]
    if not lines:
        raise DataError(f"{path}: no numeric rows found (expected x y z per line)")
    tokens = " ".join(lines).replace(",", " ").split()
    try:
        values = np.array(tokens, dtype=np.float32)
    except ValueError:
        raise DataError(f"{path}: non-numeric value in point rows (expected numbers, e.g. '0.1 0.2 0.3')") from None
    cols = len(lines[0].replace(",", " ").split())
    if cols < 3 or values.size != cols * len(lines):
        raise DataError(f"{path}: rows must all have the same number (>= 3) of values; first row has {cols}")
    return values.reshape(len(lines), cols)


def _fan_triangulate(polys: list[np.ndarray]) -> np.ndarray:
    """Polygons (each (k,) or (F, k) int arrays) -> triangles (T, 3) by fans from the first vertex."""
    tris = []
    for poly in polys:
        poly = np.atleast_2d(poly)
        k = poly.shape[1]
        for j in range(1, k - 1):
            tris.append(poly[:, [0, j, j + 1]])
    return np.concatenate(tris).astype(np.int64) if tris else np.zeros((0, 3), np.int64)
