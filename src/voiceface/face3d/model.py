"""Linear morphable face model (the 3DMM of Sec. 4.3.1, Eq. 4.6) and loaders for the models users bring.

A shape is ``S = mean + B_id (alpha * sigma_id) + B_exp (beta * sigma_exp)`` (Eq. 4.6), with unit-norm basis columns
``B`` (V*3, K) and per-component standard deviations ``sigma`` (K,), so coefficients are in standard-deviation units
(a coefficient of 1 is one standard deviation along that component, and a ridge on the coefficients is a Gaussian
prior). Rows of a basis are vertex-major: row ``3 v + d`` is coordinate ``d`` of vertex ``v``. Albedo is linear the
same way, in RGB in [0, 1].

Loaders (no model file is shipped; users bring their own):

* ``.npz``: our own format, written by :meth:`MorphableModel.save`.
* Basel Face Model 2009 ``01_MorphableModel.mat`` (shapeMU, shapePC, shapeEV, texMU, texPC, texEV, tl); its
  coordinates are micrometres and are converted to millimetres.
* Basel Face Model 2017 / 2019 ``.h5`` (statismo layout: ``shape/model/{mean,pcaBasis,pcaVariance}``,
  ``shape/representer/{points,cells}``, optional ``color`` and ``expression`` groups); millimetres.
* FLAME 2020 ``generic_model.pkl`` (a pickle holding chumpy arrays). It is read with a restricted unpickler that
  accepts only numpy / scipy.sparse objects and maps chumpy arrays to numpy, so chumpy is not needed and no other
  code can run; metres are converted to millimetres.

Triangles are re-wound, where needed, so that normals point outwards (:func:`orient_outward`).
None of these files carries the landmark vertex indices, so pass ``landmarks=`` (an ``.npz`` with ``landmarks68``
(68,) and/or ``am_landmarks`` (65,) int arrays, or a text file with 68 or 65 integers) to use the landmark-based
functions. Models without UVs get a cylindrical UV map computed from the mean shape.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .landmarks import NUM_AM_LANDMARKS, NUM_IBUG

NPZ_FORMAT = "voiceface-morphable-model-1"

_BUFFERS = ("mean", "id_basis", "id_std", "exp_basis", "exp_std", "albedo_mean", "albedo_basis", "albedo_std",
            "triangles", "uv", "landmarks68", "am_landmarks")


def _normalise_basis(basis: np.ndarray, scale: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """basis (3V, K) times per-column scale (K,) -> unit-norm columns (3V, K) and their norms (K,) as std."""
    b = np.asarray(basis, dtype=np.float64)
    if scale is not None:
        b = b * np.asarray(scale, dtype=np.float64).reshape(1, -1)
    norms = np.linalg.norm(b, axis=0)
    norms_safe = np.where(norms > 0, norms, 1.0)
    return (b / norms_safe).astype(np.float32), norms.astype(np.float32)


def units_to_mm(vertices: np.ndarray) -> float:
    """Factor that brings a face mesh (V, 3) to millimetres, judged from its extent: a head or face is 0.1-0.4 m
    across, so an extent above 10 000 means micrometres, below 2 means metres, anything else millimetres."""
    extent = float(np.ptp(np.asarray(vertices, dtype=np.float64), axis=0).max())
    if extent > 1e4:
        return 1e-3
    if extent < 2.0:
        return 1e3
    return 1.0


def orient_outward(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Triangles (F, 3) wound so that their normals point away from the mesh centroid on (area-weighted) average;
    user models differ in winding, while shading and back-face culling expect outward normals."""
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles, dtype=np.int64)
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    n = np.cross(b - a, c - a)                                                 # (F, 3), |n| = 2 * area
    outward = np.einsum("fi,fi->", n, (a + b + c) / 3.0 - v.mean(axis=0))
    return t if outward >= 0 else t[:, [0, 2, 1]]


