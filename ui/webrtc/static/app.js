// The assistant's browser client: microphone and camera out, the assistant's voice and live events in.
// Query parameters: token (required), raw=1 (no browser voice processing: for tests and measurements),
// video=0 (no camera), meter=1 (keep a history of input/output levels in window.assistantCall.meter),
// autostart=1 (start without a click; browsers may then block the voice until a user gesture).
// No camera, or the camera refused or busy: the call goes on with voice only (call.videoFallback says why).
"use strict";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const call = {
  state: "idle", error: null, events: [], callId: null,
  meter: { local: [], remote: [] }, levels: { local: -120, remote: -120 },
  pc: null, channel: null, stream: null, audioContext: null, muted: false,
  videoFallback: null,  // why the call went voice-only ("NotFoundError: ..."), null with a camera or video=0
  sendText, hangUp,
};
window.assistantCall = call;

const SPEAKING_DB = -50;       // level above which a side counts as audible
const METER_INTERVAL_MS = 10;
const METER_KEEP = 60 * 100;   // ~60 s of level history at most

function setStatus(text) { call.state = text; $("status").textContent = text; }

function fail(message) {
  call.error = message;
  setStatus("error: " + message);
  addLine("system", message);
}

async function start() {
  $("start").disabled = true;
  const token = params.get("token");
  if (!token) { fail("this page needs the ?token=... the server printed"); return; }
  const raw = params.get("raw") === "1";
  const voiceProcessing = !raw;  // echo cancellation stays on for real users: open speakers feed the mic
  try {
    call.stream = await openMedia(
      { echoCancellation: voiceProcessing, noiseSuppression: voiceProcessing, autoGainControl: voiceProcessing },
      params.get("video") !== "0");
  } catch (error) {
    fail("microphone not available (" + describe(error) + ")");
    $("start").disabled = false;
    return;
  }
  if (call.stream.getVideoTracks().length) $("preview").srcObject = call.stream;
  else $("preview").hidden = true;
  call.audioContext = new AudioContext();
  watchLevel("local", call.stream);

  const pc = new RTCPeerConnection({ iceServers: [] });
  call.pc = pc;
  call.channel = pc.createDataChannel("events");
  call.channel.onmessage = (message) => onMessage(JSON.parse(message.data));
  call.channel.onopen = () => { $("text").disabled = false; $("send").disabled = false; };
  for (const track of call.stream.getTracks()) pc.addTrack(track, call.stream);
  pc.ontrack = (event) => {
    const stream = event.streams[0] || new MediaStream([event.track]);
    $("voice").srcObject = stream;  // Chrome feeds WebAudio from a remote stream only while an element plays it
    watchLevel("remote", stream);
  };
  pc.onconnectionstatechange = () => {
    const state = pc.connectionState;
    if (state === "connected") setStatus("connected");
    else if (state === "failed" || state === "closed" || state === "disconnected") setStatus("call " + state);
  };
  setStatus("connecting");
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  let response;
  try {
    response = await fetch("offer", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
    });
  } catch (error) { fail("server unreachable: " + error.message); return; }
  const answer = await response.json().catch(() => ({ error: "the server's answer was not JSON" }));
  if (!response.ok) { fail(answer.error || ("HTTP " + response.status)); cleanUp(); return; }
  call.callId = answer.call_id;
  await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  $("mute").disabled = false;
  $("hangup").disabled = false;
  setInterval(reportStats, 1000);
}

// The microphone is what a call needs; the camera is a bonus. Asking for both at once keeps one permission
// prompt, but then a missing, refused or busy camera fails the whole request: ask again for the microphone
// alone, and only that answer decides whether there is a call.
async function openMedia(audio, wantVideo) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error("this browser gives the microphone only to https or localhost pages");
  }
  if (!wantVideo) return navigator.mediaDevices.getUserMedia({ audio, video: false });
  try {
    // The assistant looks at a frame or two a second: a low frame rate spares both machines the video codec.
    return await navigator.mediaDevices.getUserMedia({
      audio, video: { width: 640, height: 480, frameRate: { ideal: 5, max: 10 } } });
  } catch (videoError) {
    const stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });  // throws the mic's error
    call.videoFallback = describe(videoError);
    showNotice("No camera (" + call.videoFallback + "): voice-only call");
    return stream;
  }
}

function describe(error) {
  if (!error) return "unknown error";
  return error.name && error.name !== "Error" ? error.name + (error.message ? ": " + error.message : "") : String(error.message || error);
}

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = false;
  addLine("system", text);
}

function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", check); resolve(); } };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 2000);  // loopback gathers in milliseconds; never wait forever
  });
}

// --- levels: the speaking indicators, and a history for measurements -------------------------------

