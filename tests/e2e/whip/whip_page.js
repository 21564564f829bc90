// Drives the unmodified whip-whep clients (medooze, web/node_modules/whip-whep) for tests/whip_clients.py.
//
// window.whipPage.publish(url, token, codec) / play(url, token) resolve with null or the error the
// client threw; stop() calls every client's stop() (DELETE); stats() sums getStats(); state() has
// the errors the clients hit (also the PATCHes they fire from timers), every HTTP request they made
// (with the response headers CORS let them see) and the connection states of their peers.
import { WHIPClient } from "/whip-whep/whip.js";
import { WHEPClient } from "/whip-whep/whep.js";

const state = { errors: [], requests: [], states: { whip: [], whep: [] }, resources: {} };
const active = {}; // kind -> { client, pc, stream }
const last = { framesDecoded: 0, bytesSent: 0, packetsSent: 0, framesEncoded: 0, sent: [], received: [] };

const nativeFetch = window.fetch.bind(window);
window.fetch = async (input, init = {}) => {
  const entry = {
    method: init.method || "GET",
    url: String(input),
    headers: { ...(init.headers || {}) },
    body: typeof init.body === "string" ? init.body : null,
    status: null,
    responseHeaders: {},
    error: null,
  };
  state.requests.push(entry);
  try {
    const response = await nativeFetch(input, init);
    entry.status = response.status;
    response.headers.forEach((value, key) => (entry.responseHeaders[key] = value));
    return response;
  } catch (e) {
    entry.error = String(e);
    throw e;
  }
};

window.addEventListener("unhandledrejection", (e) => state.errors.push(`unhandled rejection: ${e.reason}`));
window.addEventListener("error", (e) => state.errors.push(`error: ${e.message}`));

function watch(kind, client, pc) {
  // the clients trickle from setTimeout(() => this.patch()): a rejected PATCH would be an unhandled rejection
  const patch = client.patch.bind(client);
  client.patch = async () => {
    try {
      return await patch();
    } catch (e) {
      state.errors.push(`${kind} PATCH: ${e}`);
    }
  };
  const onState = () => {
    state.states[kind].push(pc.connectionState);
    if (pc.connectionState === "failed") state.errors.push(`${kind} connection failed`);
  };
  pc.addEventListener("connectionstatechange", onState); // the clients take pc.onconnectionstatechange
}

function preferCodec(transceiver, codec) {
  const all = RTCRtpSender.getCapabilities("video").codecs;
  const wanted = all.filter((c) => c.mimeType.toLowerCase() === `video/${codec.toLowerCase()}`);
  if (!wanted.length) throw new Error(`Chromium has no ${codec}`);
  transceiver.setCodecPreferences([...wanted, ...all.filter((c) => c.mimeType === "video/rtx")]);
}

async function start(kind, url, token, setup) {
  if (active[kind]) return `${kind}: already started`;
  try {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    const client = kind === "whip" ? new WHIPClient() : new WHEPClient();
    active[kind] = { client, pc, stream: null };
    await setup(pc, active[kind]);
    watch(kind, client, pc);
    await (kind === "whip" ? client.publish(pc, url, token || undefined) : client.view(pc, url, token || undefined));
    state.resources[kind] = client.resourceURL ? String(client.resourceURL) : null;
    return null;
  } catch (e) {
    const message = `${kind}: ${e && e.message ? e.message : e}`;
    state.errors.push(message);
    const entry = active[kind];
    if (entry && !entry.client.resourceURL) {
      // no resource to DELETE: drop it, so the page can try again
      delete active[kind];
      entry.pc.close();
      if (entry.stream) entry.stream.getTracks().forEach((t) => t.stop());
    }
    return message;
  }
}

async function publish(url, token, codec) {
  return start("whip", url, token, async (pc, entry) => {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: 640, height: 360, frameRate: 30 },
    });
    entry.stream = stream;
    for (const track of stream.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      if (codec && track.kind === "video") preferCodec(transceiver, codec);
    }
    document.querySelector("#local").srcObject = stream;
  });
}

async function play(url, token) {
  return start("whep", url, token, async (pc) => {
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addEventListener("track", (event) => {
      if (event.track.kind !== "video") return;
      document.querySelector("#remote").srcObject = event.streams[0] || new MediaStream([event.track]);
    });
  });
}

async function stop() {
  for (const [kind, entry] of Object.entries(active)) {
    await stats(); // keep the last numbers: a closed peer connection has none
    delete active[kind];
    try {
      await entry.client.stop();
    } catch (e) {
      state.errors.push(`${kind} stop: ${e && e.message ? e.message : e}`);
    }
    if (entry.stream) entry.stream.getTracks().forEach((t) => t.stop());
  }
}

async function stats() {
  const now = { framesDecoded: 0, bytesSent: 0, packetsSent: 0, framesEncoded: 0, sent: [], received: [] };
  let any = false;
  for (const [kind, { pc }] of Object.entries(active)) {
    if (pc.connectionState === "closed") continue;
    any = true;
    const report = await pc.getStats();
    report.forEach((r) => {
      if (r.type === "outbound-rtp" && kind === "whip") {
        now.bytesSent += r.bytesSent || 0;
        now.packetsSent += r.packetsSent || 0;
        if (r.kind === "video") now.framesEncoded += r.framesEncoded || 0;
      }
      if (r.type === "inbound-rtp" && r.kind === "video" && kind === "whep") now.framesDecoded += r.framesDecoded || 0;
      if ((r.type === "outbound-rtp" || r.type === "inbound-rtp") && report.get(r.codecId)) {
        (r.type === "outbound-rtp" ? now.sent : now.received).push(report.get(r.codecId).mimeType);
      }
    });
  }
  if (!any) return { ...last };
  Object.assign(last, now);
  return now;
}

function connectionState(kind) {
  const entry = active[kind];
  return entry ? entry.pc.connectionState : null;
}

window.whipPage = { publish, play, stop, stats, connectionState, state: () => state };
