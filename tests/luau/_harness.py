"""Runs the plugin, unchanged, in real Luau VMs inside a fake Roblox world.

`PlaySolo` holds two VMs like Studio's Play Solo: the client copy (samples every rendered
frame) and the server copy (posts to the receiver). Their RemoteEvent crosses between the
VMs through Python, `HttpService:RequestAsync` performs real HTTP on loopback, and one test
clock drives os.clock, DateTime and every task.wait in both copies.
"""

from __future__ import annotations

import gzip
import http.client
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline._rbxmx import Node, luau_source_dir, plugin_tree
from tests.luau._vm import load_pluau, to_lua, to_python

WORLD = Path(__file__).resolve().parent / "world"
WALL_BASE_MS = 1_700_000_000_000
HTTP_DISABLED = "Http requests are not enabled. Enable via game settings"


def _tree(node: Node) -> dict[str, Any]:
    return {"class": node.class_name, "name": node.name, "source": node.source,
            "children": [_tree(c) for c in node.children]}


@dataclass
class Host:
    """The Python side shared by both copies: clock, settings, HTTP and the event queues."""

    port: int = 1
    t: float = 100.0
    http_enabled: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    logs: list[tuple[str, str, str]] = field(default_factory=list)
    requests: list[tuple[float, str, int]] = field(default_factory=list)  # (t, path, status)
    to_server: list[tuple[str, Any]] = field(default_factory=list)
    to_client: list[tuple[str, str]] = field(default_factory=list)
    gzipped: int = 0  # request bodies sent with Content-Encoding: gzip

    def http(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.http_enabled:
            raise RuntimeError(HTTP_DISABLED)
        url = request["Url"]
        prefix = "http://127.0.0.1:"
        if not url.startswith(prefix):
            raise RuntimeError(f"the test world only reaches 127.0.0.1, not {url}")
        port, _, path = url[len(prefix):].partition("/")
        headers = dict(request.get("Headers") or {})
        body = request.get("Body")
        data = body.encode() if isinstance(body, str) else None
        compress = request.get("Compress")
        if data is not None and compress is not None and compress.get("Name") == "Gzip":
            data = gzip.compress(data, mtime=0)
            headers["Content-Encoding"] = "gzip"
            self.gzipped += 1
        conn = http.client.HTTPConnection("127.0.0.1", int(port),
                                          timeout=float(request.get("Timeout") or 5))
        try:
            conn.request(request.get("Method", "GET"), "/" + path, body=data, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
        except OSError as exc:
            self.requests.append((self.t, "/" + path, 0))
            raise RuntimeError(f"HttpError: ConnectFail ({exc})") from None
        finally:
            conn.close()
        self.requests.append((self.t, "/" + path, response.status))
        return {"Success": 200 <= response.status < 300, "StatusCode": response.status,
                "StatusMessage": response.reason, "Headers": {}, "Body": text}


class Copy:
    """One DataModel copy of the plugin in its own Luau VM."""

    def __init__(self, host: Host, role: str, tree: dict[str, Any]) -> None:
        pluau = load_pluau()
        self.host = host
        self.role = role
        self.lua = pluau.Lua()
        lua = self.lua

        def fn(callback: Any) -> Any:
            def wrapper(_lua: Any, args: tuple[Any, ...]) -> list[Any]:
                result = callback(*args)
                return [] if result is None else [result]
            return lua.create_function(wrapper)

        def log(level: Any, message: Any) -> None:
            host.logs.append((role, str(level), str(message)))

        def request(req: Any) -> Any:
            return to_lua(lua, host.http(to_python(req)))

        callbacks = {
            "clock": lambda: host.t,
            "wall_ms": lambda: WALL_BASE_MS + round(host.t * 1000),
            "http": request,
            "json_decode": lambda text: to_lua(lua, json.loads(str(text))),
            "fire": lambda name, payload: host.to_server.append((str(name), to_python(payload))),
            "replicate": lambda name, cls: host.to_client.append((str(name), str(cls))),
            "get_setting": lambda key: to_lua(lua, host.settings.get(str(key))),
            "set_setting": lambda key, value: host.settings.__setitem__(str(key),
                                                                          to_python(value)),
            "log": log,
        }
        hosttable = lua.create_table()
        for name, callback in callbacks.items():
            hosttable.set(name, fn(callback))
        types = self._chunk("Types.luau")()[0]
        self.globals, self.world = self._chunk("World.luau")()[0](types, hosttable, role)
        self.root, self.run = self._chunk("Loader.luau")()[0](self.world, self.globals,
                                                              to_lua(lua, tree))
        self.scene = (self._chunk("Scene.luau")()[0](self.world, self.globals)[0]
                      if role == "client" else None)

    def _chunk(self, name: str) -> Any:
        return self.lua.load_chunk((WORLD / name).read_text(), name="=" + name)

    def call(self, name: str, *args: Any) -> list[Any]:
        """Calls `scene.<name>(...)` in this VM."""
        return self.scene.get(name)(*[to_lua(self.lua, a) for a in args])

    def errors(self) -> list[str]:
        return [m for r, level, m in self.host.logs if r == self.role and level == "error"]


class PlaySolo:
    """A client and a server copy of the plugin, started like Studio's Play Solo."""

    def __init__(self, port: int, settings: dict[str, Any] | None = None,
                 src: Path | None = None) -> None:
        tree = _tree(plugin_tree(src or luau_source_dir()))
        self.host = Host(port=port, settings={"STPE_port": port, **(settings or {})})
        self.server = Copy(self.host, "server", tree)
        self.client = Copy(self.host, "client", tree)
        self.replicated: list[str] = []  # names the server copy put in ReplicatedStorage
        self.server.run()
        self.client.run()
        self.pump()

    @property
    def sampled_frames(self) -> int:
        """How many rendered frames ran the sampler's render step."""
        return self.client.world.get("stepCounts").get("STPE_Sampler") or 0

    @property
    def sampling(self) -> bool:
        """Whether the client's render step is bound (the sampler is recording)."""
        return self.client.world.get("renderSteps").get("STPE_Sampler") is not None

    def pump(self) -> None:
        """Replicates new instances to the client and delivers the client's events."""
        while self.host.to_client:
            name, cls = self.host.to_client.pop(0)
            self.replicated.append(name)
            self.client.world.get("replicate")(name, cls)
        while self.host.to_server:
            name, payload = self.host.to_server.pop(0)
            self.server.world.get("deliver")(name, to_lua(self.server.lua, payload))

    def frame(self, dt: float = 1 / 60) -> None:
        """One rendered frame: the clock moves, the client renders, the server runs."""
        self.host.t += dt
        self.client.world.get("render")(dt)
        self.pump()
        self.server.world.get("runThreads")()

    def idle(self, seconds: float, dt: float = 0.02) -> None:
        """Time passes without rendering (the client is stopped): the server flushes."""
        for _ in range(round(seconds / dt)):
            self.host.t += dt
            self.client.world.get("runThreads")()
            self.pump()
            self.server.world.get("runThreads")()

    def unload(self) -> None:
        for copy in (self.client, self.server):
            copy.world.get("plugin").get("Unloading").get("Fire")(
                copy.world.get("plugin").get("Unloading"))
        self.pump()

    def logs(self, level: str | None = None) -> list[str]:
        return [m for _, lv, m in self.host.logs if level is None or lv == level]
