"""DIMNet results for people: tables in the layout of Tables 2.3-2.7 (Markdown + CSV), Fig. 2.3 and Fig. 2.4.

Every table takes ``{row label: flat results}`` so one run, a mean over runs (``KEY_std`` shown as +/-) and the
demo's several covariate variants print the same way. Values are shown in % like the thesis.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from ...report.tables import markdown_table, write_csv

Results = Mapping[str, Mapping[str, float | None]]


def _pct(res: Mapping[str, float | None], key: str) -> str | None:
    v = res.get(key)
    if v is None or not np.isfinite(v):
        return None
    s = res.get(f"{key}_std")
    return f"{100 * v:.1f} ± {100 * s:.1f}" if s is not None and res.get("n_models", 1) > 1 else f"{100 * v:.1f}"


def _rows(rows: Results, columns: Mapping[str, str]) -> list[dict[str, str | None]]:
    return [{"method": name, **{col: _pct(res, key) for col, key in columns.items()}} for name, res in rows.items()]


def table_classification(rows: Results) -> list[dict]:
    """Table 2.3: accuracy (%) of covariate prediction, voice and face."""
    return _rows(rows, {"gender voice": "acc_gender_voice", "gender face": "acc_gender_face",
                        "nationality voice": "acc_nationality_voice", "nationality face": "acc_nationality_face"})


def table_matching(rows: Results, prefix: str = "") -> list[dict]:
    """Table 2.4: 1:2 matching accuracy (%), voice -> face and face -> voice, strata U, G, N, G,N."""
    cols = {f"{d} {s.replace('GN', 'G,N')}": f"{prefix}match_{d}_{s}" for d in ("v2f", "f2v")
            for s in ("U", "G", "N", "GN")}
    return _rows(rows, cols)


def table_verification(rows: Results, prefix: str = "") -> list[dict]:
    """Table 2.5: verification EER (%) per stratum."""
    return _rows(rows, {f"EER {s.replace('GN', 'G,N')}": f"{prefix}eer_{s}" for s in ("U", "G", "N", "GN")})


def table_retrieval(rows: Results, prefix: str = "") -> list[dict]:
    """Table 2.6: retrieval mAP (%), with the random-ranking row (the relevant fraction)."""
    cols = {f"{d} {k}": f"{prefix}map_{d}_{k}" for d in ("v2f", "f2v") for k in ("id", "gender", "nationality")}
    first = next(iter(rows.values()), {})
    chance = {"Random": {k: first.get(f"{prefix}chance_{k[len(prefix):]}") for k in cols.values()}}
    return _rows(chance, cols) + _rows(rows, cols)


def table_auc(rows: Results) -> list[dict]:
    """Table 2.7 layout: verification AUC (%) for seen-heard and unseen-unheard, per stratum."""
    cols = {f"seen {s.replace('GN', 'G,N')}": f"seen_auc_{s}" for s in ("U", "G", "N", "GN")}
    cols.update({f"unseen {s.replace('GN', 'G,N')}": f"auc_{s}" for s in ("U", "G", "N", "GN")})
    return _rows(rows, cols)


TABLES = {
    "table2_3_classification": ("Covariate prediction accuracy (%) (layout of Table 2.3)", table_classification),
    "table2_4_matching": ("1:2 matching accuracy (%), unseen-unheard (layout of Table 2.4)", table_matching),
    "table2_5_verification": ("Verification EER (%), unseen-unheard (layout of Table 2.5)", table_verification),
    "table2_6_retrieval": ("Retrieval mAP (%), unseen-unheard (layout of Table 2.6)", table_retrieval),
    "table2_7_auc": ("Verification AUC (%), seen-heard and unseen-unheard (layout of Table 2.7)", table_auc),
}


def plot_curve(rows: Results, out: str | os.PathLike, n_max: int = 10) -> Path:
    """Fig. 2.3: 1:N matching accuracy vs N (v2f; U solid, G dashed) for every row."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ns = np.arange(2, n_max + 1)
    for i, (name, res) in enumerate(rows.items()):
        for s, style in (("U", "-"), ("G", "--")):
            ys = [res.get(f"match1N_v2f_{s}_N{n}") for n in ns]
            if all(y is not None for y in ys):
                ax.plot(ns, 100 * np.array(ys, float), style, marker="o", ms=3, color=f"C{i}", label=f"{name} ({s})")
    ax.plot(ns, 100 / ns, ":", color="gray", label="chance")
    ax.set_xlabel("N (gallery size)")
    ax.set_ylabel("1:N matching accuracy (%)")
    ax.set_title("1:N matching, voice -> face")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def classical_mds(x: np.ndarray, dims: int = 2) -> np.ndarray:
    """Classical (Torgerson) MDS of the rows of x (n, d) under Euclidean distance -> (n, dims), via ``eigh``."""
    d2 = np.square(x[:, None, :] - x[None, :, :]).sum(-1)             # (n, n) squared distances
    n = len(x)
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ d2 @ j                                                # double centring
    w, v = np.linalg.eigh(b)
    top = np.argsort(w)[::-1][:dims]
    return v[:, top] * np.sqrt(np.maximum(w[top], 0))


