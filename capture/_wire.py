"""Wire protocol v1: the JSON the plugin and the receiver exchange.

Every request and response is a pydantic model validated at the boundary. Units: studs for
lengths, seconds for client times (the plugin's ``os.clock()``), integer nanoseconds for host
times (``time.perf_counter_ns()``), degrees for the field of view, pixels of the Roblox
viewport for screen positions. ``CFrame12`` is exactly ``CFrame:GetComponents()``:
x, y, z, R00, R01, R02, R10, R11, R12, R20, R21, R22.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROTOCOL_VERSION = 1
SAMPLE_SCHEMA = "stpe.sample/1"
HELLO_SCHEMA = "stpe.hello/1"

MAX_SAMPLES_PER_BATCH = 1024
MAX_ENTITIES = 256
MAX_PROBES = 64
MAX_NAME = 200

Name = Annotated[str, Field(max_length=MAX_NAME)]
# Every number has a documented range (docs/protocol.md, "Ranges"), so whatever is accepted
# can be stored, read back as float64/int64 and aligned.
MAX_REAL = 1e12  # any length, speed, pixel or other measure: |x| <= 1e12
MAX_CLOCK_S = 1e12  # os.clock() seconds
MAX_WALL_MS = 253_402_300_800_000  # Unix ms of 10000-01-01T00:00:00Z (exclusive)
MAX_SEQ = 2**53  # exclusive: an integer a Luau number holds exactly
MAX_PLACE_ID = 2**53  # exclusive

Real = Annotated[float, Field(ge=-MAX_REAL, le=MAX_REAL)]
Vec2 = Annotated[tuple[Real, Real], Field(description="2-vector")]
Vec3 = Annotated[tuple[Real, Real, Real], Field(description="3-vector (studs or studs/s)")]
Vec4 = Annotated[tuple[Real, Real, Real, Real], Field(description="4-vector")]
CFrame12 = Annotated[
    tuple[Real, Real, Real, Real, Real, Real, Real, Real, Real, Real, Real, Real],
    Field(description="CFrame:GetComponents(): x, y, z, R00..R22 (studs, unitless)"),
]
Projection = Annotated[
    tuple[Real, Real, Real, Real],
    Field(description="Camera:WorldToViewportPoint: u, v (viewport px), depth (studs), "
          "on_screen (1 or 0)"),
]
SeqNumber = Annotated[int, Field(ge=0, lt=MAX_SEQ)]
HostNs = Annotated[int, Field(ge=0, lt=2**63)]
ClientSeconds = Annotated[float, Field(ge=0, le=MAX_CLOCK_S)]
WallMs = Annotated[int, Field(ge=0, lt=MAX_WALL_MS)]


class WireModel(BaseModel):
    """Base of every wire model: unknown fields refused, no NaN or infinity, immutable."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


# --- one sample --------------------------------------------------------------------------


class Humanoid(WireModel):
    state: Name = Field(description="Enum.HumanoidStateType name, e.g. Running, Jumping, Freefall")
    move_direction: Vec3 = Field(description="Humanoid.MoveDirection, world space, unit or zero")
    walk_speed: float = Field(ge=0, le=MAX_REAL, description="Humanoid.WalkSpeed, studs/s")
    jump: bool = Field(description="Humanoid.Jump")
    floor_material: Name = Field(description="Humanoid.FloorMaterial name; Air when airborne")
    health: Real = Field(description="Humanoid.Health")


class RootPart(WireModel):
    cframe: CFrame12
    velocity: Vec3 = Field(description="AssemblyLinearVelocity, studs/s")
    angular_velocity: Vec3 = Field(description="AssemblyAngularVelocity, rad/s")
    size: Vec3 = Field(description="Part size, studs")


class BoundingBox(WireModel):
    cframe: CFrame12 = Field(description="Model:GetBoundingBox() orientation and centre")
    size: Vec3 = Field(description="Model:GetBoundingBox() size, studs")


