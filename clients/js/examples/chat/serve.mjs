// A small static server for the chat demo (no dependencies): serves clients/js/examples/ and
// clients/js/dist/ on loopback.
//
//   node examples/chat/serve.mjs [--port 8090] [--host 127.0.0.1]     (npm run demo)
//
// Also used by the browser test (test/browser/rolling-upgrade.ts) to serve the very same page.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SERVED = ["examples", "dist"];
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
};

/** Starts the server; resolves with `{server, url}` once it listens. Port 0 picks a free one. */
export function serve({ port = 8090, host = "127.0.0.1" } = {}) {
  const server = createServer(async (req, res) => {
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      if (path === "/" || path === "/examples/chat") {
        res.writeHead(302, { location: "/examples/chat/" }).end();
        return;
      }
      let file = normalize(join(ROOT, path));
      const top = file.slice(ROOT.length + 1).split(sep)[0];
      if (!file.startsWith(ROOT + sep) || !SERVED.includes(top)) {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
        return;
      }
      if ((await stat(file).catch(() => null))?.isDirectory()) file = join(file, "index.html");
      const body = await readFile(file).catch(() => null);
      if (!body) {
        const hint = top === "dist" ? " (run `npm run build` first)" : "";
        res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}${hint}\n`);
        return;
      }
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (e) {
      res.writeHead(500, { "content-type": "text/plain" }).end(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolvePromise({ server, url: `http://${host}:${addr.port}` });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
  };
  const port = Number(opt("--port", process.env.PORT ?? "8090"));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve.mjs: --port must be a port number, got ${opt("--port", process.env.PORT)}`);
    process.exit(2);
  }
  const { url } = await serve({ port, host: opt("--host", "127.0.0.1") }).catch((e) => {
    console.error(`serve.mjs: cannot listen: ${e.message}`);
    process.exit(1);
  });
  console.log(`Gatehouse chat demo: ${url}/examples/chat/`);
  console.log("It connects to ws://127.0.0.1:8081..8083/ws (deploy/local-cluster.sh 3); ?url=ws://HOST/ws for another cluster.");
}
