// The playground API (engine/service/http/playground.py). The bearer token of the server view lives in this
// module's memory only: never in storage, gone with the tab.
let token = null;

export function setToken(value) { token = value || null; }

export async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token && path.startsWith("/api/playground/server")) headers["Authorization"] = `Bearer ${token}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin" });
  const type = response.headers.get("content-type") || "";
  const data = type.startsWith("application/json") ? await response.json() : await response.text();
  return { status: response.status, ok: response.ok, data };
}
