// Peer servers for bench/compare.sh: one room-based fan-out server per kind, all speaking what
// gatehouse-bench's adapters expect (bench/README.md, "Peers").
//
//   node server.js socketio|ws|uws PORT [--redis redis://127.0.0.1:6379]
//
// ws and uws speak a tiny JSON protocol:
//   server → client on open:    {"op":"welcome"}
//   client → server:            {"op":"join","room":R,"id":N}     → {"op":"joined","id":N}
//   client → server:            {"op":"publish","room":R,"data":D} → every member of R (sender
//                               included): {"op":"message","room":R,"data":D}, encoded once
// socketio: Socket.IO v4, websocket transport only; events "join" (room, ack) and
// "publish" (room, data) → io.to(room).emit("message", data). With --redis, rooms span
// processes through @socket.io/redis-adapter.
// Prints "listening PORT" on stdout once ready. Binds 127.0.0.1 only.
"use strict";

const [kind, portArg, ...rest] = process.argv.slice(2);
const port = Number(portArg);
if (!kind || !Number.isInteger(port) || port <= 0 || kind === "--help") {
  console.error("usage: node server.js socketio|ws|uws PORT [--redis URL]");
  process.exit(2);
}
const redisAt = rest.indexOf("--redis");
const redisUrl = redisAt >= 0 ? rest[redisAt + 1] : null;
const WELCOME = '{"op":"welcome"}';

function handle(text, onJoin, onPublish) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return;
  }
  if (m === null || typeof m.room !== "string") return;
  if (m.op === "join") onJoin(m.room, m.id ?? null);
  else if (m.op === "publish") {
    onPublish(m.room, JSON.stringify({ op: "message", room: m.room, data: m.data }));
  }
}

if (kind === "uws") {
  const uWS = require("uWebSockets.js");
  const app = uWS.App();
  app.ws("/*", {
    compression: uWS.DISABLED,
    maxPayloadLength: 64 * 1024,
    idleTimeout: 120,
    maxBackpressure: 1024 * 1024,
    open: (ws) => ws.send(WELCOME, false),
    message: (ws, msg) => {
      handle(
        Buffer.from(msg).toString(),
        (room, id) => {
          ws.subscribe(room);
          ws.send(JSON.stringify({ op: "joined", id }), false);
        },
        (room, frame) => app.publish(room, frame, false),
      );
    },
  });
  app.listen("127.0.0.1", port, (tok) => {
    if (!tok) {
      console.error(`uws: cannot listen on ${port}`);
      process.exit(1);
    }
    console.log(`listening ${port}`);
  });
} else if (kind === "ws") {
  const { WebSocketServer } = require("ws");
  const rooms = new Map();
  const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false, clientTracking: false });
  wss.on("connection", (ws) => {
    const mine = new Set();
    ws.send(WELCOME);
    ws.on("message", (data) => {
      handle(
        data.toString(),
        (room, id) => {
          let s = rooms.get(room);
          if (!s) rooms.set(room, (s = new Set()));
          s.add(ws);
          mine.add(room);
          ws.send(JSON.stringify({ op: "joined", id }));
        },
        (room, frame) => {
          const s = rooms.get(room);
          if (!s) return;
          const buf = Buffer.from(frame); // encoded once, sent to every member
          for (const c of s) if (c.readyState === 1) c.send(buf, { binary: false });
        },
      );
    });
    ws.on("close", () => {
      for (const r of mine) {
        const s = rooms.get(r);
        if (s) {
          s.delete(ws);
          if (s.size === 0) rooms.delete(r);
        }
      }
    });
  });
  wss.on("listening", () => console.log(`listening ${port}`));
} else if (kind === "socketio") {
  const { Server } = require("socket.io");
  const io = new Server({ transports: ["websocket"], serveClient: false, perMessageDeflate: false });
  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack("ok");
    });
    socket.on("publish", (room, data) => io.to(room).emit("message", data));
  });
  const http = require("http");
  const srv = http.createServer();
  io.attach(srv);
  const start = () => srv.listen(port, "127.0.0.1", () => console.log(`listening ${port}`));
  if (redisUrl) {
    const { createAdapter } = require("@socket.io/redis-adapter");
    const Redis = require("ioredis");
    const pub = new Redis(redisUrl);
    const sub = pub.duplicate();
    io.adapter(createAdapter(pub, sub));
    Promise.all([
      new Promise((r) => pub.once("ready", r)),
      new Promise((r) => sub.once("ready", r)),
    ]).then(start);
  } else {
    start();
  }
} else {
  console.error(`unknown server kind ${kind}`);
  process.exit(2);
}
