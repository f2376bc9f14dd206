// A real SMTP server (nodemailer's smtp-server) on loopback that keeps what it receives, and the
// small MIME reading the tests need: the text/plain part, decoded.
import { SMTPServer } from "smtp-server";

export async function startMailbox() {
  const messages = [];
  const waiters = new Set();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on("data", (c) => chunks.push(c));
      stream.on("end", () => {
        messages.push({ to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()), raw: Buffer.concat(chunks).toString("utf8") });
        for (const wake of waiters) wake();
        callback();
      });
    },
  });
  await new Promise((res) => server.listen(0, "127.0.0.1", res));
  const { port } = server.server.address();

  const to = (address) => messages.filter((m) => m.to.includes(address.toLowerCase()));
  /** Waits for a message to `address` for which `pick` returns something, skipping the first `skip` such. */
  async function waitFor(address, pick, skip = 0, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = to(address).map(pick).filter((v) => v != null);
      if (found.length > skip) return found[skip];
      if (Date.now() > deadline) throw new Error(`no mail to ${address} after ${timeoutMs} ms (have ${to(address).length})`);
      await new Promise((res) => { const wake = () => { waiters.delete(wake); res(); }; waiters.add(wake); setTimeout(wake, 500); });
    }
  }
  return {
    url: `smtp://127.0.0.1:${port}`,
    to,
    /** The redeem link of the `n`th (0-based) invitation mail to `address`. */
    redeemLink: (address, n = 0) => waitFor(address, (m) => (subject(m).includes("verification code") ? null : redeemLinkOf(m)), n),
    /** The code of the `n`th (0-based) one-time passcode mail to `address`. */
    code: (address, n = 0) => waitFor(address, codeOf, n),
    codeCount: (address) => to(address).map(codeOf).filter((c) => c != null).length,
    close: () => new Promise((res) => server.close(res)),
  };
}

function subject(message) {
  return /^Subject: (.*)$/m.exec(message.raw)?.[1] ?? "";
}

export function textOf(message) {
  const raw = message.raw.replace(/\r\n/g, "\n");
  const start = raw.indexOf("Content-Type: text/plain");
  if (start < 0) throw new Error("no text/plain part");
  const part = raw.slice(start);
  const split = part.indexOf("\n\n");
  const headers = part.slice(0, split);
  const body = part.slice(split + 2).split("\n--")[0];
  const encoding = (/^Content-Transfer-Encoding: (.*)$/m.exec(headers)?.[1] ?? "7bit").trim().toLowerCase();
  if (encoding === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (encoding === "quoted-printable") {
    const joined = body.replace(/=\n/g, "");
    return Buffer.from(joined.replace(/=([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16))), "latin1").toString("utf8");
  }
  return body;
}

function codeOf(message) {
  if (!subject(message).includes("verification code")) return null;
  return /(?<!\d)\d{8}(?!\d)/.exec(textOf(message))?.[0] ?? null;
}

function redeemLinkOf(message) {
  return /https:\/\/127\.0\.0\.1:\d+\/redeem\?\S+/.exec(textOf(message))?.[0] ?? null;
}