class Ground(WireModel):
    hit: bool = Field(description="whether the downward ray hit anything")
    point: Vec3 | None = None
    normal: Vec3 | None = None
    material: Name | None = None
    instance: Name | None = Field(None, description="full name of the hit instance")
    distance: float | None = Field(None, ge=0, le=MAX_REAL,
                                   description="root part to hit point, studs")


class Character(WireModel):
    humanoid: Humanoid
    root: RootPart
    bbox: BoundingBox
    ground: Ground


class Camera(WireModel):
    cframe: CFrame12
    fov_y: float = Field(gt=0, lt=180, description="Camera.FieldOfView, vertical, degrees")
    viewport: Vec2 = Field(description="Camera.ViewportSize, viewport px (UI units)")
    focus: Vec3 = Field(description="Camera.Focus position, studs")
    gui_inset: Vec4 = Field(description="GuiService:GetGuiInset(): left, top, right, bottom px")
    type: Name = Field(description="Enum.CameraType name")
    subject: Name | None = Field(None, description="CameraSubject full name")
    root_projection: Projection | None = Field(
        None, description="WorldToViewportPoint of the root part position")


class Gamepad(WireModel):
    thumbstick1: Vec2 = (0.0, 0.0)
    thumbstick2: Vec2 = (0.0, 0.0)
    trigger_left: float = Field(0.0, ge=0, le=1)
    trigger_right: float = Field(0.0, ge=0, le=1)
    buttons: list[Name] = Field(default_factory=list, max_length=64)


class Inputs(WireModel):
    keys: list[Name] = Field(default_factory=list, max_length=64,
                             description="Enum.KeyCode names held down")
    mouse_buttons: list[Name] = Field(default_factory=list, max_length=8)
    mouse_position: Vec2 = Field((0.0, 0.0), description="viewport px")
    mouse_delta: Vec2 = Field((0.0, 0.0), description="px since the previous frame")
    gamepad: Gamepad | None = None


class Entity(WireModel):
    id: Name = Field(description="stable id: the instance's debug id or full name")
    name: Name
    tag: Name = "STPE_Track"
    cframe: CFrame12
    size: Vec3
    velocity: Vec3
    projection: Projection


class Sample(WireModel):
    """The state behind one rendered frame, sampled after the camera updated."""

    seq: SeqNumber = Field(description="render-step counter, +1 per rendered frame")
    t: ClientSeconds = Field(description="os.clock() at the render step, client seconds")
    dt: float = Field(ge=0, lt=10, description="render step delta time, seconds")
    wall_ms: WallMs | None = Field(None, description="DateTime.now().UnixTimestampMillis")
    character: Character | None = None
    camera: Camera
    inputs: Inputs = Field(default_factory=Inputs)
    entities: list[Entity] = Field(default_factory=list, max_length=MAX_ENTITIES)


# --- requests and responses --------------------------------------------------------------


class Probe(WireModel):
    """A completed NTP-style exchange: client send, host receive, host send, client receive."""

    t0: ClientSeconds = Field(description="client seconds at send")
    t1_ns: HostNs = Field(description="host_mono at receive")
    t2_ns: HostNs = Field(description="host_mono at send")
    t3: ClientSeconds = Field(description="client seconds at receive")

    @model_validator(mode="after")
    def _ordered(self) -> Probe:
        if self.t3 < self.t0 or self.t2_ns < self.t1_ns:
            raise ValueError("probe times out of order: need t0 <= t3 and t1_ns <= t2_ns")
        return self


class SeqRange(WireModel):
    first: SeqNumber
    last: SeqNumber

    @model_validator(mode="after")
    def _ordered(self) -> SeqRange:
        if self.last < self.first:
            raise ValueError("range last < first")
        return self


class Outage(WireModel):
    """Sent with the first hello after a plugin lost the receiver it was sending to."""

    since_client: ClientSeconds = Field(description="os.clock() at the first failed request")
    since_wall_ms: WallMs = Field(description="wall clock at the first failed request")
    session: Name = Field(description="the session it was sending to")
    stored_through: int = Field(ge=-1, lt=MAX_SEQ,
                                description="that session's stored_through, last answered")