def cylindrical_uv(vertices: np.ndarray) -> np.ndarray:
    """Fallback per-vertex UV (V, 2) in [0, 1] for a face (V, 3) in y-up, z-to-viewer coordinates:
    u from the azimuth about the vertical axis through the centroid, v from the height."""
    v = np.asarray(vertices, dtype=np.float64)
    c = v - v.mean(axis=0)
    az = np.arctan2(c[:, 0], c[:, 2] + 1e-9)
    u = (az - az.min()) / max(np.ptp(az), 1e-9)
    h = (c[:, 1] - c[:, 1].min()) / max(np.ptp(c[:, 1]), 1e-9)
    return np.stack([u, h], axis=1).astype(np.float32)


class MorphableModel(nn.Module):
    """Linear 3D morphable model (Eq. 4.6) with landmarks, UVs and an optional albedo model; all data are buffers,
    so ``.to(device)`` moves everything. Build one with the loaders (:func:`load_model`) or the built-in generator
    (:func:`voiceface.face3d.builtin.builtin_model`).

    Buffers: ``mean`` (V, 3); ``id_basis`` (V*3, Ki) unit columns, ``id_std`` (Ki,); ``exp_basis`` (V*3, Ke),
    ``exp_std`` (Ke,) (Ke may be 0); ``albedo_mean`` (V, 3), ``albedo_basis`` (V*3, Ka), ``albedo_std`` (Ka,);
    ``triangles`` (F, 3) int64; ``uv`` (V, 2) in [0, 1]; ``landmarks68`` (68,) iBUG order and ``am_landmarks`` (65,)
    Fig. 5.2 order, int64 vertex indices (empty (0,) when unknown).
    """

    def __init__(self, mean, id_basis, id_std, triangles, *, uv=None, landmarks68=None, am_landmarks=None,
                 exp_basis=None, exp_std=None, albedo_mean=None, albedo_basis=None, albedo_std=None,
                 name: str = "model", units: str = "mm", exp_names=None):
        super().__init__()
        mean = np.asarray(mean, dtype=np.float32)
        if mean.ndim != 2 or mean.shape[1] != 3:
            raise ValueError(f"mean must be (V, 3), got {mean.shape}")
        nv = mean.shape[0]

        def basis(b, s, what):
            if b is None:
                return np.zeros((nv * 3, 0), np.float32), np.zeros((0,), np.float32)
            b = np.asarray(b, dtype=np.float32)
            s = np.asarray(s, dtype=np.float32).reshape(-1)
            if b.ndim != 2 or b.shape[0] != nv * 3 or s.shape[0] != b.shape[1]:
                raise ValueError(f"{what} basis must be (V*3={nv * 3}, K) with std (K,), got {b.shape}, {s.shape}")
            return b, s

        idb, ids = basis(id_basis, id_std, "identity")
        exb, exs = basis(exp_basis, exp_std, "expression")
        alb, als = basis(albedo_basis, albedo_std, "albedo")
        if albedo_mean is None:
            albedo_mean = np.full((nv, 3), 0.7, np.float32)
        tri = np.asarray(triangles, dtype=np.int64)
        if tri.ndim != 2 or tri.shape[1] != 3 or tri.size == 0 or tri.min() < 0 or tri.max() >= nv:
            raise ValueError(f"triangles must be (F, 3) vertex indices in [0, {nv}), got {tri.shape}")
        uv = cylindrical_uv(mean) if uv is None else np.asarray(uv, dtype=np.float32)

        def lmk(x, n):
            x = np.zeros((0,), np.int64) if x is None else np.asarray(x, dtype=np.int64).reshape(-1)
            if x.size not in (0, n) or (x.size and (x.min() < 0 or x.max() >= nv)):
                raise ValueError(f"landmark indices must be ({n},) in [0, {nv}), got {x.shape}")
            return x

        data = dict(mean=mean, id_basis=idb, id_std=ids, exp_basis=exb, exp_std=exs,
                    albedo_mean=np.asarray(albedo_mean, np.float32).reshape(nv, 3), albedo_basis=alb,
                    albedo_std=als, triangles=tri, uv=uv.reshape(nv, 2), landmarks68=lmk(landmarks68, NUM_IBUG),
                    am_landmarks=lmk(am_landmarks, NUM_AM_LANDMARKS))
        for k, v in data.items():
            self.register_buffer(k, torch.from_numpy(np.ascontiguousarray(v)))
        self.name = name
        self.units = units
        self.exp_names = list(exp_names) if exp_names is not None else [f"exp{i}" for i in range(exb.shape[1])]

    # ---- sizes ----
    @property
    def num_vertices(self) -> int:
        return self.mean.shape[0]

    @property
    def num_identity(self) -> int:
        return self.id_basis.shape[1]

    @property
    def num_expression(self) -> int:
        return self.exp_basis.shape[1]

    @property
    def num_albedo(self) -> int:
        return self.albedo_basis.shape[1]

    @property
    def num_components(self) -> int:
        """Identity components (the fitting space of Eq. 5.7 when the model itself is used as P)."""
        return self.num_identity

    # ---- evaluation ----
    def _combine(self, base: torch.Tensor, basis: torch.Tensor, std: torch.Tensor, coeffs) -> torch.Tensor:
        c = torch.as_tensor(coeffs, dtype=basis.dtype, device=basis.device)
        if c.ndim == 1:
            c = c.unsqueeze(0)
        if c.shape[-1] != basis.shape[1]:
            raise ValueError(f"expected coefficients (B, {basis.shape[1]}), got {tuple(c.shape)}")
        offs = (c * std) @ basis.T                                            # (B, V*3)
        return base.unsqueeze(0) + offs.view(c.shape[0], -1, 3)

    def shape(self, id_coeffs, exp_coeffs=None) -> torch.Tensor:
        """Eq. 4.6: id_coeffs (B, Ki) [, exp_coeffs (B, Ke)] in std units -> vertices (B, V, 3). Differentiable."""
        s = self._combine(self.mean, self.id_basis, self.id_std, id_coeffs)
        if exp_coeffs is not None and self.num_expression:
            e = torch.as_tensor(exp_coeffs, dtype=s.dtype, device=s.device)
            s = s + self._combine(torch.zeros_like(self.mean), self.exp_basis, self.exp_std, e)
        return s

    def albedo(self, coeffs=None, batch: int = 1) -> torch.Tensor:
        """Per-vertex albedo (B, V, 3) in RGB (not clamped) from coeffs (B, Ka) in std units (None: the mean)."""
        if coeffs is None:
            return self.albedo_mean.unsqueeze(0).expand(batch, -1, -1)
        return self._combine(self.albedo_mean, self.albedo_basis, self.albedo_std, coeffs)

    def project(self, shapes, exp_coeffs=None) -> torch.Tensor:
        """Least-squares identity coefficients (B, Ki) in std units of shapes (B, V, 3) (after removing the
        expression offset when ``exp_coeffs`` (B, Ke) is given). Exact for shapes in the model's span."""
        s = torch.as_tensor(shapes, dtype=self.mean.dtype, device=self.mean.device)
        if s.ndim == 2:
            s = s.unsqueeze(0)
        if exp_coeffs is not None and self.num_expression:
            s = s - self._combine(torch.zeros_like(self.mean), self.exp_basis, self.exp_std, exp_coeffs)
        d = (s - self.mean).reshape(s.shape[0], -1)                          # (B, V*3)
        sol = torch.linalg.lstsq(self.id_basis, d.T).solution.T               # (B, Ki)
        return sol / torch.where(self.id_std > 0, self.id_std, torch.ones_like(self.id_std))

    def landmarks(self, shapes: torch.Tensor, which: str = "68") -> torch.Tensor:
        """Landmark positions: shapes (B, V, 3) -> (B, 68, 3) (``which='68'``) or (B, 65, 3) (``which='am'``)."""
        idx = self.landmarks68 if which == "68" else self.am_landmarks
        if idx.numel() == 0:
            raise ValueError(f"model '{self.name}' has no {which} landmark indices (load it with landmarks=FILE)")
        return shapes[..., idx, :]

    # ---- io ----
    def save(self, path) -> Path:
        """Write the model to our ``.npz`` format (atomically); :func:`load_model` reads it back."""
        path = Path(path)
        arrays = {k: getattr(self, k).detach().cpu().numpy() for k in _BUFFERS}
        arrays.update(format=np.array(NPZ_FORMAT), name=np.array(self.name), units=np.array(self.units),
                      exp_names=np.array(self.exp_names, dtype=str))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
        return path

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, vertices={self.num_vertices}, triangles={self.triangles.shape[0]}, "
                f"identity={self.num_identity}, expression={self.num_expression}, albedo={self.num_albedo}")