def plot_mds(seen, unseen, out: str | os.PathLike, n_identities: int = 10, seed: int = 0) -> Path | None:
    """Fig. 2.4: MDS of unit-norm voice (o) and face (^) embeddings of a few identities, coloured by identity (top)
    and by gender (bottom); left seen (training identities' held-out items), right unseen. ``seen``/``unseen``:
    (voice Side, face Side) or None."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    data = []
    for title, pair in (("seen identities", seen), ("unseen identities", unseen)):
        if pair is None:
            continue
        v, f = pair
        ids = sorted(set(np.asarray(v.identity).tolist()) & set(np.asarray(f.identity).tolist()))
        pick = sorted(rng.permutation(ids)[:n_identities].tolist()) if ids else []
        vm, fm = np.isin(v.identity, pick), np.isin(f.identity, pick)
        emb = np.concatenate([np.asarray(v.emb)[vm], np.asarray(f.emb)[fm]]).astype(np.float64)
        if len(emb) >= 3:
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            data.append((title, classical_mds(emb), int(vm.sum()), pick,
                         np.concatenate([v.identity[vm], f.identity[fm]]), np.concatenate([v.gender[vm], f.gender[fm]])))
    if not data:
        return None
    fig, axes = plt.subplots(2, len(data), figsize=(5 * len(data), 9), squeeze=False)
    for col, (title, xy, nv, pick, labels_id, labels_g) in enumerate(data):
        id_colour = {k: f"C{i % 10}" for i, k in enumerate(pick)}
        for row, (labels, colours) in enumerate(((labels_id, id_colour), (labels_g, {"m": "C0", "f": "C3"}))):
            ax = axes[row, col]
            for sl, marker, mod in ((slice(0, nv), "o", "voice"), (slice(nv, None), "^", "face")):
                c = [colours.get(str(lab), "gray") for lab in labels[sl]]
                ax.scatter(xy[sl, 0], xy[sl, 1], c=c, marker=marker, s=18, alpha=0.8, label=mod)
            ax.set_title(f"{title}: coloured by {'identity' if row == 0 else 'gender (blue m, red f)'}", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def tables_markdown(rows: Results, out_dir: str | os.PathLike | None = None) -> str:
    """All tables as Markdown (and ``out_dir/<table>.csv`` when given)."""
    parts = []
    for key, (title, fn) in TABLES.items():
        table = fn(rows)
        parts.append(f"### {title}\n\n" + markdown_table(table))
        if out_dir is not None:
            write_csv(table, Path(out_dir) / f"{key}.csv")
    return "\n".join(parts)


def write_report(run: str | os.PathLike, rows: Results) -> Path:
    """RUN/report.md with every table, RUN/<table>.csv and the 1:N curve RUN/curve.png (+ the MDS figure)."""
    run = Path(run)
    plot_curve(rows, run / "curve.png")
    first = next(iter(rows.values()))
    n = {k: first.get(k) for k in ("n_test_voices", "n_test_faces", "n_test_identities", "n_models")}
    text = ["# DIMNet results", "",
            f"Unseen-unheard test set: {n['n_test_voices']} voices, {n['n_test_faces']} faces, "
            f"{n['n_test_identities']} identities" + (f"; mean ± std over {n['n_models']} models." if n["n_models"]
                                                       else "."), "",
            tables_markdown(rows, run), "## Figures", "",
            "![1:N matching (Fig. 2.3)](curve.png)", ""]
    if (run / "mds.png").exists() or any((p / "mds.png").exists() for p in run.iterdir() if p.is_dir()):
        mds = "mds.png" if (run / "mds.png").exists() else next(
            f"{p.name}/mds.png" for p in sorted(run.iterdir()) if p.is_dir() and (p / "mds.png").exists())
        text += [f"![MDS of embeddings (Fig. 2.4)]({mds})", ""]
    out = run / "report.md"
    out.write_text("\n".join(text), encoding="utf-8")
    return out
