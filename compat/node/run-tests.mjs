// `npm test`: start guestlist (SQLite, and PostgreSQL when GUESTLIST_TEST_DATABASE_URL is set),
// then run `node --test` against it. NODE_EXTRA_CA_CERTS is read only at process start, so the
// tests run in a child process started after the server has written its CA.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createDatabase, startServer } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const testFiles = readdirSync(join(here, "test")).filter((f) => f.endsWith(".test.mjs")).map((f) => join("test", f));

const engines = [{ engine: "sqlite" }];
if (process.env.GUESTLIST_TEST_DATABASE_URL) engines.push({ engine: "postgres", admin: process.env.GUESTLIST_TEST_DATABASE_URL });
else console.log("# postgres: skipped (GUESTLIST_TEST_DATABASE_URL not set)");

function runNodeTest(server) {
  return new Promise((resolve) => {
    const env = {
      ...process.env,
      NODE_EXTRA_CA_CERTS: server.conn.caCertificate,
      GUESTLIST_CONNECTION_FILE: server.connFile,
      GUESTLIST_ENGINE: server.engine,
    };
    const child = spawn(process.execPath, ["--test", "--test-reporter=spec", ...process.argv.slice(2), ...testFiles], { cwd: here, env, stdio: "inherit" });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

let failed = false;
const summary = [];
for (const { engine, admin } of engines) {
  let db = null;
  let server = null;
  try {
    if (admin) db = createDatabase(admin);
    server = await startServer({ engine, databaseUrl: db?.url });
    console.log(`# ${engine}: guestlist at ${server.conn.graphUrl}`);
    const code = await runNodeTest(server);
    const stopCode = await server.stop();
    server = null;
    if (stopCode !== 0) { failed = true; summary.push(`${engine}: server exit code after SIGTERM ${stopCode}`); }
    summary.push(`${engine}: node --test ${code === 0 ? "passed" : `FAILED (exit ${code})`}`);
    if (code !== 0) failed = true;
  } catch (e) {
    failed = true;
    summary.push(`${engine}: harness error: ${e.message}`);
    console.error(e);
  } finally {
    if (server) { console.error(server.log()); await server.stop().catch(() => {}); }
    db?.drop();
  }
}
console.log(summary.map((l) => `# ${l}`).join("\n"));
process.exit(failed ? 1 : 0);
