// The /demo page: join a server by name (creating it when missing), see who is there, chat, and
// open a WebRTC data channel to a peer through offer / answer / ice_candidate. Built with tsc
// (tools/build-demo.mjs) into server/demo/js/, which the server embeds.

import {
  SignalboxClient,
  type ClientEnvelopeOf,
  type ConnectionState,
  type ServerEnvelopeOf,
} from "../client/index.js";
import type { IceCandidate, IceServer, TokenResponse, UserSummary } from "../src/index.js";

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

const ui = {
  joinForm: $<HTMLFormElement>("join-form"),
  name: $<HTMLInputElement>("name"),
  server: $<HTMLInputElement>("server"),
  joinButton: $<HTMLButtonElement>("join"),
  status: $("status"),
  room: $("room"),
  roomName: $("room-name"),
  me: $("me"),
  members: $<HTMLUListElement>("members"),
  chatForm: $<HTMLFormElement>("chat-form"),
  chatInput: $<HTMLInputElement>("chat-input"),
  chatLog: $<HTMLOListElement>("chat-log"),
  dcForm: $<HTMLFormElement>("dc-form"),
  dcPeer: $<HTMLSelectElement>("dc-peer"),
  dcInput: $<HTMLInputElement>("dc-input"),
  dcLog: $<HTMLOListElement>("dc-log"),
  log: $<HTMLOListElement>("log"),
};

/** One peer connection and its data channel. */
interface Peer {
  pc: RTCPeerConnection;
  channel: RTCDataChannel | null;
  pendingCandidates: RTCIceCandidateInit[];
  state: string;
}

let client: SignalboxClient | null = null;
let serverId = "";
let myId = "";
let iceServers: IceServer[] = [];
const members = new Map<string, UserSummary>();
const peers = new Map<string, Peer>();

function line(list: HTMLOListElement, text: string, kind = ""): void {
  const li = document.createElement("li");
  li.textContent = text;
  if (kind) li.dataset["kind"] = kind;
  list.append(li);
  li.scrollIntoView({ block: "nearest" });
}

function log(text: string, kind = ""): void {
  line(ui.log, `${new Date().toLocaleTimeString()} ${text}`, kind);
}

function nameOf(id: string): string {
  return members.get(id)?.displayName ?? id.slice(0, 8);
}

function setStatus(state: ConnectionState): void {
  const text =
    state.state === "reconnecting"
      ? `reconnecting in ${Math.round(state.delayMs / 100) / 10} s (closed ${state.code})`
      : state.state === "closed"
        ? `closed (${state.code}${state.reason ? `: ${state.reason}` : ""})`
        : state.state;
  ui.status.textContent = text;
  ui.status.dataset["state"] = state.state;
}

function renderMembers(): void {
  ui.members.replaceChildren();
  for (const user of members.values()) {
    const li = document.createElement("li");
    li.dataset["userId"] = user.oderId;
    const name = document.createElement("span");
    name.className = "member-name";
    name.textContent = user.oderId === myId ? `${user.displayName} (you)` : user.displayName;
    li.append(name);
    if (user.oderId !== myId) {
      const state = document.createElement("span");
      state.className = "dc-state";
      const peerState = peers.get(user.oderId)?.state ?? "none";
      state.textContent = peerState;
      state.dataset["state"] = peerState;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "connect";
      button.textContent = peerState === "open" ? "Connected" : "Open data channel";
      button.disabled = peerState === "open" || peerState === "connecting";
      button.addEventListener("click", () => void openChannel(user.oderId));
      li.append(state, button);
    }
    ui.members.append(li);
  }
  const selected = ui.dcPeer.value;
  ui.dcPeer.replaceChildren();
  for (const [id, peer] of peers) {
    if (peer.state !== "open") continue;
    const option = document.createElement("option");
    option.value = id;
    option.textContent = nameOf(id);
    ui.dcPeer.append(option);
  }
  if ([...ui.dcPeer.options].some((o) => o.value === selected)) ui.dcPeer.value = selected;
  ui.dcForm.querySelector("button")!.disabled = ui.dcPeer.options.length === 0;
}

