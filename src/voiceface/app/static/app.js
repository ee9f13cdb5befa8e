// The page's logic: tabs, microphone recording (WebAudio PCM -> 16-bit WAV in the page), uploads, rendering of
// the JSON the server returns. document.body.dataset.voice / .photo = "done" | "error" after each request.
"use strict";

const $ = (id) => document.getElementById(id);
const GENDER = { m: "male", f: "female" };
const MAX_RECORD_S = 60;
let voiceBlob = null, voiceName = "recording.wav";
const shapeView = new MeshViewer($("shape-view"));
const meanView = new MeshViewer($("mean-view"));
const photoView = new MeshViewer($("photo-view"));
shapeView.link(meanView);
for (const v of [shapeView, meanView, photoView]) v.draw();

function el(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

function showError(msg) { $("error").textContent = msg; $("error").hidden = !msg; }

function showNotes(notes) { $("notes").textContent = (notes || []).join("; "); $("notes").hidden = !(notes || []).length; }

for (const b of document.querySelectorAll(".tab")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll(".tab")) o.classList.toggle("active", o === b);
    for (const p of document.querySelectorAll(".tabpage")) p.hidden = p.id !== b.dataset.tab;
    showError("");
  });
}

async function loadStatus() {
  const s = await (await fetch("/api/status")).json();
  const box = $("missing");
  box.replaceChildren();
  if (s.missing.length) {
    box.append(el("strong", {}, "Missing parts (their panels stay empty): "));
    const ul = el("ul");
    for (const m of s.missing) {
      const li = el("li", {}, `${m.part}: ${m.shows}. Make it with `);
      li.append(el("code", {}, m.command));
      ul.append(li);
    }
    box.append(ul);
  }
  box.hidden = !s.missing.length;
  $("runs").textContent = "runs: " + Object.entries(s.runs).map(([k, v]) => `${k} = ${v || "none"}`).join(", ");
}

// ---------------------------------------------------------------- recording
let rec = null;

function wavBlob(chunks, rate) {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const buf = new DataView(new ArrayBuffer(44 + 2 * n));
  const str = (o, s) => { for (let i = 0; i < s.length; i++) buf.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); buf.setUint32(4, 36 + 2 * n, true); str(8, "WAVEfmt "); buf.setUint32(16, 16, true);
  buf.setUint16(20, 1, true); buf.setUint16(22, 1, true); buf.setUint32(24, rate, true);
  buf.setUint32(28, 2 * rate, true); buf.setUint16(32, 2, true); buf.setUint16(34, 16, true);
  str(36, "data"); buf.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) for (let i = 0; i < c.length; i++, o += 2) {
    buf.setInt16(o, Math.max(-32768, Math.min(32767, Math.round(c[i] * 32767))), true);
  }
  return new Blob([buf], { type: "audio/wav" });
}

async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(stream);
  const node = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  node.onaudioprocess = (e) => {
    if (!rec || rec.node !== node) return;     // a buffer delivered after Stop
    chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    const secs = chunks.length * 4096 / ctx.sampleRate;
    $("rec-state").textContent = `recording ${secs.toFixed(0)} s`;
    if (secs >= MAX_RECORD_S) stopRecording();
  };
  // the recording exists before audio flows: a Stop pressed while the context resumes stops this one
  rec = { stream, ctx, node, chunks };
  $("record").textContent = "Stop";
  src.connect(node); node.connect(ctx.destination);
  await ctx.resume().catch((e) => { if (rec && rec.ctx === ctx) throw e; });   // closed by an early Stop: fine
}

function stopRecording() {
  if (!rec) return;
  rec.node.disconnect(); rec.stream.getTracks().forEach((t) => t.stop());
  const got = rec.chunks.length;
  if (got) { voiceBlob = wavBlob(rec.chunks, rec.ctx.sampleRate); voiceName = "recording.wav"; }
  const secs = got * 4096 / rec.ctx.sampleRate;
  rec.ctx.close(); rec = null;
  $("record").textContent = "Record";
  $("rec-state").textContent = got ? `recorded ${secs.toFixed(1)} s: press Analyse`
    : "nothing was recorded (is the microphone muted?)";
  $("analyse").disabled = !voiceBlob;
}

$("record").addEventListener("click", () => {
  if (rec) { stopRecording(); return; }
  startRecording().catch((e) => showError("microphone not available: " + e.message + " (upload a file instead)"));
});

$("voice-file").addEventListener("change", (e) => {
  const f = e.target.files[0];
  if (f) { voiceBlob = f; voiceName = f.name; $("analyse").disabled = false; }
});
$("photo-file").addEventListener("change", (e) => { $("reconstruct").disabled = !e.target.files[0]; });

// ---------------------------------------------------------------- requests
async function post(url, form, busy, button) {
  showError(""); $(busy).hidden = false; $(button).disabled = true;
  try {
    const r = await fetch(url, { method: "POST", body: form });
    const body = await r.json().catch(() => ({ error: `the server answered ${r.status}` }));
    if (!r.ok || body.error) throw new Error(body.error || `the server answered ${r.status}`);
    return body;
  } finally { $(busy).hidden = true; $(button).disabled = false; }
}

