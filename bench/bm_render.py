"""Benchmark: forward+backward images per second of the differentiable rasteriser (voiceface.face3d.render).

Renders a batch of faces (default 32 at 128x128, the built-in model's shapes with random identity coefficients,
shaded with SH light) and back-propagates an image + mask loss to shapes, albedo and light. Baselines measured in
the same run: a naive per-triangle Python-loop rasteriser (same maths, autograd through the loop; timed on a few
images only because it is slow) and nvdiffrast when it is installed and CUDA is available.

    .venv/bin/python bench/bm_render.py                 # CPU, 1 thread
    .venv/bin/python bench/bm_render.py --device cuda   # GPU (adds nvdiffrast when installed)
"""
from __future__ import annotations

import argparse
import time

import torch

from voiceface.face3d import geometry, render


def naive_render(q: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor, size: int) -> torch.Tensor:
    """Per-triangle Python loop: bounding box, edge functions, z-test, overwrite. q (B, V, 3), colors (B, V, C)."""
    bsz, c = q.shape[0], colors.shape[-1]
    images = []
    for b in range(bsz):
        img = torch.zeros(size, size, c, dtype=colors.dtype)
        zbuf = torch.full((size, size), float("inf"), dtype=q.dtype)
        tri_all = q[b, faces]  # (F, 3, 3)
        boxes = tri_all.detach()[..., :2]
        lo = torch.ceil(boxes.amin(1) - 0.5).clamp(0, size).long().tolist()
        hi = torch.floor(boxes.amax(1) - 0.5).clamp(-1, size - 1).long().tolist()
        for f in range(faces.shape[0]):
            (x0, y0), (x1, y1) = lo[f], hi[f]
            if x1 < x0 or y1 < y0:
                continue
            tri = tri_all[f]
            ys = torch.arange(y0, y1 + 1, dtype=q.dtype)[:, None] + 0.5
            xs = torch.arange(x0, x1 + 1, dtype=q.dtype)[None, :] + 0.5
            e = torch.stack(render._edge_terms(tri[:, 0], tri[:, 1], xs, ys), -1)
            area = e.sum(-1, keepdim=True)
            bary = e / area
            z = (bary * tri[:, 2]).sum(-1)
            m = (bary >= 0).all(-1) & (z.detach() < zbuf[y0:y1 + 1, x0:x1 + 1])
            if not bool(m.any()):
                continue
            vals = bary @ colors[b, faces[f]]
            img[y0:y1 + 1, x0:x1 + 1] = torch.where(m[..., None], vals, img[y0:y1 + 1, x0:x1 + 1])
            zbuf[y0:y1 + 1, x0:x1 + 1] = torch.where(m, z.detach(), zbuf[y0:y1 + 1, x0:x1 + 1])
        images.append(img.permute(2, 0, 1))
    return torch.stack(images)


def setup(batch: int, size: int, device: torch.device, seed: int):
    try:
        from voiceface.face3d import builtin_model

        model = builtin_model().to(device)
        g = torch.Generator().manual_seed(seed)
        coeffs = torch.randn(batch, model.num_identity, generator=g).to(device)
        shapes = model.shape(coeffs).detach()
        faces = model.triangles
        albedo = model.albedo(batch=batch).detach().clone()
        mesh = f"built-in model, {model.num_vertices} vertices, {faces.shape[0]} triangles"
    except ImportError:
        import trimesh

        m = trimesh.creation.icosphere(subdivisions=5)
        shapes = torch.tensor(m.vertices, dtype=torch.float32, device=device)[None].repeat(batch, 1, 1) * 80
        faces = torch.tensor(m.faces, device=device)
        albedo = torch.full_like(shapes, 0.7)
        mesh = f"icosphere, {shapes.shape[1]} vertices, {faces.shape[0]} triangles"
    extent = (shapes[0].amax(0) - shapes[0].amin(0))[:2].max()
    yaw = torch.linspace(-0.6, 0.6, batch, device=device)
    rot = torch.stack([torch.zeros_like(yaw), yaw, torch.zeros_like(yaw)], -1)
    view = geometry.make_viewpoint(batch, size, 0.9 * size / extent, rot, device=device)
    light = geometry.sh_light(batch, 0.45, (0.3, 0.4, 1.0), 0.75, device=device)
    return shapes, faces, albedo, view, light, mesh