function setPeerState(id: string, state: string): void {
  const peer = peers.get(id);
  if (!peer || peer.state === state) return;
  peer.state = state;
  log(`data channel with ${nameOf(id)}: ${state}`, "dc-state");
  renderMembers();
}

function send(envelope: Parameters<SignalboxClient["send"]>[0]): void {
  client?.send(envelope);
}

/** RTCIceCandidateInit has nulls where the protocol has absent fields. */
function toWire(c: RTCIceCandidateInit): IceCandidate {
  const out: IceCandidate = { candidate: c.candidate ?? "" };
  if (c.sdpMid != null) out.sdpMid = c.sdpMid;
  if (c.sdpMLineIndex != null) out.sdpMLineIndex = c.sdpMLineIndex;
  if (c.usernameFragment != null) out.usernameFragment = c.usernameFragment;
  return out;
}

function attachChannel(id: string, channel: RTCDataChannel): void {
  const peer = peers.get(id);
  if (!peer) return;
  peer.channel = channel;
  channel.onopen = () => setPeerState(id, "open");
  channel.onclose = () => setPeerState(id, "closed");
  channel.onmessage = (event: MessageEvent) => {
    line(ui.dcLog, `${nameOf(id)}: ${String(event.data)}`, "received");
  };
}

function newPeer(id: string): Peer {
  peers.get(id)?.pc.close();
  const pc = new RTCPeerConnection({ iceServers });
  const peer: Peer = { pc, channel: null, pendingCandidates: [], state: "connecting" };
  peers.set(id, peer);
  pc.onicecandidate = (event) => {
    if (!event.candidate) return;
    const envelope: ClientEnvelopeOf<"ice_candidate"> = {
      type: "ice_candidate",
      targetUserId: id,
      candidate: toWire(event.candidate.toJSON()),
    };
    send(envelope);
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed") setPeerState(id, "failed");
  };
  pc.ondatachannel = (event) => attachChannel(id, event.channel);
  renderMembers();
  return peer;
}

async function openChannel(id: string): Promise<void> {
  const peer = newPeer(id);
  attachChannel(id, peer.pc.createDataChannel("signalbox-demo"));
  log(`offering a data channel to ${nameOf(id)}`);
  const offer = await peer.pc.createOffer();
  await peer.pc.setLocalDescription(offer);
  send({ type: "offer", targetUserId: id, sdp: { type: "offer", sdp: offer.sdp ?? "" } });
}

async function flushCandidates(peer: Peer): Promise<void> {
  for (const c of peer.pendingCandidates.splice(0)) await peer.pc.addIceCandidate(c);
}

async function onOffer(e: ServerEnvelopeOf<"offer">): Promise<void> {
  log(`offer from ${nameOf(e.fromUserId)}`);
  const peer = newPeer(e.fromUserId);
  await peer.pc.setRemoteDescription({ type: "offer", sdp: e.sdp.sdp ?? "" });
  await flushCandidates(peer);
  const answer = await peer.pc.createAnswer();
  await peer.pc.setLocalDescription(answer);
  send({
    type: "answer",
    targetUserId: e.fromUserId,
    sdp: { type: "answer", sdp: answer.sdp ?? "" },
  });
}

async function onAnswer(e: ServerEnvelopeOf<"answer">): Promise<void> {
  const peer = peers.get(e.fromUserId);
  if (!peer) return;
  log(`answer from ${nameOf(e.fromUserId)}`);
  await peer.pc.setRemoteDescription({ type: "answer", sdp: e.sdp.sdp ?? "" });
  await flushCandidates(peer);
}

async function onCandidate(e: ServerEnvelopeOf<"ice_candidate">): Promise<void> {
  const peer = peers.get(e.fromUserId);
  if (!peer) return;
  const init: RTCIceCandidateInit = {
    candidate: e.candidate.candidate ?? "",
    sdpMid: e.candidate.sdpMid ?? null,
    sdpMLineIndex: e.candidate.sdpMLineIndex ?? null,
  };
  if (peer.pc.remoteDescription) await peer.pc.addIceCandidate(init);
  else peer.pendingCandidates.push(init);
}

