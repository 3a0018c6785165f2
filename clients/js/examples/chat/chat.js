// The chat demo: one room, presence, and the connection state with its history. It uses the
// package's built ES module straight from dist/ (no bundler): serve clients/js/ with
// `npm run demo` and open /examples/chat/.
//
// Query parameters: url (comma-separated ws:// URLs, tried in turn; default the three nodes of
// deploy/local-cluster.sh 3), room (default chat:lobby), name (default guest-xxxx).
import { connect } from "../../dist/index.js";

const params = new URLSearchParams(location.search);
const urls = (params.get("url") ?? "ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws,ws://127.0.0.1:8083/ws")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const roomName = params.get("room") ?? "chat:lobby";
const name = params.get("name") ?? `guest-${Math.random().toString(36).slice(2, 6)}`;

const MAX_KEPT = 10_000; // messages kept in memory (and 1000 on screen)
const $ = (id) => document.getElementById(id);

// Everything the page saw, for the curious (and for the end-to-end test): window.gatehouseChat.
const chat = {
  name,
  room: roomName,
  state: "connecting",
  node: null,
  clientId: null,
  messages: [], // {seq, epoch, from, data}, in delivery order
  sent: [], // {text, status: pending|acked|failed, seq, error, offline}
  log: [], // {at, kind, text}: the connection's history
  gaps: [],
  errors: [],
  members: [],
};
window.gatehouseChat = chat;

const names = new Map(); // client id -> display name, learned from messages

function time(at) {
  const d = new Date(at);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function logLine(kind, text) {
  const entry = { at: Date.now(), kind, text };
  chat.log.push(entry);
  if (chat.log.length > 1000) chat.log.shift();
  const li = document.createElement("li");
  li.className = kind;
  const t = document.createElement("time");
  t.textContent = time(entry.at);
  li.append(t, text);
  $("log").prepend(li);
  while ($("log").children.length > 200) $("log").lastElementChild.remove();
}

function addLine(li) {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  while (list.children.length > 1000) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderMembers() {
  $("member-count").textContent = String(chat.members.length);
  const ul = $("members");
  ul.replaceChildren(
    ...chat.members.map((m) => {
      const li = document.createElement("li");
      const who = m.client === chat.clientId ? `${name} (you)` : (names.get(m.client) ?? m.user);
      li.textContent = who;
      li.title = `${m.user} · ${m.client}`;
      return li;
    }),
  );
}

function renderOutbox() {
  const waiting = chat.sent.filter((s) => s.status === "pending").length;
  const failed = chat.sent.filter((s) => s.status === "failed").length;
  $("outbox").textContent =
    (waiting ? `${waiting} message${waiting > 1 ? "s" : ""} waiting to be sent` : "") +
    (failed ? `${waiting ? " · " : ""}${failed} not sent` : "");
}

$("room-name").textContent = roomName;

const client = connect(urls);
chat.client = client;
logLine("state-connecting", `connecting to ${urls.join(", ")}`);

client.on("state", (s) => {
  chat.state = s;
  $("state").textContent = s;
  $("status").className = `status ${s}`;
  $("status").dataset.state = s;
  if (s !== "connected") $("node").textContent = "";
  logLine(`state-${s}`, s);
});
client.on("connected", (e) => {
  chat.node = e.node;
  chat.clientId = e.client;
  $("node").textContent = `· ${e.node}`;
  logLine("connected", `on ${e.node} as ${e.client}${e.reconnects ? (e.resumed ? ", session resumed" : ", new session") : ""}`);
});
client.on("disconnected", (e) => logLine("disconnected", `closed ${e.code}${e.reason ? ` (${e.reason})` : ""}`));
client.on("reconnecting", (e) =>
  logLine(
    "reconnecting",
    `retry ${e.attempt} in ${e.delayMs} ms: ${e.cause}${e.window ? ` (window ${e.window[0]}-${e.window[1]} ms)` : ""}`,
  ),
);
client.on("gap", (g) => {
  chat.gaps.push(g);
  logLine("gap", `gap in ${g.room}: ${g.reason}${g.missed !== undefined ? `, ${g.missed} missed` : ""}`);
  const li = document.createElement("li");
  li.className = "gap";
  li.textContent = `— some messages could not be recovered (${g.reason}) —`;
  addLine(li);
});
client.on("error", (e) => {
  chat.errors.push({ code: e.code, message: e.message });
  logLine("error", `${e.code}: ${e.message}`);
});

const room = client.room(roomName);
room.onMessage((m) => {
  chat.messages.push({ seq: m.seq, epoch: m.epoch, from: m.from, data: m.data });
  if (chat.messages.length > MAX_KEPT) chat.messages.shift();
  const sender = typeof m.data?.name === "string" ? m.data.name : m.from.backend ? "backend" : (m.from.user ?? "?");
  if (m.from.client && names.get(m.from.client) !== sender) {
    names.set(m.from.client, sender);
    renderMembers();
  }
  const li = document.createElement("li");
  if (m.from.client === chat.clientId) li.className = "mine";
  const seq = document.createElement("span");
  seq.className = "seq";
  seq.textContent = `#${m.seq}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = sender;
  li.append(seq, who, typeof m.data?.text === "string" ? m.data.text : JSON.stringify(m.data));
  li.dataset.seq = String(m.seq);
  addLine(li);
});
room.on("members", (members) => {
  chat.members = members;
  renderMembers();
});
room.on("joined", (e) =>
  logLine(
    "joined",
    e.rejoin
      ? `rejoined at #${e.result.seq}: recovered ${e.result.recovered}, ${e.result.replayed ?? 0} replayed`
      : `joined ${e.room} at #${e.result.seq}`,
  ),
);
room.join({ presence: true, last: 50 }).catch((e) => logLine("error", `join ${roomName}: ${e.code}: ${e.message}`));

$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  // offline: typed while not connected, so it waits in the client's outbox.
  const entry = { text, status: "pending", seq: null, error: null, offline: client.state !== "connected" };
  chat.sent.push(entry);
  if (chat.sent.length > MAX_KEPT) chat.sent.shift();
  renderOutbox();
  room
    .publish({ name, text })
    .then((r) => {
      entry.status = "acked";
      entry.seq = r.seq;
    })
    .catch((e) => {
      entry.status = "failed";
      entry.error = e.code;
      logLine("error", `not sent: "${text}": ${e.code}`);
    })
    .finally(renderOutbox);
});
