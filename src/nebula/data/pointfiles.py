"""Point-cloud files: readers (PCD v0.7 ascii/binary, PLY ascii/binary, XYZ/TXT/PTS rows, NPY, OFF meshes
with area-weighted surface sampling) and writers (PCD, PLY). Every reader returns float32 points (P, 3)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from nebula.errors import DataError

POINT_SUFFIXES = (".pcd", ".ply", ".xyz", ".txt", ".pts", ".npy", ".off")
MESH_SUFFIXES = (".off",)
_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


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
        arr = load_npy(path)
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise DataError(f"{path}: expected a (P, 3) array, found shape {arr.shape}")
        return arr[:, :3].astype(np.float32)
    if suffix in (".xyz", ".txt", ".pts"):
        return read_xyz(path)
    raise DataError(f"{path}: unsupported point file suffix '{suffix}' (expected one of {', '.join(POINT_SUFFIXES)})")


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


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None


def load_npy(path: Path) -> np.ndarray:
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
