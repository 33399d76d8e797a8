// The search tab: frames across sessions by state (a filter builder over the fields the
// server lists), by caption text, or by example frame (DINOv3 embeddings). Results are a
// grid of thumbnails that open in the player; a selection exports as a dataset (a job).
import { useStyles, el } from "./widgets.js";

const PAGE = 60;

function parseValue(kind, op, text) {
  const one = (t) => {
    if (kind === "number") {
      const n = Number(t);
      if (t.trim() === "" || !Number.isFinite(n)) throw new Error(`${t} is not a number`);
      return n;
    }
    if (kind === "bool") return t === "true";
    return t;
  };
  if (op === "between" || op === "in") {
    return text.split(",").map((t) => t.trim()).filter((t) => t !== "").map(one);
  }
  return one(text.trim());
}

function conditionRow(fields) {
  const field = el("select", { className: "field" },
    fields.map((f) => el("option", { value: f.name, textContent: f.unit ? `${f.name} (${f.unit})` : f.name,
                                      title: f.doc })));
  const op = el("select", { className: "op" });
  const value = el("input", { className: "value", placeholder: "value" });
  const remove = el("button", { type: "button", textContent: "×", title: "remove" });
  const row = el("div", { className: "condition" }, [field, op, value, remove]);
  const sync = () => {
    const spec = fields.find((f) => f.name === field.value);
    op.replaceChildren(...spec.ops.map((o) => el("option", { value: o, textContent: o })));
    value.placeholder = spec.kind === "bool" ? "true or false"
      : "value (a,b for between; a,b,c for in)";
  };
  field.addEventListener("change", sync);
  remove.addEventListener("click", () => row.remove());
  sync();
  row.read = () => {
    const spec = fields.find((f) => f.name === field.value);
    return { field: spec.name, op: op.value, value: parseValue(spec.kind, op.value, value.value) };
  };
  return row;
}

// [[first, last], ...] runs of consecutive frames
function ranges(frames) {
  const sorted = [...frames].sort((a, b) => a - b);
  const out = [];
  for (const f of sorted) {
    const last = out[out.length - 1];
    if (last && f === last[1] + 1) last[1] = f; else out.push([f, f]);
  }
  return out;
}

export async function mount(element, api) {
  useStyles("search.css");
  const { fields } = await api.getJSON("/api/search/fields");
  const conditions = el("div", { className: "conditions" });
  const add = el("button", { type: "button", textContent: "+ condition", className: "add" });
  const stateGo = el("button", { type: "submit", textContent: "Search by state" });
  const stateForm = el("form", { className: "state-query" }, [conditions, add, stateGo]);
  const captionText = el("input", { placeholder: "caption text", className: "caption-text" });
  const captionForm = el("form", { className: "caption-query" },
    [captionText, el("button", { type: "submit", textContent: "Search captions" })]);
  const info = el("p", { className: "info" });
  const grid = el("div", { className: "results" });
  const prev = el("button", { type: "button", textContent: "◀ previous" });
  const next = el("button", { type: "button", textContent: "next ▶" });
  const format = el("select", { className: "format" },
    ["lerobot", "webdataset", "parquet", "coco"].map((f) => el("option", { value: f, textContent: f })));
  const exportButton = el("button", { type: "button", textContent: "Export selection",
                                      className: "export" });
  const selection = new Map();  // "session\u0000frame" -> {session, frame}
  element.replaceChildren(el("h2", { textContent: "Search" }), stateForm, captionForm, info,
    el("div", { className: "pager" }, [prev, next, format, exportButton]), grid);
  if (!fields.length) info.textContent = "No labelled sessions yet: run stpe labels first.";

  let last = null;  // {path, body}
  async function run(path, body) {
    last = { path, body };
    const answer = await api.postJSON(path, body);
    grid.replaceChildren();
    const shownFrom = body.offset || 0;
    info.textContent = answer.message
      || `${answer.total} frame(s)` + (answer.total ? `, showing ${shownFrom + 1}–${shownFrom + answer.results.length}` : "");
    prev.disabled = !shownFrom;
    next.disabled = shownFrom + answer.results.length >= answer.total;
    for (const hit of answer.results) {
      const key = `${hit.session}\u0000${hit.frame}`;
      const pick = el("input", { type: "checkbox", checked: selection.has(key), title: "select" });
      pick.addEventListener("change", () => {
        if (pick.checked) selection.set(key, hit); else selection.delete(key);
        exportButton.textContent = `Export selection (${selection.size})`;
      });
      const similar = el("button", { type: "button", textContent: "similar", className: "similar" });
      similar.addEventListener("click", () => search("/api/search/similar",
        { session: hit.session, frame: hit.frame, limit: PAGE }));
      const link = el("a", { href: `#player/${encodeURIComponent(hit.session)}?frame=${hit.frame}` },
        [el("img", { src: hit.thumb, alt: `${hit.session} frame ${hit.frame}`, loading: "lazy" })]);
      const label = `${hit.session} #${hit.frame}` + (hit.t == null ? "" : ` · ${hit.t.toFixed(2)} s`)
        + (hit.score == null ? "" : ` · ${hit.score.toFixed(3)}`);
      const card = el("figure", { className: "hit" }, [link, el("figcaption", {}, [pick, label, similar])]);
      card.dataset.session = hit.session;
      card.dataset.frame = hit.frame;
      if (hit.caption) card.append(el("p", { className: "caption", textContent: hit.caption }));
      grid.append(card);
    }
    element.dataset.total = answer.total;
  }
  async function search(path, body) {
    try {
      await run(path, body);
    } catch (error) {
      info.textContent = error.message;
      element.dataset.total = "";
    }
  }

  add.addEventListener("click", () => conditions.append(conditionRow(fields)));
  stateForm.addEventListener("submit", (event) => {
    event.preventDefault();
    let where;
    try {
      where = [...conditions.children].map((row) => row.read());
    } catch (error) {
      info.textContent = error.message;
      return;
    }
    search("/api/search/state", { where, limit: PAGE, offset: 0 });
  });
  captionForm.addEventListener("submit", (event) => {
    event.preventDefault();
    search("/api/search/caption", { text: captionText.value, limit: PAGE, offset: 0 });
  });
  for (const [button, step] of [[prev, -PAGE], [next, PAGE]]) {
    button.addEventListener("click", () => {
      if (last && "offset" in last.body) {
        search(last.path, { ...last.body, offset: Math.max(0, last.body.offset + step) });
      }
    });
  }
  exportButton.addEventListener("click", async () => {
    if (!selection.size) {
      info.textContent = "Select frames first (the box under each picture).";
      return;
    }
    const bySession = new Map();
    for (const { session, frame } of selection.values()) {
      if (!bySession.has(session)) bySession.set(session, []);
      bySession.get(session).push(frame);
    }
    const job = { kind: "export", format: format.value, sessions: [...bySession.keys()],
                  frames: [...bySession].map(([session, frames]) => ({ session, ranges: ranges(frames) })) };
    try {
      await api.postJSON("/api/jobs", { job });
      location.hash = "#jobs";
    } catch (error) {
      info.textContent = error.message;
    }
  });
  conditions.append(conditionRow(fields.length ? fields : [{ name: "-", ops: ["="], kind: "string" }]));
  prev.disabled = next.disabled = true;
  return {};
}
