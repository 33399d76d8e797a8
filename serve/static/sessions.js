// The sessions tab: one row per session with its status, length, frame counts, alignment
// quality and what has been derived from it; a row opens the session in the player.

const fmt = (value, digits = 1, unit = "") =>
  value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)}${unit}`;

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`
           : `${m}:${String(r).padStart(2, "0")}`;
}

function alignmentText(a) {
  if (!a) return "not aligned";
  if (a.error) return a.error;
  const methods = Object.entries(a.methods || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  const latency = a.latency_ms === null || a.latency_ms === undefined ? "latency –"
    : `latency ${fmt(a.latency_ms)}${a.latency_bound_ms == null ? "" : ` ± ${fmt(a.latency_bound_ms)}`} ms (${a.latency_source})`;
  const offset = a.offset_ms == null ? "" : `offset ${fmt(a.offset_ms, 2)}${a.offset_std_ms == null ? "" : ` ± ${fmt(a.offset_std_ms, 2)}`} ms`;
  return [methods, offset, latency].filter(Boolean).join("; ");
}

function derivedText(s) {
  const parts = [];
  if (s.aligned_rows != null) parts.push("aligned");
  if (s.labels && s.labels.rows != null) parts.push(`labels (${s.labels.rows})`);
  for (const stage of s.annotations || []) parts.push(stage);
  for (const name of s.exports || []) parts.push(`export ${name}`);
  return parts.join(", ") || "nothing yet";
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

export async function mount(element, api) {
  element.innerHTML = `<h2>Sessions</h2><table class="sessions"><thead><tr>
    <th>session</th><th>status</th><th>duration</th><th>frames</th><th>matched</th>
    <th>alignment</th><th>derived</th></tr></thead><tbody></tbody></table>`;
  const body = element.querySelector("tbody");

  async function show() {
    const { sessions } = await api.getJSON("/api/sessions");
    body.replaceChildren();
    for (const s of sessions) {
      const row = body.insertRow();
      row.dataset.session = s.id;
      const name = row.insertCell();
      const link = document.createElement("a");
      link.href = `#player/${encodeURIComponent(s.id)}`;
      link.textContent = s.id;
      name.append(link);
      cell(row, s.status, `status ${s.status}`);
      cell(row, duration(s.duration_s));
      const a = s.alignment || {};
      cell(row, a.frames ?? s.labels?.rows ?? "–", "frames");
      cell(row, a.matched == null ? "–" : `${a.matched} (${fmt(100 * a.coverage, 1, "%")})`);
      cell(row, alignmentText(s.alignment), "alignment");
      cell(row, derivedText(s), "derived");
      if (s.error) row.title = s.error;
    }
    if (!sessions.length) {
      const row = body.insertRow();
      const td = cell(row, "No sessions in this folder yet: record one with stpe record.");
      td.colSpan = 7;
    }
  }
  return { show };
}
