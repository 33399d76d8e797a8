"""Runs the plugin, unchanged, in real Luau VMs inside a fake Roblox world.

`PlaySolo` holds the VMs of Studio's Play Solo: the edit copy (toolbar, and the Hub that
posts to the receiver), and for each Play a server copy and a client copy (which samples
every rendered frame). PluginConnection messages cross between the VMs through Python,
`HttpService:RequestAsync` performs real HTTP on loopback, and one test clock drives
os.clock, DateTime and every task.wait in every copy.
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
    """The Python side shared by every copy: clock, settings, HTTP and the message queues."""

    port: int = 1
    t: float = 100.0
    http_enabled: bool = True
    latency: float = 0.005  # seconds a RequestAsync yields before it returns
    hang: bool = False  # RequestAsync never answers until Studio's time limit
    http_time_limit: float = 30.0
    flaky_settings: bool = False  # GetSetting returns nil on every other read
    settings: dict[str, Any] = field(default_factory=dict)
    logs: list[tuple[str, str, str]] = field(default_factory=list)
    requests: list[tuple[float, str, int]] = field(default_factory=list)  # (t, path, status)
    messages: list[tuple[str, str, Any]] = field(default_factory=list)  # (from role, id, msg)
    to_client: list[tuple[str, str]] = field(default_factory=list)
    gzipped: int = 0  # request bodies sent with Content-Encoding: gzip
    setting_reads: int = 0
    message_bytes: int = 0  # JSON size of every PluginConnection message sent
    client_edit: str = "connected"  # the client's Edit connection: connected | none | absent
    remote_budget: float = 50_000.0  # bytes/s a player's remotes get (RemoteEvent in World.luau)
    remote_latency: float = 0.05  # seconds a fired remote event spends in flight
    remote_free_at: float = 0.0  # when the client's link has sent everything queued so far
    remote_queue: list[tuple[float, str, str, Any]] = field(default_factory=list)
    remote_fired: list[tuple[float, int]] = field(default_factory=list)  # (t, bytes) per fire
    remote_payloads: list[bytes] = field(default_factory=list)  # every buffer fired, in order
    remote_lost: int = 0  # fired events that arrived after their RemoteEvent was gone
    to_client_remote: list[tuple[str, Any]] = field(default_factory=list)
    unreplicated: list[str] = field(default_factory=list)

    def remote_fire(self, name: str, kind: str, payload: Any) -> None:
        """FireServer: the payload waits for the link (bytes / budget) then is in flight."""
        size = len(payload) if kind == "buffer" else len(json.dumps(payload))
        self.remote_fired.append((self.t, size))
        if kind == "buffer":
            self.remote_payloads.append(payload)
        self.remote_free_at = max(self.remote_free_at, self.t) + size / self.remote_budget
        self.remote_queue.append((self.remote_free_at + self.remote_latency, name, kind, payload))

    def get_setting(self, key: str) -> Any:
        self.setting_reads += 1
        if self.flaky_settings and self.setting_reads % 2 == 0:
            return None
        return self.settings.get(key)

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

        def send(target: Any, message: Any) -> None:
            payload = to_python(message)
            host.message_bytes += len(json.dumps(payload, separators=(",", ":")))
            host.messages.append((role, str(target), payload))

        callbacks = {
            "clock": lambda: host.t,
            "wall_ms": lambda: WALL_BASE_MS + round(host.t * 1000),
            "http": request,
            "latency": lambda: host.latency,
            "hang": lambda: host.hang,
            "http_time_limit": lambda: host.http_time_limit,
            "json_decode": lambda text: to_lua(lua, json.loads(str(text))),
            "send": send,
            "replicate": lambda name, cls: host.to_client.append((str(name), str(cls))),
            "unreplicate": lambda name: host.unreplicated.append(str(name)),
            "client_edit": lambda: host.client_edit,
            "remote_fire": lambda name, kind, payload: host.remote_fire(
                str(name), str(kind),
                payload.as_bytes() if str(kind) == "buffer" else to_python(payload)),
            "remote_to_client": lambda name, payload: host.to_client_remote.append(
                (str(name), to_python(payload))),
            "get_setting": lambda key: to_lua(lua, host.get_setting(str(key))),
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


def fire(signal: Any, *args: Any) -> None:
    """Fires a fake RBXScriptSignal from the test (a click, a focus lost)."""
    signal.get("Fire")(signal, *args)


class PlaySolo:
    """The edit copy of the plugin and, per Play, a server and a client copy connected to it
    by PluginConnections, as Studio runs them. `STPE_armed` in `settings` presses Record in
    the edit copy before the first Play; the other keys are stored plugin settings."""

    def __init__(self, port: int, settings: dict[str, Any] | None = None,
                 src: Path | None = None, *, host: Host | None = None) -> None:
        settings = dict(settings or {})
        armed = settings.pop("STPE_armed", False)
        self.tree = _tree(plugin_tree(src or luau_source_dir()))
        self.host = host or Host(port=port, settings={"STPE_port": port, **settings})
        self.edit = Copy(self.host, "edit", self.tree)
        self.edit.run()
        self.plays = 0
        self.ends: dict[str, Copy] = {}  # connection id -> the Play copy at its far end
        self.replicated: list[str] = []  # names the server copy put in ReplicatedStorage
        self.delivered: list[Any] = []  # every message the edit copy received
        if armed:
            self.record()
        self.start_play()

    def start_play(self) -> None:
        """Studio starts a Play: new server and client copies, each connected to edit."""
        self.plays += 1
        self.server = Copy(self.host, "server", self.tree)
        self.client = Copy(self.host, "client", self.tree)
        self.host.remote_queue.clear()
        for copy in (self.server, self.client):
            copy.run()
            if copy is self.client and self.host.client_edit != "connected":
                continue
            cid = f"{copy.role}-{self.plays}"
            self.ends[cid] = copy
            copy.world.get("openConnection")(cid)
            self.edit.world.get("openConnection")(cid)
        self.pump()

    def stop_play(self) -> None:
        """Studio stops the Play: Unloading fires in both Play copies, their DataModels
        close, and what they sent from then on never arrives (the connection drops)."""
        self.pump()
        sent = len(self.host.messages)
        for copy in (self.client, self.server):
            copy.world.get("unload")()
        del self.host.messages[sent:]
        for cid, copy in self.ends.items():
            if copy in (self.client, self.server):
                self.edit.world.get("dropConnection")(cid)
                copy.world.get("dropConnection")(cid)

    def record(self) -> None:
        """Presses Record in the edit copy's toolbar (arms, or disarms when armed)."""
        fire(self.edit.world.get("buttons").get("Record").get("Click"))

    disarm = record

    @property
    def status_text(self) -> str:
        """The status line the edit copy's widget shows."""
        widget = self.edit.world.get("widgets").get("STPE")
        return to_python(widget.get("Frame").get("Status").get("Text"))

    @property
    def sampled_frames(self) -> int:
        """How many rendered frames ran the sampler's render step in this Play."""
        return self.client.world.get("stepCounts").get("STPE_Sampler") or 0

    @property
    def sampling(self) -> bool:
        """Whether the client's render step is bound (the sampler is recording)."""
        return self.client.world.get("renderSteps").get("STPE_Sampler") is not None

    def pump(self) -> None:
        """Replicates new instances to the client and delivers PluginConnection messages."""
        host = self.host
        while host.to_client:
            name, cls = host.to_client.pop(0)
            self.replicated.append(name)
            self.client.world.get("replicate")(name, cls)
        while host.unreplicated:
            self.client.world.get("unreplicate")(host.unreplicated.pop(0))
        while host.to_client_remote:
            name, payload = host.to_client_remote.pop(0)
            self.client.world.get("remoteDeliver")(name, "value", to_lua(self.client.lua, payload))
        while host.remote_queue and host.remote_queue[0][0] <= host.t:
            _, name, kind, payload = host.remote_queue.pop(0)
            value = (self.server.lua.create_string(payload) if kind == "buffer"
                     else to_lua(self.server.lua, payload))
            if not self.server.world.get("remoteDeliver")(name, kind, value):
                host.remote_lost += 1
        while self.host.messages:
            sender, cid, payload = self.host.messages.pop(0)
            target = self.ends[cid] if sender == "edit" else self.edit
            if target is self.edit and isinstance(payload, dict):
                self.delivered.append(payload)
            target.world.get("deliverMessage")(cid, to_lua(target.lua, payload))

    def _run(self) -> None:
        self.pump()
        self.server.world.get("runThreads")()
        self.edit.world.get("runThreads")()
        self.pump()

    def frame(self, dt: float = 1 / 60) -> None:
        """One rendered frame: the clock moves, the client renders, the others run."""
        self.host.t += dt
        self.client.world.get("render")(dt)
        self._run()

    def idle(self, seconds: float, dt: float = 0.02) -> None:
        """Time passes without rendering: the copies' threads run."""
        for _ in range(round(seconds / dt)):
            self.host.t += dt
            self.client.world.get("runThreads")()
            self._run()

    def logs(self, level: str | None = None) -> list[str]:
        return [m for _, lv, m in self.host.logs if level is None or lv == level]
