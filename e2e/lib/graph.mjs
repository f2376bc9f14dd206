// Graph calls with a client-credentials token from connection.json, trusting the server's CA.
import https from "node:https";
import { readFileSync } from "node:fs";

export function graphClient(conn) {
  const ca = readFileSync(conn.caCertificate);
  function request(method, url, { body, form, token } = {}) {
    const payload = form ? new URLSearchParams(form).toString() : body ? JSON.stringify(body) : null;
    const headers = { accept: "application/json" };
    if (payload) headers["content-type"] = form ? "application/x-www-form-urlencoded" : "application/json";
    if (token) headers.authorization = `Bearer ${token}`;
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method, ca, headers }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null });
        });
      });
      req.on("error", reject);
      if (payload) req.write(payload);
      req.end();
    });
  }
  let token = null;
  async function call(method, path, body) {
    if (!token) {
      const r = await request("POST", `${conn.authorityUrl}/${conn.tenantId}/oauth2/v2.0/token`, {
        form: { grant_type: "client_credentials", client_id: conn.clientId, client_secret: conn.clientSecret, scope: "https://graph.microsoft.com/.default" },
      });
      if (r.status !== 200) throw new Error(`token: ${r.status} ${JSON.stringify(r.body)}`);
      token = r.body.access_token;
    }
    return request(method, `${conn.graphUrl}/v1.0${path}`, { body, token });
  }
  return {
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body),
    patch: (path, body) => call("PATCH", path, body),
    /** A form POST to `{authority}/{tenant}/oauth2/v2.0/{endpoint}` (`token`, `devicecode`), no token. */
    oauth: (endpoint, form) => request("POST", `${conn.authorityUrl}/${conn.tenantId}/oauth2/v2.0/${endpoint}`, { form }),
    /** A Graph GET with another token (a signed-in user's). */
    getAs: (accessToken, path) => request("GET", `${conn.graphUrl}/v1.0${path}`, { token: accessToken }),
  };
}