$("analyse").addEventListener("click", async () => {
  const form = new FormData();
  form.append("file", voiceBlob, voiceName);
  form.append("gender", $("gender").value);
  try {
    const res = await post("/api/voice", form, "voice-busy", "analyse");
    renderVoice(res);
    document.body.dataset.voice = "done";
  } catch (e) { showError(e.message); document.body.dataset.voice = "error"; }
});

$("reconstruct").addEventListener("click", async () => {
  const form = new FormData();
  form.append("file", $("photo-file").files[0]);
  try {
    renderPhoto(await post("/api/photo", form, "photo-busy", "reconstruct"));
    document.body.dataset.photo = "done";
  } catch (e) { showError(e.message); document.body.dataset.photo = "error"; }
});

// ---------------------------------------------------------------- rendering
function renderVoice(res) {
  showNotes(res.notes);
  $("face-img").src = res.face.image || "";
  $("face-why").textContent = res.face.error || "";
  renderCovariates(res.dimnet);
  renderNearest(res.dimnet.nearest || []);
  renderGender(res.gender);
  renderShape(res.shape);
}

function renderCovariates(d) {
  const box = $("covariates");
  box.replaceChildren();
  $("dimnet-why").textContent = d.error || "";
  $("dimnet-note").textContent = (d.absent || []).length
    ? `this DIMNet run has no ${d.absent.join(" or ")} classifier; a run with one: ${d.absent_command}` : "";
  for (const [name, rows] of Object.entries(d.covariates || {})) {
    const t = el("table", { class: "cov", "data-covariate": name });
    t.append(el("tr")); t.rows[0].append(el("th", {}, name), el("th", {}, "probability"));
    for (const r of rows.slice(0, 5)) {
      const tr = el("tr");
      const bar = el("span", { class: "bar", style: `width:${(60 * r.probability).toFixed(0)}px` });
      const td = el("td", {}, (100 * r.probability).toFixed(1) + "% ");
      td.prepend(bar);
      tr.append(el("td", {}, GENDER[r.label] && name === "gender" ? GENDER[r.label] : r.label), td);
      t.append(tr);
    }
    box.append(t);
  }
}

function renderNearest(rows) {
  const box = $("nearest");
  box.replaceChildren();
  for (const r of rows) {
    const f = el("figure");
    f.append(el("img", { src: r.image, alt: r.identity }));
    f.append(el("figcaption", {}, `${r.identity} (${r.gender}, ${r.nationality}) cos ${r.similarity.toFixed(2)}`));
    box.append(f);
  }
}

function renderGender(g) {
  let s = "";
  if (g.used) s = `3D shape for a ${GENDER[g.used] || g.used} speaker`;
  if (g.source === "given") s += " (chosen above)";
  if (g.estimate) s += `; the voice sounds ${GENDER[g.estimate] || g.estimate} (p = ${g.probability.toFixed(2)})`;
  if (g.source === "voice") s += ": pick the other gender above and press Analyse to override";
  $("gender-line").textContent = s;
}

function renderShape(sh) {
  $("shape-why").textContent = sh.error || "";
  const t = $("am-table");
  t.replaceChildren();
  if (sh.error) { shapeView.mesh = null; meanView.mesh = null; shapeView.draw(); meanView.draw(); return; }
  shapeView.setMesh(sh.mesh);
  meanView.setMesh(sh.mean_mesh);
  $("diff-max").textContent = `(blue 0 to red ${sh.difference_max.toPrecision(2)})`;
  $("mean-caption").textContent = `the ${GENDER[sh.gender] || sh.gender} mean face`;
  const head = el("tr");
  for (const h of ["AM", "region", "prediction", "uncertainty (sd)", "selected", "used in fit"]) head.append(el("th", {}, h));
  t.append(el("caption", {}, `${sh.n_selected} of ${sh.ams.length} AMs selected (predictable from the voice)`), head);
  for (const a of sh.ams) {
    const tr = el("tr", a.selected ? { class: "selected" } : {});
    for (const v of [a.name, a.region, a.prediction.toPrecision(4), a.sd.toPrecision(3), a.selected ? "yes" : "",
      a.used_in_fit ? "yes" : ""]) tr.append(el("td", {}, String(v)));
    t.append(tr);
  }
}

function renderPhoto(res) {
  for (const k of ["overlay", "uv", "shading", "relit"]) $("photo-" + k).src = res.images[k];
  photoView.setMesh(res.mesh);
  $("photo-error-line").textContent = `photometric error ${res.photometric_error.toFixed(1)} (0-255 scale)`
    + (res.greyscale ? "; greyscale photo: reflectance and light come out grey" : "");
}

loadStatus().catch((e) => showError("cannot reach the app: " + e.message));
