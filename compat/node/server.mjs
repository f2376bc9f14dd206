// Start and stop the real guestlist binary (used by run-tests.mjs, not by the tests).
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SERVER_ENV = new Set(["GUESTLIST_DATA_DIR", "GUESTLIST_LISTEN", "GUESTLIST_DATABASE_URL", "GUESTLIST_IN_MEMORY", "GUESTLIST_PLAIN_HTTP", "GUESTLIST_TLS_CERT", "GUESTLIST_TLS_KEY", "GUESTLIST_PUBLIC_URL", "GUESTLIST_CONNECTION", "GUESTLIST_CLIENT_SECRET"]);
const START_TIMEOUT_MS = Number(process.env.GUESTLIST_START_TIMEOUT ?? 60) * 1000;

export function guestlistBin() {
  return process.env.GUESTLIST_BIN || join(REPO_ROOT, "target", "debug", "guestlist");
}

function psql(adminUrl, sql) {
  const r = spawnSync("psql", [adminUrl, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql], { encoding: "utf8" });
  if (r.error) throw new Error(`psql not runnable: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`psql ${sql} failed: ${r.stderr}`);
}

export function createDatabase(adminUrl) {
  const name = `guestlist_compat_node_${randomBytes(6).toString("hex")}`;
  psql(adminUrl, `CREATE DATABASE "${name}"`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return { name, url: u.toString(), drop: () => { try { psql(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`); } catch { /* best effort */ } } };
}

export async function startServer({ engine, databaseUrl }) {
  const bin = guestlistBin();
  if (!existsSync(bin)) throw new Error(`guestlist binary not found at ${bin}: run \`cargo build -p guestlist\` or set GUESTLIST_BIN`);
  const dataDir = mkdtempSync(join(tmpdir(), `guestlist-compat-node-${engine}-`));
  const connFile = join(dataDir, "connection.json");
  if (existsSync(connFile)) unlinkSync(connFile);
  const logPath = `${dataDir}.log`;
  const args = ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0"];
  if (databaseUrl) args.push("--database-url", databaseUrl);
  // The server's own settings come from our flags only, not from the caller's environment.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SERVER_ENV.has(k)));
  const logFd = openSync(logPath, "w");
  const proc = spawn(bin, args, { stdio: ["ignore", logFd, logFd], env, cwd: tmpdir() });
  closeSync(logFd);
  let exited = null;
  const exit = new Promise((res) => proc.on("exit", (code, signal) => { exited = { code, signal }; res(exited); }));
  const log = () => { try { return readFileSync(logPath, "utf8").slice(-8000); } catch { return ""; } };

  const deadline = Date.now() + START_TIMEOUT_MS;
  let conn = null;
  while (!conn) {
    if (exited) throw new Error(`guestlist exited (${JSON.stringify(exited)}) before writing ${connFile}:\n${log()}`);
    if (Date.now() > deadline) { proc.kill("SIGKILL"); throw new Error(`no ${connFile} after ${START_TIMEOUT_MS} ms:\n${log()}`); }
    if (existsSync(connFile)) {
      try { conn = JSON.parse(readFileSync(connFile, "utf8")); if (!conn.graphUrl) conn = null; } catch { conn = null; }
    }
    if (!conn) await sleep(50);
  }

  return {
    engine, dataDir, connFile, conn, log,
    /** SIGTERM and wait; resolves to the exit code (null if killed by a signal). */
    async stop() {
      if (!exited) {
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 20000);
        await exit;
        clearTimeout(timer);
      }
      if (exited.code === 0) { rmSync(dataDir, { recursive: true, force: true }); rmSync(logPath, { force: true }); }
      return exited.code;
    },
  };
}
