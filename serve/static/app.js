// Tabs and routing: #sessions, #player/<id>[?frame=N], #search, #jobs. Each tab's module
// exports mount(element, api); it is mounted once, on first visit, and told of new routes
// through its optional show(route) function.
import { api } from "./api.js";

const modules = {
  sessions: "./sessions.js",
  player: "./player.js",
  search: "./search.js",
  jobs: "./jobs.js",
};
const mounted = new Map();

export function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

export function parseRoute(hash) {
  const text = (hash || "").replace(/^#/, "") || "sessions";
  const [path, query = ""] = text.split("?");
  const [tab, ...rest] = path.split("/");
  return { tab, id: rest.length ? decodeURIComponent(rest.join("/")) : null,
           params: new URLSearchParams(query) };
}

async function route() {
  const current = parseRoute(location.hash);
  const tab = current.tab in modules ? current.tab : "sessions";
  for (const name of Object.keys(modules)) {
    document.getElementById(name).hidden = name !== tab;
    const link = document.querySelector(`nav a[data-tab="${name}"]`);
    if (link) link.classList.toggle("active", name === tab);
  }
  showError("");
  try {
    let view = mounted.get(tab);
    if (!view) {
      const module = await import(modules[tab]);
      view = (await module.mount(document.getElementById(tab), api)) || {};
      mounted.set(tab, view);
    }
    if (view.show) await view.show(current);
  } catch (error) {
    showError(error.message);
  }
}

window.addEventListener("hashchange", route);
route();
