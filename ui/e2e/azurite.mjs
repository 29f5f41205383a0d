// A real Azure Blob API for the end-to-end tests: azurite-blob (npm azurite)
// on a free loopback port, its data in a temporary folder.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./driver.mjs";

/** Azurite's well-known development account (public, documented by Microsoft). */
export const ACCOUNT = "devstoreaccount1";
export const KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function listening(port) {
  for (let i = 0; i < 300; i++) {
    const up = await new Promise((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      }).on("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("azurite-blob did not start in 60 s; run the README's test command, which installs it");
}

/** Starts azurite with `container` made; returns { endpoint, env, close }. */
export async function startAzurite(container) {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), "cairn-azurite-"));
  const program = process.env.CAIRN_AZURITE ?? join(REPO, ".venv/node/node_modules/.bin/azurite-blob");
  const child = spawn(
    program,
    ["--disableTelemetry", "--skipApiVersionCheck", "--silent", "--blobHost", "127.0.0.1", "--blobPort", `${port}`, "--location", data],
    { stdio: "ignore" },
  );
  await listening(port);
  const endpoint = `http://127.0.0.1:${port}`;
  const date = new Date().toUTCString();
  const version = "2021-08-06";
  const toSign = `PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:${date}\nx-ms-version:${version}\n/${ACCOUNT}/${ACCOUNT}/${container}\nrestype:container`;
  const signature = createHmac("sha256", Buffer.from(KEY, "base64")).update(toSign).digest("base64");
  const created = await fetch(`${endpoint}/${ACCOUNT}/${container}?restype=container`, {
    method: "PUT",
    headers: { "x-ms-date": date, "x-ms-version": version, Authorization: `SharedKey ${ACCOUNT}:${signature}` },
  });
  if (!created.ok) throw new Error(`azurite refused the container: ${created.status} ${await created.text()}`);
  return {
    endpoint,
    // What `cairn` needs to reach it from the environment.
    env: { AZURE_STORAGE_USE_EMULATOR: "true", AZURITE_BLOB_STORAGE_URL: endpoint },
    close() {
      child.kill("SIGKILL");
      rmSync(data, { recursive: true, force: true });
    },
  };
}
