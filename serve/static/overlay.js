// Draws one frame's labels on a canvas the size of the captured frame (labels are in
// captured pixels): object boxes, the image velocity of the character and its split into
// camera- and character-caused motion, the keys held, the caption, and the root point.
// The root point is a solid magenta disc drawn last, so it can be found on the canvas.

export const COLORS = {
  root: "#ff00ff",
  character: "#ffd400",
  entity: "#00c8ff",
  velocity: "#00e676",
  camera: "#ff8c00",
  object: "#4f7cff",
};
const ARROW_SECONDS = 0.25;  // a velocity arrow is the motion over this long

function arrow(ctx, x, y, dx, dy, color) {
  if (dx === null || dy === null || !Number.isFinite(dx) || !Number.isFinite(dy)) return;
  const length = Math.hypot(dx, dy);
  if (length < 0.5) return;
  const ex = x + dx, ey = y + dy;
  const head = Math.min(6, length / 2);
  const angle = Math.atan2(dy, dx);
  ctx.strokeStyle = ctx.fillStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(ex, ey);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(ex, ey);
  ctx.lineTo(ex - head * Math.cos(angle - 0.4), ey - head * Math.sin(angle - 0.4));
  ctx.lineTo(ex - head * Math.cos(angle + 0.4), ey - head * Math.sin(angle + 0.4));
  ctx.closePath();
  ctx.fill();
}

function label(ctx, text, x, y, color) {
  ctx.font = "11px system-ui, sans-serif";
  const width = ctx.measureText(text).width + 6;
  ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
  ctx.fillRect(x, y - 13, width, 14);
  ctx.fillStyle = color;
  ctx.fillText(text, x + 3, y - 2);
}

function banner(ctx, text, y, width) {
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
  ctx.fillRect(0, y - 14, width, 18);
  ctx.fillStyle = "#ffffff";
  ctx.fillText(text, 4, y, width - 8);
}

export function drawFrame(canvas, row) {
  const width = row.frame_width || canvas.width || 1;
  const height = row.frame_height || canvas.height || 1;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const objects = row.objects || [];
  for (const object of objects) {
    const box = object.box_xyxy;
    if (!object.on_screen || !box || box.some((v) => v === null)) continue;
    const color = object.kind === "character" ? COLORS.character : COLORS.entity;
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
    label(ctx, object.name, box[0], Math.max(box[1], 14), color);
  }
  const root = row.root_px;
  if (root && root[0] !== null && root[1] !== null) {
    const character = objects.find((o) => o.kind === "character");
    if (character) {
      const scaled = (v) => (v ? [v[0] * ARROW_SECONDS, v[1] * ARROW_SECONDS] : [null, null]);
      arrow(ctx, root[0], root[1], ...scaled(character.camera_caused_motion), COLORS.camera);
      arrow(ctx, root[0], root[1], ...scaled(character.object_caused_motion), COLORS.object);
      arrow(ctx, root[0], root[1], ...scaled(character.image_motion), COLORS.velocity);
    }
    ctx.fillStyle = COLORS.root;
    ctx.beginPath();
    ctx.arc(root[0], root[1], 4, 0, 2 * Math.PI);
    ctx.fill();
  }
  const keys = (row.keys || []).join(" ");
  if (keys) banner(ctx, `keys: ${keys}`, 14, width);
  if (row.caption) banner(ctx, row.caption, height - 4, width);
}
