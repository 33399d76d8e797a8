// The jobs tab: start align, labels, annotate or export on sessions; import a video plus
// state log or a seed zip; follow every job live (server-sent events from
// /api/jobs/events) with its progress, its error line and exit code as the CLI prints
// them, and cancel it. Jobs are stored by the server, so a reload shows them again.
import { useStyles, el } from "./widgets.js";

const RUNNING = new Set(["queued", "running"]);

function progressText(job) {
  const p = job.progress;
  if (!p) return "";
  return p.total ? `${p.task}: ${p.completed}/${p.total}` : `${p.task}: ${p.completed}`;
}

function renderJob(row, job, api) {
  row.dataset.jobId = job.id;
  row.dataset.state = job.state;
  const bar = el("progress", { max: job.progress?.total || 1,
                               value: job.state === "done" ? (job.progress?.total || 1) : (job.progress?.completed || 0) });
  if (job.state === "running" && !job.progress?.total) bar.removeAttribute("value");
  const cancel = el("button", { type: "button", textContent: "Cancel", className: "cancel",
                                disabled: !RUNNING.has(job.state) });
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await api.postJSON(`/api/jobs/${encodeURIComponent(job.id)}/cancel`, {});
    } catch (error) {
      row.querySelector(".error").textContent = error.message;
    }
  });
  const outcome = job.error ? `error: ${job.error}` + (job.exit_code == null ? "" : ` (exit code ${job.exit_code})`)
    : job.state === "done" && job.output ? `→ ${job.output}` : "";
  row.replaceChildren(
    el("td", { textContent: new Date(job.created_ns / 1e6).toLocaleTimeString() }),
    el("td", { textContent: job.title, className: "title" }),
    el("td", { textContent: job.state, className: "state" }),
    el("td", {}, [bar, el("span", { textContent: " " + progressText(job), className: "progress" })]),
    el("td", { textContent: outcome, className: job.error ? "error" : "output" }),
    el("td", {}, [cancel]));
}

function sessionOptions(sessions) {
  return sessions.map((s) => el("option", { value: s.id, textContent: s.id }));
}

function startForm(api, sessions, say) {
  const kind = el("select", { className: "kind" },
    ["align", "labels", "annotate", "export"].map((k) => el("option", { value: k, textContent: k })));
  const picked = el("select", { className: "sessions", multiple: true, size: 6 },
    sessionOptions(sessions));
  const format = el("select", { className: "format" },
    ["lerobot", "webdataset", "parquet", "coco"].map((f) => el("option", { value: f, textContent: f })));
  const stages = el("input", { className: "stages", value: "embed,segment,caption", title: "annotate stages" });
  const go = el("button", { type: "submit", textContent: "Start" });
  const form = el("form", { className: "start-job" }, [kind, picked, format, stages, go]);
  const sync = () => {
    format.hidden = kind.value !== "export";
    stages.hidden = kind.value !== "annotate";
  };
  kind.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const job = { kind: kind.value, sessions: [...picked.selectedOptions].map((o) => o.value) };
    if (job.kind === "export") job.format = format.value;
    if (job.kind === "annotate") job.stages = stages.value.split(",").map((s) => s.trim()).filter(Boolean);
    try {
      await api.postJSON("/api/jobs", { job });
      say("");
    } catch (error) {
      say(error.message);
    }
  });
  return form;
}

function importForm(say) {
  const kind = el("select", { className: "import-kind" }, [
    el("option", { value: "video", textContent: "video + state log" }),
    el("option", { value: "seed", textContent: "seed zip" })]);
  const name = el("input", { className: "import-name", placeholder: "new session name", required: true });
  const state = el("input", { type: "file", className: "state-file", title: "state log (.jsonl)" });
  const video = el("input", { type: "file", className: "video-file", accept: "video/*", title: "video" });
  const seed = el("input", { type: "file", className: "seed-file", accept: ".zip", title: "seed zip" });
  const offset = el("input", { className: "offset", placeholder: "offset ms (optional)", size: 10 });
  const go = el("button", { type: "submit", textContent: "Upload" });
  const form = el("form", { className: "import" }, [kind, name, state, video, offset, seed, go]);
  const sync = () => {
    for (const input of [state, video, offset]) input.hidden = kind.value !== "video";
    seed.hidden = kind.value !== "seed";
  };
  kind.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData();  // text fields first: the server reads them before files
    data.append("kind", kind.value);
    data.append("name", name.value);
    if (kind.value === "video") {
      if (offset.value.trim()) data.append("offset_ms", offset.value.trim());
      if (state.files[0]) data.append("state", state.files[0]);
      if (video.files[0]) data.append("video", video.files[0]);
    } else if (seed.files[0]) {
      data.append("seed", seed.files[0]);
    }
    go.disabled = true;
    say("uploading…");
    try {
      const response = await fetch("/api/uploads", { method: "POST", body: data, credentials: "same-origin" });
      const body = await response.json();
      say(response.ok ? "" : body.error.message);
    } catch (error) {
      say(error.message);
    } finally {
      go.disabled = false;
    }
  });
  return form;
}

export async function mount(element, api) {
  useStyles("search.css");
  const { sessions } = await api.getJSON("/api/sessions");
  const message = el("p", { className: "info", role: "status" });
  const say = (text) => { message.textContent = text; };
  const body = el("tbody");
  const table = el("table", { className: "jobs" }, [
    el("thead", {}, [el("tr", {}, ["started", "job", "state", "progress", "outcome", ""]
      .map((t) => el("th", { textContent: t })))]), body]);
  const start = startForm(api, sessions, say);
  element.replaceChildren(el("h2", { textContent: "Jobs" }), start,
    el("h3", { textContent: "Import" }), importForm(say), message, table);

  const rows = new Map();
  function show(job) {
    let row = rows.get(job.id);
    if (!row) {
      row = el("tr");
      rows.set(job.id, row);
      body.prepend(row);
    }
    renderJob(row, job, api);
  }
  const events = new EventSource("/api/jobs/events");
  events.addEventListener("jobs", (event) => {
    const jobs = JSON.parse(event.data);
    body.replaceChildren();
    rows.clear();
    for (const job of [...jobs].reverse()) show(job);
    element.dataset.live = "true";
  });
  events.addEventListener("job", (event) => show(JSON.parse(event.data)));
  events.addEventListener("error", () => { element.dataset.live = "false"; });
  // on each visit: the sessions again (an import may have made one), keeping the picks
  return {
    async show() {
      const fresh = (await api.getJSON("/api/sessions")).sessions;
      // the picks are read after the answer came, so one made meanwhile is kept too
      const select = start.querySelector("select.sessions");
      const picks = new Set([...select.selectedOptions].map((o) => o.value));
      const options = sessionOptions(fresh);
      for (const option of options) option.selected = picks.has(option.value);
      select.replaceChildren(...options);
    },
  };
}