# --------------------------------------------------------------------------------------------------------------
# loaders

def _read_landmark_file(path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "landmark file not found")
    try:
        if p.suffix == ".npz":
            with np.load(p) as z:
                out = {k: np.asarray(z[k], np.int64) for k in ("landmarks68", "am_landmarks") if k in z}
        else:
            idx = np.loadtxt(p, dtype=np.int64).reshape(-1)
            key = {NUM_IBUG: "landmarks68", NUM_AM_LANDMARKS: "am_landmarks"}.get(idx.size)
            out = {key: idx} if key else {}
    except (OSError, ValueError) as e:
        raise InputError(p, f"cannot read landmark indices ({e})") from None
    if not out:
        raise InputError(p, "expected landmarks68 (68,) and/or am_landmarks (65,) vertex indices")
    return out


def load_model(path, *, landmarks=None) -> MorphableModel:
    """Load a morphable model: ``"builtin"``, our ``.npz``, BFM 2009 ``.mat``, BFM 2017/2019 ``.h5`` or FLAME
    ``.pkl`` (chosen by extension). ``landmarks``: optional landmark index file (see module doc).
    Raises ``InputError`` when the file is missing or is not what its extension claims."""
    if str(path) == "builtin":
        from .builtin import builtin_model
        return builtin_model()
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "morphable model file not found")
    loaders = {".npz": _load_npz, ".mat": load_bfm2009, ".h5": load_bfm2017, ".hdf5": load_bfm2017,
               ".pkl": load_flame}
    loader = loaders.get(p.suffix.lower())
    if loader is None:
        raise InputError(p, f"unknown model format '{p.suffix}' (expected builtin, .npz, .mat, .h5 or .pkl)")
    model = loader(p)
    if landmarks is not None:
        lm = _read_landmark_file(landmarks)
        nv = model.num_vertices
        for k, v in lm.items():
            if v.min() < 0 or v.max() >= nv:
                raise InputError(landmarks, f"{k} has indices outside [0, {nv})")
            setattr(model, k, torch.from_numpy(v).to(model.mean.device))
    return model


