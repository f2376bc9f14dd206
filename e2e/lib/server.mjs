// Starts the real guestlist binary with its mail going to the test's SMTP server, on SQLite or on
// a fresh PostgreSQL database, and offers the few direct database touches the tests need.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const START_TIMEOUT_MS = 60_000;

export function guestlistBin() {
  return process.env.GUESTLIST_BIN || join(REPO_ROOT, "target", "debug", "guestlist");
}

function run(command, args) {
  const r = spawnSync(command, args, { encoding: "utf8" });
  if (r.error) throw new Error(`${command} not runnable: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The engines to run on: SQLite always, PostgreSQL when GUESTLIST_TEST_DATABASE_URL is set. */
export function engines() {
  return process.env.GUESTLIST_TEST_DATABASE_URL ? ["sqlite", "postgres"] : ["sqlite"];
}

export async function startServer({ engine, smtpUrl }) {
  const bin = guestlistBin();
  if (!existsSync(bin)) throw new Error(`guestlist binary not found at ${bin}: run \`cargo build -p guestlist\` or set GUESTLIST_BIN`);
  const dataDir = mkdtempSync(join(tmpdir(), `guestlist-e2e-${engine}-`));
  let database = null;
  if (engine === "postgres") {
    const admin = process.env.GUESTLIST_TEST_DATABASE_URL;
    const name = `guestlist_e2e_${randomBytes(6).toString("hex")}`;
    run("psql", [admin, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", `CREATE DATABASE "${name}"`]);
    const url = new URL(admin);
    url.pathname = `/${name}`;
    database = { url: url.toString(), drop: () => run("psql", [admin, "-qAt", "-c", `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]) };
  }
  const args = ["serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--smtp-url", smtpUrl];
  if (database) args.push("--database-url", database.url);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("GUESTLIST_")));
  env.GUESTLIST_MAIL_POLL_INTERVAL_MS = "200";
  env.GUESTLIST_MAIL_RETRY_FIRST_DELAY_MS = "200";
  const logPath = `${dataDir}.log`;
  const logFd = openSync(logPath, "w");
  const proc = spawn(bin, args, { stdio: ["ignore", logFd, logFd], env, cwd: tmpdir() });
  closeSync(logFd);
  let exited = null;
  const exit = new Promise((res) => proc.on("exit", (code, signal) => { exited = { code, signal }; res(exited); }));
  const log = () => { try { return readFileSync(logPath, "utf8").slice(-8000); } catch { return ""; } };

  const connFile = join(dataDir, "connection.json");
  const deadline = Date.now() + START_TIMEOUT_MS;
  let conn = null;
  while (!conn) {
    if (exited) throw new Error(`guestlist exited (${JSON.stringify(exited)}):\n${log()}`);
    if (Date.now() > deadline) { proc.kill("SIGKILL"); throw new Error(`no ${connFile} after ${START_TIMEOUT_MS} ms:\n${log()}`); }
    if (existsSync(connFile)) {
      try { conn = JSON.parse(readFileSync(connFile, "utf8")); } catch { conn = null; }
    }
    if (!conn) await sleep(50);
  }

  const storeArgs = database ? ["--database-url", database.url] : ["--data-dir", dataDir];
  return {
    engine, dataDir, conn, log,
    /** `guestlist <args>` against this server's store (the admin commands work while it runs). */
    admin(...adminArgs) { return run(bin, [...adminArgs, ...storeArgs]); },
    /** Test-only time travel: runs SQL on the store directly. */
    sql(statement) {
      if (database) return run("psql", [database.url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", statement]);
      return run("sqlite3", [join(dataDir, "guestlist.db"), `.timeout 5000`, statement]);
    },
    /** A timestamp literal in the past, in the engine's stored form. */
    past() { return database ? "TIMESTAMPTZ '2000-01-01 00:00:00+00'" : "'2000-01-01T00:00:00.000000Z'"; },
    async stop() {
      if (!exited) {
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
        await exit;
        clearTimeout(timer);
      }
      if (database) database.drop();
      if (exited.code === 0) { rmSync(dataDir, { recursive: true, force: true }); rmSync(logPath, { force: true }); }
      return exited.code;
    },
  };
}