async function api<T>(path: string, body: unknown, token?: string): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers["authorization"] = `Bearer ${token}`;
  const res = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as T };
}

async function join(displayName: string, server: string): Promise<void> {
  ui.joinButton.disabled = true;
  serverId = server;
  const guest = await api<TokenResponse>("/api/auth/guest", { displayName });
  if (guest.status !== 200) {
    log(`guest sign-in failed (${guest.status})`, "error");
    ui.joinButton.disabled = false;
    return;
  }
  const { token, userId } = guest.body;
  myId = userId;
  ui.me.textContent = `${displayName} · ${userId.replace(/^guest-/, "").slice(0, 8)}`;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  client = new SignalboxClient({
    url: `${scheme}://${location.host}/ws`,
    identify: { displayName, token },
  });
  client.onState(setStatus);
  client.on("connected", (e) => {
    iceServers = e.iceServers;
    log(`connected (protocol ${e.protocolVersion})`);
  });
  client.on("server_users", (e) => {
    if (e.serverId !== serverId) return;
    members.clear();
    for (const u of e.users) members.set(u.oderId, u);
    renderMembers();
  });
  client.on("user_joined", (e) => {
    if (e.serverId !== serverId) return;
    const { type: _type, serverId: _server, ...user } = e;
    members.set(e.oderId, user);
    log(`user_joined: ${e.displayName}`, "user_joined");
    renderMembers();
  });
  client.on("user_left", (e) => {
    if (e.serverId !== serverId) return;
    log(`user_left: ${e.displayName ?? nameOf(e.oderId)}`, "user_left");
    members.delete(e.oderId);
    const peer = peers.get(e.oderId);
    if (peer) {
      peer.pc.close();
      peers.delete(e.oderId);
    }
    renderMembers();
  });
  client.on("chat_message", (e) => {
    const text = typeof e.message["text"] === "string" ? e.message["text"] : JSON.stringify(e.message);
    line(ui.chatLog, `${e.senderName}: ${text}`, "received");
  });
  client.on("offer", (e) => void onOffer(e).catch((err) => log(`offer failed: ${err}`, "error")));
  client.on("answer", (e) => void onAnswer(e).catch((err) => log(`answer failed: ${err}`, "error")));
  client.on("ice_candidate", (e) => void onCandidate(e).catch((err) => log(`candidate failed: ${err}`, "error")));
  client.on("error", (e) => log(`error ${e.code}: ${e.message}`, "error"));
  client.on("access_denied", (e) => {
    if (e.reason === "not_found") {
      log(`server "${e.serverId}" does not exist: creating it`);
      void api("/api/servers", { id: e.serverId, name: e.serverId }, token).then((r) => {
        if (r.status !== 201 && r.status !== 200 && r.status !== 409) {
          log(`could not create the server (${r.status})`, "error");
          return;
        }
        send({ type: "join_server", serverId: e.serverId });
      });
      return;
    }
    log(`access denied to ${e.serverId}: ${e.reason}`, "error");
  });
  client.connect();
  send({ type: "join_server", serverId });
  ui.joinForm.hidden = true;
  ui.room.hidden = false;
  ui.roomName.textContent = server;
  history.replaceState(null, "", `?server=${encodeURIComponent(server)}`);
}

ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  const server = ui.server.value.trim();
  if (name && server) void join(name, server);
});

ui.chatForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.chatInput.value.trim();
  if (!text || !client) return;
  send({ type: "chat_message", serverId, message: { text } });
  line(ui.chatLog, `me: ${text}`, "sent");
  ui.chatInput.value = "";
});

ui.dcForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.dcInput.value;
  const peer = peers.get(ui.dcPeer.value);
  if (!text || !peer?.channel || peer.channel.readyState !== "open") return;
  peer.channel.send(text);
  line(ui.dcLog, `me → ${nameOf(ui.dcPeer.value)}: ${text}`, "sent");
  ui.dcInput.value = "";
});

const preset = new URLSearchParams(location.search).get("server");
if (preset) ui.server.value = preset;
renderMembers();