def _load_npz(path: Path) -> MorphableModel:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z or str(z["format"]) != NPZ_FORMAT:
                raise InputError(path, f"not a voiceface morphable model (.npz without format={NPZ_FORMAT!r})")
            d = {k: z[k] for k in _BUFFERS}
            name, units = str(z["name"]), str(z["units"])
            exp_names = [str(x) for x in z["exp_names"]] if "exp_names" in z else None
    except InputError:
        raise
    except (OSError, ValueError, KeyError) as e:
        raise InputError(path, f"cannot read morphable model .npz ({e})") from None
    try:
        return MorphableModel(d["mean"], d["id_basis"], d["id_std"], d["triangles"], uv=d["uv"],
                              landmarks68=d["landmarks68"], am_landmarks=d["am_landmarks"],
                              exp_basis=d["exp_basis"], exp_std=d["exp_std"], albedo_mean=d["albedo_mean"],
                              albedo_basis=d["albedo_basis"], albedo_std=d["albedo_std"], name=name, units=units,
                              exp_names=exp_names)
    except ValueError as e:
        raise InputError(path, f"inconsistent model arrays ({e})") from None


def load_bfm2009(path, *, scale: float | None = None) -> MorphableModel:
    """Basel Face Model 2009 ``01_MorphableModel.mat``: shapeMU (3V, 1), shapePC (3V, K), shapeEV (K, 1) (std),
    texMU / texPC / texEV (0-255), tl (F, 3) 1-based. ``scale`` converts coordinates to mm (default: judged from
    the mean's extent by :func:`units_to_mm`; the BFM 2009 release is in micrometres)."""
    import scipy.io

    path = Path(path)
    try:
        m = scipy.io.loadmat(str(path))
    except (OSError, ValueError, NotImplementedError, TypeError) as e:
        raise InputError(path, f"not a readable MATLAB file ({e})") from None
    need = ("shapeMU", "shapePC", "shapeEV", "tl")
    missing = [k for k in need if k not in m]
    if missing:
        raise InputError(path, f"not a BFM 2009 model: missing {', '.join(missing)}")
    try:
        mu = np.asarray(m["shapeMU"], np.float64).reshape(-1, 3)
        scale = units_to_mm(mu) if scale is None else scale
        mu = mu * scale
        pc = np.asarray(m["shapePC"], np.float64)
        ev = np.asarray(m["shapeEV"], np.float64).reshape(-1) * scale
        idb, ids = _normalise_basis(pc, ev)
        tri = orient_outward(mu, np.asarray(m["tl"], np.int64) - 1)
        kw = {}
        if all(k in m for k in ("texMU", "texPC", "texEV")):
            kw["albedo_mean"] = np.asarray(m["texMU"], np.float64).reshape(-1, 3) / 255.0
            kw["albedo_basis"], kw["albedo_std"] = _normalise_basis(
                np.asarray(m["texPC"], np.float64), np.asarray(m["texEV"], np.float64).reshape(-1) / 255.0)
        return MorphableModel(mu, idb, ids, tri, name=path.stem, **kw)
    except ValueError as e:
        raise InputError(path, f"BFM 2009 arrays have inconsistent shapes ({e})") from None


