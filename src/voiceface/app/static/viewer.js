// A tiny rotatable mesh viewer on a 2D canvas (no WebGL, no downloads): painter's algorithm over the triangles,
// back faces culled, Lambert shading of each triangle's mean vertex colour. Drag to rotate, wheel to zoom.
// Viewers can be linked so that they turn together.
"use strict";

function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

class MeshViewer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.yaw = 0; this.pitch = 0; this.zoom = 1;
    this.linked = [];
    this.mesh = null;
    let drag = null;
    canvas.addEventListener("pointerdown", (e) => { drag = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); });
    canvas.addEventListener("pointerup", () => { drag = null; });
    canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      this.turn((e.clientX - drag[0]) * 0.01, (e.clientY - drag[1]) * 0.01);
      drag = [e.clientX, e.clientY];
    });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoom = Math.min(4, Math.max(0.3, this.zoom * (e.deltaY < 0 ? 1.1 : 0.9)));
      this.draw();
    }, { passive: false });
  }

  link(other) { this.linked.push(other); other.linked.push(this); }

  turn(dyaw, dpitch) {
    for (const v of [this, ...this.linked]) {
      v.yaw += dyaw;
      v.pitch = Math.max(-1.5, Math.min(1.5, v.pitch + dpitch));
      v.draw();
    }
  }

  // payload: {vertices: b64 float32 (V*3), triangles: b64 uint32 (F*3), colors: optional b64 uint8 (V*3)}
  setMesh(payload) {
    const v = new Float32Array(b64bytes(payload.vertices).buffer);
    const t = new Uint32Array(b64bytes(payload.triangles).buffer);
    const n = v.length / 3;
    const c = payload.colors ? b64bytes(payload.colors) : null;
    const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) {
      lo[k] = Math.min(lo[k], v[3 * i + k]); hi[k] = Math.max(hi[k], v[3 * i + k]);
    }
    const centre = [0, 1, 2].map((k) => (lo[k] + hi[k]) / 2);
    const scale = 2 / Math.max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2], 1e-9);
    const pos = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) pos[i] = (v[i] - centre[i % 3]) * scale;
    const f = t.length / 3;
    const col = new Float32Array(f * 3);
    for (let j = 0; j < f; j++) for (let k = 0; k < 3; k++) {
      col[3 * j + k] = c ? (c[3 * t[3 * j] + k] + c[3 * t[3 * j + 1] + k] + c[3 * t[3 * j + 2] + k]) / 765 : 0.8;
    }
    this.mesh = { pos, tri: t, col, n, f, vcol: c };
    this.draw();
  }

  draw() {
    const ctx = this.ctx, W = this.canvas.width, H = this.canvas.height;
    ctx.fillStyle = "#f4f4f4";
    ctx.fillRect(0, 0, W, H);
    if (!this.mesh) return;
    const { pos, tri, col, n, f } = this.mesh;
    const cy = Math.cos(this.yaw), sy = Math.sin(this.yaw), cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    const p = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {          // yaw about y, then pitch about x
      const x = pos[3 * i], y = pos[3 * i + 1], z = pos[3 * i + 2];
      const x1 = cy * x + sy * z, z1 = -sy * x + cy * z;
      p[3 * i] = x1; p[3 * i + 1] = cp * y - sp * z1; p[3 * i + 2] = sp * y + cp * z1;
    }
    const s = 0.45 * Math.min(W, H) * this.zoom;
    if (f === 0) {                           // vertices only (a landmark template): dots, far ones first
      const order = Array.from({ length: n }, (_, i) => i).sort((i, k) => p[3 * i + 2] - p[3 * k + 2]);
      for (const i of order) {
        const c = this.mesh.vcol;
        ctx.fillStyle = c ? `rgb(${c[3 * i]},${c[3 * i + 1]},${c[3 * i + 2]})` : "#555";
        ctx.fillRect(W / 2 + s * p[3 * i] - 2, H / 2 - s * p[3 * i + 1] - 2, 4, 4);
      }
      return;
    }
    const vis = [], depth = [], shade = [];
    for (let j = 0; j < f; j++) {
      const a = 3 * tri[3 * j], b = 3 * tri[3 * j + 1], c = 3 * tri[3 * j + 2];
      const ux = p[b] - p[a], uy = p[b + 1] - p[a + 1], uz = p[b + 2] - p[a + 2];
      const vx = p[c] - p[a], vy = p[c + 1] - p[a + 1], vz = p[c + 2] - p[a + 2];
      const nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
      if (nz <= 0) continue;                 // facing away (counter-clockwise front faces, +z towards viewer)
      const len = Math.hypot(nx, ny, nz) || 1;
      vis.push(j); depth.push(p[a + 2] + p[b + 2] + p[c + 2]);
      shade.push(0.25 + 0.75 * Math.max(0, (0.3 * nx + 0.3 * ny + 0.9 * nz) / len / 1.0)); // light from the viewer
    }
    const order = vis.map((_, i) => i).sort((i, k) => depth[i] - depth[k]);
    for (const i of order) {
      const j = vis[i], a = 3 * tri[3 * j], b = 3 * tri[3 * j + 1], c = 3 * tri[3 * j + 2];
      const r = Math.round(255 * Math.min(1, col[3 * j] * shade[i]));
      const g = Math.round(255 * Math.min(1, col[3 * j + 1] * shade[i]));
      const bl = Math.round(255 * Math.min(1, col[3 * j + 2] * shade[i]));
      ctx.fillStyle = ctx.strokeStyle = `rgb(${r},${g},${bl})`;
      ctx.beginPath();
      ctx.moveTo(W / 2 + s * p[a], H / 2 - s * p[a + 1]);
      ctx.lineTo(W / 2 + s * p[b], H / 2 - s * p[b + 1]);
      ctx.lineTo(W / 2 + s * p[c], H / 2 - s * p[c + 1]);
      ctx.closePath();
      ctx.fill(); ctx.stroke();
    }
  }
}
window.MeshViewer = MeshViewer;