def step(shapes, faces, albedo, view, light, size, backend):
    s = shapes.clone().requires_grad_(True)
    a = albedo.clone().requires_grad_(True)
    lt = light.clone().requires_grad_(True)
    out = render.render_face(s, a, view, lt, size, faces=faces, backend=backend)
    loss = out["image"].square().mean() + out["mask"].mean()
    loss.backward()
    return out


def timeit(fn, device, repeats: int) -> tuple[float, float]:
    """Best wall-clock and best process CPU time over ``repeats`` runs (after one warm-up), in seconds.

    On a shared, oversubscribed machine the CPU time is the steadier figure (the wall clock includes waiting)."""
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-images", type=int, default=2, help="images timed with the naive loop (it is slow)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shapes, faces, albedo, view, light, mesh = setup(args.batch, args.size, device, args.seed)
    print(f"{mesh}; batch {args.batch} at {args.size}x{args.size} on {device} ({args.threads} thread(s))")

    t_fwd, c_fwd = timeit(lambda: render.render_face(shapes, albedo, view, light, args.size, faces=faces,
                                                     backend="torch"), device, args.repeats)
    t_ours, c_ours = timeit(lambda: step(shapes, faces, albedo, view, light, args.size, "torch"), device, args.repeats)
    ours, ours_cpu = args.batch / t_ours, args.batch / c_ours
    print(f"torch rasteriser  forward          {args.batch / t_fwd:8.1f} images/s wall, {args.batch / c_fwd:8.1f} per "
          f"CPU-second  ({t_fwd * 1e3:.0f} ms / batch)")
    print(f"torch rasteriser  forward+backward {ours:8.1f} images/s wall, {ours_cpu:8.1f} per CPU-second  "
          f"({t_ours * 1e3:.0f} ms / batch)")

    n = args.naive_images
    q = geometry.project(shapes[:n], view[:n])
    normals = geometry.rotate(geometry.vertex_normals(shapes[:n], faces), view[:n])
    colors = geometry.shade(albedo[:n], normals, light[:n])

    def naive_step():
        qq = q.detach().cpu().requires_grad_(True)
        cc = colors.detach().cpu().requires_grad_(True)
        naive_render(qq, faces.cpu(), cc, args.size).square().mean().backward()

    t_naive, c_naive = timeit(naive_step, torch.device("cpu"), 1)
    naive, naive_cpu = n / t_naive, n / c_naive
    print(f"naive per-triangle loop forward+backward {naive:6.3f} images/s wall, {naive_cpu:6.3f} per CPU-second "
          f"(CPU, {n} images, {t_naive:.1f} s)")
    print(f"speed-up torch rasteriser / naive loop: {ours / naive:.0f}x wall, {ours_cpu / naive_cpu:.0f}x CPU time")
    with torch.no_grad():
        ref = naive_render(q.cpu(), faces.cpu(), colors.cpu(), args.size)
        mine = render.render(q, faces, colors, args.size, antialias_edges=False, backend="torch")["image"].cpu()
    print(f"agreement with the naive loop (no anti-aliasing): max |diff| {float((ref - mine).abs().max()):.2e}, "
          f"pixels differing > 1e-4: {float(((ref - mine).abs().amax(1) > 1e-4).float().mean()):.4%}")

    if render.nvdiffrast_available(device):
        t_nv, _ = timeit(lambda: step(shapes, faces, albedo, view, light, args.size, "nvdiffrast"), device,
                         args.repeats)
        print(f"nvdiffrast        forward+backward {args.batch / t_nv:7.1f} images/s; "
              f"torch / nvdiffrast: {t_nv / t_ours:.2f}x")
    else:
        print("nvdiffrast: not measured (needs CUDA and the nvdiffrast package)")


if __name__ == "__main__":
    main()
