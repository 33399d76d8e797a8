// JSON calls to the server. The token travels in the HttpOnly cookie set when the printed
// URL was opened; a server error is thrown with the server's own message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function getJSON(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = body && body.error ? body.error : { code: "http_" + response.status,
      message: `${path}: HTTP ${response.status}` };
    throw new ApiError(response.status, error.code, error.message);
  }
  return body;
}

export async function postJSON(path, data, options = {}) {
  return getJSON(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(data),
    ...options,
  });
}

export const api = { getJSON, postJSON };