class Hello(WireModel):
    schema_: Literal["stpe.hello/1"] = Field(alias="schema")
    plugin_version: Name
    place_id: int = Field(0, ge=0, lt=MAX_PLACE_ID, description="game.PlaceId")
    place_name: Name = ""
    datamodel: Literal["client", "server", "edit", "simulated"]
    viewport: Vec2
    client_clock: ClientSeconds = Field(description="os.clock() when sent")
    wall_ms: WallMs = Field(description="DateTime.now().UnixTimestampMillis when sent")
    session: Name | None = Field(None, description="session to join; omit to join the current")
    play: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                             description="id of this Play, picked once per Play; a new id "
                                         "starts a new Play in the session")
    outage: Outage | None = Field(None, description="the receiver was lost; since when")


class HelloReply(WireModel):
    session: str
    receiver_version: str
    protocol: int = PROTOCOL_VERSION
    stored_through: int = Field(description="highest contiguous seq already stored, -1 if none")
    next_seq: int = Field(0, ge=0, description="first seq of a new Play: 1 + highest seq "
                                               "stored or declared dropped, 0 if none")


class SampleBatch(WireModel):
    schema_: Literal["stpe.sample/1"] = Field(alias="schema")
    session: Name
    seq_first: SeqNumber
    samples: list[Sample] = Field(max_length=MAX_SAMPLES_PER_BATCH)
    sent_client: ClientSeconds = Field(description="os.clock() when the batch was sent")
    sent_wall_ms: WallMs
    probes: list[Probe] = Field(default_factory=list, max_length=MAX_PROBES)
    dropped: list[SeqRange] = Field(default_factory=list, max_length=MAX_PROBES,
                                    description="seqs the plugin had to discard: already "
                                    "sampled (at most the batch's last seq) and not in it")

    @model_validator(mode="after")
    def _seqs_increase(self) -> SampleBatch:
        seqs = [s.seq for s in self.samples]
        if seqs and seqs[0] != self.seq_first:
            raise ValueError(f"seq_first {self.seq_first} != first sample seq {seqs[0]}")
        if any(b <= a for a, b in itertools.pairwise(seqs)):
            raise ValueError("sample seqs must strictly increase within a batch")
        taken = seqs[-1] if seqs else self.seq_first - 1  # the highest seq already sampled
        for dropped in self.dropped:
            inside = bisect.bisect_left(seqs, dropped.first) < bisect.bisect_right(
                seqs, dropped.last)
            if dropped.last > taken or inside:
                raise ValueError(f"dropped range {dropped.first}..{dropped.last} names seqs "
                                 f"not taken yet (above {taken}) or sent in this batch: only "
                                 "seqs already sampled and not in the batch can be dropped")
        return self


class BatchReply(WireModel):
    stored_through: int = Field(description="highest contiguous seq stored, -1 if none")
    accepted: int
    duplicates: int


class SyncRequest(WireModel):
    session: Name | None = None
    t0: ClientSeconds
    id: SeqNumber | None = Field(None, description="the probe's id, echoed in the reply")


class SyncReply(WireModel):
    t0: float
    t1_ns: int
    t2_ns: int
    id: int | None = Field(None, description="the request's id, when it had one")


class Bye(WireModel):
    session: Name
    reason: Name = "stopped"
    last_seq: int = Field(-1, ge=-1, lt=MAX_SEQ)


class ByeReply(WireModel):
    session: str
    stored_through: int = Field(description="highest contiguous seq stored, -1 if none")


class Health(WireModel):
    receiver_version: str
    protocol: int = PROTOCOL_VERSION
    recording: bool
    session: str | None


class ErrorBody(WireModel):
    code: str
    message: str
    path: str | None = None


class ErrorReply(WireModel):
    error: ErrorBody
