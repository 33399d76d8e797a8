// The player: the session video with its labels drawn on a canvas above it, frame-accurate
// stepping, an event timeline that seeks, and the frame's state beside the picture.
// Frame i is shown at video time (pts_us[i] - start_us) / 1e6 s: times come from the
// session's tables (/api/sessions/<id>/labels), never from an assumed frame rate.
import { drawFrame } from "./overlay.js";

const WINDOW = 200;
const LANE_PX = 22;
// the timeline's row of an event: one per key, one for flight, one for moving, one per kind
const AIR = new Set(["jump", "airborne", "land"]);
const lane = (e) => (e.key ? `key ${e.key}` : AIR.has(e.kind) ? "air"
  : e.kind.endsWith("_moving") ? "moving" : e.kind);

function describe(event) {
  const what = event.key || event.direction || event.subject || "";
  return what ? `${event.kind} ${what}` : event.kind;
}

export async function mount(element, api) {
  element.innerHTML = `
    <h2 class="title">Player</h2>
    <div class="player">
      <div>
        <div class="stage">
          <video muted playsinline preload="auto"></video>
          <canvas></canvas>
        </div>
        <div class="controls">
          <button type="button" data-step="-1" title="previous frame (←)">◀ frame</button>
          <button type="button" data-play>play</button>
          <button type="button" data-step="1" title="next frame (→)">frame ▶</button>
          <input type="range" min="0" max="0" value="0" aria-label="frame">
          <span class="position"></span>
          <span class="video-note"></span>
        </div>
        <div class="timeline" aria-label="events"></div>
      </div>
      <aside class="state"><dl></dl></aside>
    </div>`;
  const title = element.querySelector(".title");
  const video = element.querySelector("video");
  const canvas = element.querySelector("canvas");
  const slider = element.querySelector("input[type=range]");
  const position = element.querySelector(".position");
  const videoNote = element.querySelector(".video-note");
  const timeline = element.querySelector(".timeline");
  const stateList = element.querySelector(".state dl");
  const playButton = element.querySelector("[data-play]");

  let session = null;   // { id, detail, startUs, windows: Map<start, rows> }
  let current = null;   // the row shown
  let request = 0;      // the latest goTo wins

  async function windowOf(frame) {
    const start = Math.floor(frame / WINDOW) * WINDOW;
    if (!session.windows.has(start)) {
      const id = encodeURIComponent(session.id);
      session.windows.set(start, api.getJSON(
        `/api/sessions/${id}/labels?start=${start}&count=${WINDOW}`).then((w) => w.rows));
    }
    return session.windows.get(start);
  }

  // The row of `frame`, or of the nearest labelled frame in direction `dir` from it.
  async function rowNear(frame, dir = 1) {
    const { first, last } = session.detail.frames;
    for (let f = Math.min(Math.max(frame, first), last); f >= first && f <= last;) {
      const rows = await windowOf(f);
      const found = dir > 0 ? rows.find((r) => r.frame_index >= f)
        : [...rows].reverse().find((r) => r.frame_index <= f);
      if (found) return found;
      f = dir > 0 ? Math.floor(f / WINDOW) * WINDOW + WINDOW
        : Math.floor(f / WINDOW) * WINDOW - 1;
    }
    return null;
  }

  function videoTime(row, next) {
    const start = row.pts_us - session.startUs;
    // the middle of the frame's display interval, so decoding rounding cannot pick a neighbour
    const end = next && next !== row && next.pts_us != null ? next.pts_us - session.startUs
      : start + 2000;
    return (start + end) / 2 / 1e6;
  }

  function seekVideo(time) {
    if (!session.videoReady || Math.abs(video.currentTime - time) < 1e-6) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      video.addEventListener("seeked", resolve, { once: true });
      video.currentTime = time;
    });
  }

  function showState(row) {
    const fmt = (v, d = 2) => (v === null || v === undefined ? "–"
      : Array.isArray(v) ? `[${v.map((x) => fmt(x, d)).join(", ")}]`
        : typeof v === "number" ? v.toFixed(d) : String(v));
    const fields = [
      ["frame", row.frame_index], ["t", `${fmt(row.t, 3)} s`], ["seq", row.seq ?? "–"],
      ["method", row.method], ["residual", `${fmt(row.residual_ms)} ms`],
      ["state", row.humanoid_state], ["grounded", fmt(row.grounded)],
      ["speed", `${fmt(row.speed)} studs/s`], ["moving", row.move_dir_cam],
      ["keys", (row.keys || []).join(" ") || "none"], ["root px", fmt(row.root_px)],
      ["root px error", fmt(row.root_px_error, 3)], ["camera", fmt(row.cam_position)],
      ["camera velocity", fmt(row.cam_velocity)], ["caption", row.caption ?? "–"],
    ];
    stateList.replaceChildren(...fields.flatMap(([name, value]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = name;
      dd.textContent = String(value);
      dd.dataset.field = name;
      return [dt, dd];
    }));
  }

  // data-state: "playing", "seeking", or "still" once the frame asked for is on screen
  async function goTo(frame, dir = 1) {
    const mine = ++request;
    element.dataset.state = "seeking";
    try {
      const row = await rowNear(frame, dir);
      if (!row || mine !== request) return;
      const rows = await windowOf(row.frame_index);
      const next = rows[rows.indexOf(row) + 1] || await rowNear(row.frame_index + 1, 1);
      if (row.pts_us != null) await seekVideo(videoTime(row, next));
      if (mine !== request) return;
      show(row);
      history.replaceState(null, "",
        `#player/${encodeURIComponent(session.id)}?frame=${row.frame_index}`);
    } catch (error) {
      session.windows.clear();  // a failed window is asked again next time
      const box = document.getElementById("error");
      box.textContent = error.message;
      box.hidden = false;
    } finally {
      if (mine === request) element.dataset.state = "still";
    }
  }

  function show(row) {
    current = row;
    drawFrame(canvas, row);
    showState(row);
    slider.value = row.frame_index;
    position.textContent = `frame ${row.frame_index} · ${row.t.toFixed(3)} s`;
    element.dataset.frame = row.frame_index;
  }

  function buildTimeline(events) {
    const { t_first: t0, t_last: t1 } = session.detail.frames;
    const span = Math.max(t1 - t0, 1e-9);
    const lanes = [...new Set(events.map(lane))];
    timeline.style.height = `${Math.max(lanes.length, 1) * LANE_PX + 4}px`;
    timeline.replaceChildren(...events.map((event) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = event.kind;
      button.dataset.kind = event.kind;
      button.dataset.frame = event.start_frame;
      button.textContent = describe(event);
      button.title = `${describe(event)}: frames ${event.start_frame}–${event.end_frame}`;
      button.style.left = `${(100 * (event.start_t - t0)) / span}%`;
      button.style.width = `${Math.max((100 * (event.end_t - event.start_t)) / span, 0.5)}%`;
      button.style.top = `${lanes.indexOf(lane(event)) * LANE_PX + 2}px`;
      button.addEventListener("click", () => goTo(event.start_frame));
      return button;
    }));
  }

  async function load(id) {
    const name = encodeURIComponent(id);
    const detail = await api.getJSON(`/api/sessions/${name}`);
    if (!detail.frames || !detail.frames.rows) {
      throw new Error(`session ${id} has no labels yet: run stpe labels on it first`);
    }
    session = { id, detail, startUs: 0, windows: new Map(), videoReady: false };
    current = null;
    title.textContent = `Player: ${id}`;
    slider.min = detail.frames.first;
    slider.max = detail.frames.last;
    loadVideo(session, name);  // in the background: a first open makes the browser's copy
    buildTimeline((await api.getJSON(`/api/sessions/${name}/events`)).events);
  }

  // data-video: "none", "preparing", "ready" (the frame shown is on screen) or "failed"
  async function loadVideo(mine, name) {
    video.pause();
    video.removeAttribute("src");
    video.load();
    if (!mine.detail.video) {
      element.dataset.video = "none";
      return;
    }
    element.dataset.video = "preparing";
    videoNote.textContent = "preparing the video…";
    try {
      const info = await api.getJSON(`/api/sessions/${name}/video`);
      if (session !== mine) return;
      mine.startUs = info.start_us;
      await new Promise((resolve, reject) => {
        video.addEventListener("loadeddata", resolve, { once: true });
        video.addEventListener("error", () => reject(new Error(
          `the browser cannot play this video (${video.error && video.error.message})`)),
        { once: true });
        video.src = info.url;
      });
      if (session !== mine) return;
      mine.videoReady = true;
      if (current) await goTo(current.frame_index);
      videoNote.textContent = "";
      element.dataset.video = "ready";
    } catch (error) {
      if (session !== mine) return;
      videoNote.textContent = `no picture: ${error.message}`;
      element.dataset.video = "failed";
    }
  }

  // The last row of `rows` shown at or before video time `us` (stored pts, microseconds).
  function shownAt(rows, us) {
    let row = null;
    for (const r of rows) if (r.pts_us != null && r.pts_us <= us + 500) row = r;
    return row;
  }

  // While playing, draw the labels of the frame on screen.
  function followPlayback() {
    if (video.paused || !session) return;
    video.requestVideoFrameCallback(async (now, meta) => {
      const us = meta.mediaTime * 1e6 + session.startUs;
      const rows = await windowOf(current ? current.frame_index : session.detail.frames.first);
      let row = shownAt(rows, us);
      if (row && row === rows[rows.length - 1] && row.frame_index < session.detail.frames.last) {
        row = shownAt(await windowOf(row.frame_index + 1), us) || row;  // the next window
      }
      if (row && playing) show(row);
      followPlayback();
    });
  }

  let playing = false;
  element.querySelectorAll("[data-step]").forEach((button) => {
    button.addEventListener("click", () => {
      if (!current) return;
      const dir = Number(button.dataset.step);
      playing = false;  // the step, not the pause, decides the frame shown
      video.pause();
      goTo(current.frame_index + dir, dir);
    });
  });
  playButton.addEventListener("click", () => {
    if (video.paused) video.play();
    else video.pause();
  });
  video.addEventListener("play", () => {
    playing = true;
    element.dataset.state = "playing";
    playButton.textContent = "pause";
    followPlayback();
  });
  video.addEventListener("pause", () => {
    playButton.textContent = "play";
    // settle on the frame last drawn: seek to its middle so picture and labels agree
    if (playing && current) goTo(current.frame_index);
    playing = false;
  });
  slider.addEventListener("change", () => goTo(Number(slider.value)));
  document.addEventListener("keydown", (event) => {
    if (element.hidden || !current || event.target.tagName === "INPUT") return;
    if (event.key === "ArrowRight") goTo(current.frame_index + 1, 1);
    if (event.key === "ArrowLeft") goTo(current.frame_index - 1, -1);
  });

  return {
    async show(route) {
      if (!route.id) {
        if (!session) title.textContent = "Player: pick a session in the Sessions tab";
        return;
      }
      if (!session || session.id !== route.id) await load(route.id);
      const wanted = route.params.has("frame") ? Number(route.params.get("frame"))
        : current && current.frame_index !== undefined && session.id === route.id
          ? current.frame_index : session.detail.frames.first;
      await goTo(Number.isFinite(wanted) ? wanted : session.detail.frames.first);
    },
  };
}