function watchLevel(side, stream) {
  const analyser = call.audioContext.createAnalyser();
  analyser.fftSize = 512;
  call.audioContext.createMediaStreamSource(stream).connect(analyser);
  const buffer = new Float32Array(analyser.fftSize);
  const keep = params.get("meter") === "1";
  setInterval(() => {
    analyser.getFloatTimeDomainData(buffer);
    let power = 0;
    for (const x of buffer) power += x * x;
    const db = 10 * Math.log10(power / buffer.length + 1e-12);
    call.levels[side] = db;
    if (keep) {
      const history = call.meter[side];
      history.push([performance.now(), Math.round(db * 10) / 10]);
      if (history.length > METER_KEEP) history.shift();
    }
    $(side === "local" ? "you-dot" : "assistant-dot").classList.toggle("on", db > SPEAKING_DB);
  }, METER_INTERVAL_MS);
}

async function reportStats() {
  if (!call.pc || !call.channel || call.channel.readyState !== "open") return;
  const stats = await call.pc.getStats();
  stats.forEach((report) => {
    if (report.type === "inbound-rtp" && report.kind === "audio") {
      send({ type: "stats", samples_received: report.totalSamplesReceived || 0,
             concealed_samples: report.concealedSamples || 0,
             jitter_buffer_ms: report.jitterBufferEmittedCount ? 1000 * report.jitterBufferDelay / report.jitterBufferEmittedCount : 0 });
    }
  });
}

// --- events from the server ----------------------------------------------------------------------

const bubbles = new Map();  // turn_id -> the assistant's <li>

function onMessage(message) {
  message.received_at = performance.now();
  call.events.push(message);
  if (message.type === "workers") {
    for (const [name, role] of Object.entries(message.workers)) if ($("worker-" + name)) $("worker-" + name).textContent = role;
    return;
  }
  if (message.type === "error") { addLine("system", "server: " + message.message); return; }
  if (message.type !== "event") return;
  switch (message.kind) {
    case "StateDecided":
      $("last-decision").textContent = message.label + " (" + Math.round(100 * message.query_probability) + "%, " + message.reason + ")";
      if (message.interim) break;
      if (message.token === "<2>") addLine("noise", (message.text || "(sound)") + " \u2014 not for me: " + message.reason);
      else addLine("user", message.text, message.label);
      break;
    case "TurnStarted": bubble(message.turn_id); break;
    case "LLMToken": { const li = bubble(message.turn_id); li.querySelector(".text").textContent += message.text; scroll(); break; }
    case "AnswerReplaced": bubble(message.turn_id).querySelector(".text").textContent = message.said; break;  // an echo, not said
    case "TurnEnded": {
      const li = bubble(message.turn_id);
      if (message.status === "interrupted") { li.classList.add("interrupted"); li.querySelector(".text").textContent = message.spoken || "(nothing heard)"; }
      else if (message.answer) li.querySelector(".text").textContent = message.answer;
      break;
    }
    case "PlaybackStarted": if (message.latency_ms !== undefined) $("latency-turn").textContent = message.latency_ms + " ms"; break;
    case "Duck": if (message.after_onset_ms !== undefined) $("latency-stop").textContent = message.after_onset_ms + " ms"; break;
    case "ErrorEvent": addLine("system", "assistant error: " + message.message); break;
  }
}

function bubble(turnId) {
  if (!bubbles.has(turnId)) bubbles.set(turnId, addLine("assistant", ""));
  return bubbles.get(turnId);
}

function addLine(kind, text, tag) {
  const li = document.createElement("li");
  li.className = kind;
  const span = document.createElement("span");
  span.className = "text";
  span.textContent = text;
  li.appendChild(span);
  if (tag) { const t = document.createElement("span"); t.className = "tag"; t.textContent = tag; li.appendChild(t); }
  $("conversation").appendChild(li);
  scroll();
  return li;
}

function scroll() { const list = $("conversation"); list.scrollTop = list.scrollHeight; }

// --- what the user does ----------------------------------------------------------------------------

function send(message) {
  if (call.channel && call.channel.readyState === "open") call.channel.send(JSON.stringify(message));
}

function sendText(text) {
  if (!text.trim()) return false;
  send({ type: "text", text });
  return true;
}

function toggleMute() {
  call.muted = !call.muted;
  for (const track of call.stream.getAudioTracks()) track.enabled = !call.muted;
  send({ type: "mute", muted: call.muted });
  $("mute").textContent = call.muted ? "Unmute" : "Mute";
}

function hangUp() {
  send({ type: "hangup" });
  cleanUp();
  setStatus("call ended");
}

function cleanUp() {
  if (call.pc) call.pc.close();
  if (call.stream) for (const track of call.stream.getTracks()) track.stop();
  $("mute").disabled = true; $("hangup").disabled = true; $("text").disabled = true; $("send").disabled = true;
}

$("start").addEventListener("click", () => start().catch((error) => fail(error.message)));
$("mute").addEventListener("click", toggleMute);
$("hangup").addEventListener("click", hangUp);
$("typed").addEventListener("submit", (event) => {
  event.preventDefault();
  if (sendText($("text").value)) $("text").value = "";
});
if (params.get("autostart") === "1") start().catch((error) => fail(error.message));