def load_bfm2017(path, *, scale: float | None = None) -> MorphableModel:
    """Basel Face Model 2017 / 2019 ``.h5`` (statismo layout). Each model group has ``model/mean`` (3V,),
    ``model/pcaBasis`` (3V, K) and ``model/pcaVariance`` (K,); the shape group also has ``representer/points``
    (3, V) and ``representer/cells`` (3, F). Optional ``color`` (albedo, RGB in [0, 1]) and ``expression`` groups.
    ``scale`` converts coordinates to mm (default: judged from the extent, :func:`units_to_mm`)."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InputError(path, f"not a readable HDF5 file ({e})") from None
    with f:
        try:
            sm = f["shape/model"]
            mean = np.asarray(sm["mean"], np.float64).reshape(-1, 3)
            scale = units_to_mm(mean) if scale is None else scale
            mean = mean * scale
            idb, ids = _normalise_basis(np.asarray(sm["pcaBasis"], np.float64),
                                        np.sqrt(np.asarray(sm["pcaVariance"], np.float64).reshape(-1)) * scale)
            cells = np.asarray(f["shape/representer/cells"], np.int64)
        except KeyError as e:
            raise InputError(path, f"not a BFM 2017/2019 model: missing {e.args[0] if e.args else 'shape group'}"
                             ) from None
        tri = orient_outward(mean, cells.T if cells.shape[0] == 3 and cells.shape[1] != 3 else cells)
        kw = {}
        if "color/model" in f:
            cm = f["color/model"]
            kw["albedo_mean"] = np.asarray(cm["mean"], np.float64).reshape(-1, 3)
            kw["albedo_basis"], kw["albedo_std"] = _normalise_basis(
                np.asarray(cm["pcaBasis"], np.float64), np.sqrt(np.asarray(cm["pcaVariance"], np.float64)))
        if "expression/model" in f:
            em = f["expression/model"]
            kw["exp_basis"], kw["exp_std"] = _normalise_basis(
                np.asarray(em["pcaBasis"], np.float64),
                np.sqrt(np.asarray(em["pcaVariance"], np.float64)) * scale)
    try:
        return MorphableModel(mean, idb, ids, tri, name=path.stem, **kw)
    except ValueError as e:
        raise InputError(path, f"BFM arrays have inconsistent shapes ({e})") from None


class _ChumpyArray:
    """Stand-in for chumpy objects in a FLAME pickle: keeps the pickled state; ``value`` is its numpy array."""

    def __setstate__(self, state):
        self.state = state

    @property
    def value(self) -> np.ndarray:
        st = self.state if isinstance(self.state, dict) else {}
        for key in ("x", "a", "_x"):
            if key in st and isinstance(st[key], np.ndarray):
                return st[key]
        raise ValueError("chumpy object without an array")


class _FlameUnpickler(pickle.Unpickler):
    """Only numpy arrays/dtypes, scipy.sparse matrices and chumpy arrays (as :class:`_ChumpyArray`) may be built."""

    _ALLOWED_PREFIXES = ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                         "numpy._core.numeric", "scipy.sparse")

    def find_class(self, module, name):
        if module.startswith("chumpy"):
            return _ChumpyArray
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module.startswith(self._ALLOWED_PREFIXES) and name in (
                "_reconstruct", "scalar", "_frombuffer", "csc_matrix", "csr_matrix", "coo_matrix"):
            import importlib
            candidates = [module.replace("numpy.core", "numpy._core"), module,
                          module.replace("numpy._core", "numpy.core")]           # numpy 2 names first
            for mod_name in dict.fromkeys(candidates):
                try:
                    return getattr(importlib.import_module(mod_name), name)
                except (ImportError, AttributeError):
                    continue
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            import copyreg
            return copyreg._reconstructor
        if module in ("__builtin__", "builtins") and name in ("object", "set", "frozenset"):
            return {"object": object, "set": set, "frozenset": frozenset}[name]   # chumpy state holds sets
        if module == "_codecs" and name == "encode":          # protocol-2 pickles store array bytes this way
            import codecs
            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _as_array(x) -> np.ndarray:
    return x.value if isinstance(x, _ChumpyArray) else np.asarray(x)


def load_flame(path, *, scale: float | None = None, n_shape: int = 300, n_exp: int = 100) -> MorphableModel:
    """FLAME 2020 ``generic_model.pkl``: v_template (V, 3), f (F, 3), shapedirs (V, 3, 300 + 100) whose first
    ``n_shape`` columns are identity and the rest expression (already scaled to unit-variance coefficients).
    ``scale`` converts to mm (default: judged from the extent, :func:`units_to_mm`; FLAME is in metres).
    The pose-dependent parts (joints, skinning) are not used."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = _FlameUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError) as e:
        raise InputError(path, f"not a FLAME model pickle ({e})") from None
    if not isinstance(data, dict) or not all(k in data for k in ("v_template", "f", "shapedirs")):
        raise InputError(path, "not a FLAME model: expected a dict with v_template, f and shapedirs")
    try:
        vt = _as_array(data["v_template"]).astype(np.float64)
        scale = units_to_mm(vt) if scale is None else scale
        vt = vt * scale
        sd = _as_array(data["shapedirs"]).astype(np.float64) * scale          # (V, 3, K)
        tri = orient_outward(vt, _as_array(data["f"]).astype(np.int64))
        nv = vt.shape[0]
        sd = sd.reshape(nv * 3, -1)
        ns = min(n_shape, sd.shape[1])
        idb, ids = _normalise_basis(sd[:, :ns], None)
        kw = {}
        if sd.shape[1] > ns:
            kw["exp_basis"], kw["exp_std"] = _normalise_basis(sd[:, ns:ns + n_exp], None)
        return MorphableModel(vt, idb, ids, tri, name=path.stem, **kw)
    except ValueError as e:
        raise InputError(path, f"FLAME arrays have inconsistent shapes ({e})") from None
