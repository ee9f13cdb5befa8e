"""Mesh files: OBJ / PLY export with per-vertex colours (via trimesh), and OBJ / PLY / NPY / NPZ import.

Vertex order is preserved both ways (trimesh is used with ``process=False``), so a mesh written from a morphable
model reads back with the model's vertex indices (landmarks stay valid).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

MESH_SUFFIXES = (".obj", ".ply", ".npy", ".npz")


def _colors_uint8(colors, n: int) -> np.ndarray | None:
    if colors is None:
        return None
    c = np.asarray(colors)
    if c.shape != (n, 3) and c.shape != (n, 4):
        raise ValueError(f"colors must be (V, 3) or (V, 4), got {c.shape}")
    if np.issubdtype(c.dtype, np.floating):
        c = np.clip(np.round(c * 255.0), 0, 255)
    c = c.astype(np.uint8)
    if c.shape[1] == 3:
        c = np.concatenate([c, np.full((n, 1), 255, np.uint8)], axis=1)
    return c


def save_mesh(path, vertices, triangles, colors=None) -> Path:
    """Write vertices (V, 3), triangles (F, 3) and optional per-vertex colours (V, 3|4) (float in [0, 1] or uint8)
    to ``.obj`` or ``.ply`` (by suffix). Returns the path."""
    import trimesh

    path = Path(path)
    if path.suffix.lower() not in (".obj", ".ply"):
        raise ValueError(f"mesh export supports .obj and .ply, not '{path.suffix}'")
    v = np.asarray(vertices.detach().cpu() if hasattr(vertices, "detach") else vertices, dtype=np.float64)
    f = np.asarray(triangles.detach().cpu() if hasattr(triangles, "detach") else triangles, dtype=np.int64)
    if colors is not None and hasattr(colors, "detach"):
        colors = colors.detach().cpu().numpy()
    mesh = trimesh.Trimesh(vertices=v, faces=f, vertex_colors=_colors_uint8(colors, len(v)), process=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".obj":
        text = trimesh.exchange.obj.export_obj(mesh, include_color=colors is not None, include_normals=False,
                                               include_texture=False)
        path.write_text(text)
    else:
        path.write_bytes(trimesh.exchange.ply.export_ply(mesh, encoding="binary"))
    return path


def _obj_vertices(p: Path) -> np.ndarray:
    """(V, 3) the ``v`` lines of an OBJ (a vertices-only file, such as a landmark template's reconstruction)."""
    rows = [line.split()[1:4] for line in p.read_text(encoding="ascii").splitlines() if line.startswith("v ")]
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def load_mesh(path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Read a mesh: ``.obj`` / ``.ply`` (vertices, triangles, colours or None), ``.npy`` (vertices (V, 3) only) or
    ``.npz`` (``vertices`` and optional ``triangles`` / ``colors``; a simulated world's mesh files work).
    Returns (vertices (V, 3) float32, triangles (F, 3) int64 or None, colours (V, 3) float32 in [0, 1] or None);
    an OBJ without faces (vertices only) gives its vertices and None.
    Raises ``InputError`` for a missing or unreadable file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "mesh file not found")
    suffix = p.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise InputError(p, f"unknown mesh format '{p.suffix}' (expected {', '.join(MESH_SUFFIXES)})")
    try:
        if suffix == ".npy":
            v, f, c = np.load(p, allow_pickle=False), None, None
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if "vertices" not in z:
                    raise InputError(p, "no 'vertices' array in the .npz")
                v = z["vertices"]
                f = z["triangles"] if "triangles" in z else None
                c = z["colors"] if "colors" in z else None
        else:
            import trimesh

            mesh = trimesh.load(p, process=False, force="mesh")
            v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
            c = None
            if len(v) == 0 and suffix == ".obj":      # trimesh drops the vertices of an OBJ without faces
                v = _obj_vertices(p)
            vc = getattr(mesh.visual, "vertex_colors", None)
            if getattr(mesh.visual, "kind", None) == "vertex" and vc is not None and len(vc) == len(v):
                c = np.asarray(vc)[:, :3] / 255.0
            if f.size == 0:
                f = None
    except InputError:
        raise
    except Exception as e:   # trimesh / numpy raise many types for corrupt files
        raise InputError(p, f"cannot read mesh ({type(e).__name__}: {e})") from None
    v = np.asarray(v, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise InputError(p, f"expected vertices of shape (V, 3), got {v.shape}")
    if f is not None:
        f = np.asarray(f, dtype=np.int64)
        if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or f.max() >= len(v))):
            raise InputError(p, "triangles must be (F, 3) indices into the vertices")
    if c is not None:
        c = np.asarray(c, dtype=np.float32)[:, :3]
    return v, f, c
