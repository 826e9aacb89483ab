// ovoz web page: uploads a file (or a microphone recording) to /v1/audio/transcriptions with stream=true,
// shows the text as transcript.text.delta events arrive and the timed segments (transcript.text.segment events,
// sent because the form asks for timestamp_granularities[]=segment), then offers txt/srt/vtt downloads
// (subtitles formatted by the server's /v1/ovoz/subtitles, the same writer as the API's srt/vtt).
"use strict";

const $ = (id) => document.getElementById(id);
const fileInput = $("file"), transcribeButton = $("transcribe"), recordButton = $("record");
const keyInput = $("api-key"), statusLine = $("status"), transcriptBox = $("transcript");
const segmentRows = document.querySelector("#segments tbody");
let recorder = null, busy = false;

keyInput.value = localStorage.getItem("ovoz-api-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("ovoz-api-key", keyInput.value));
fileInput.addEventListener("change", () => { transcribeButton.disabled = busy || !fileInput.files.length; });
transcribeButton.addEventListener("click", () => {
  if (fileInput.files.length) transcribe(fileInput.files[0], fileInput.files[0].name);
});
recordButton.addEventListener("click", toggleRecording);

function headers() {
  const key = keyInput.value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

function setStatus(text) { statusLine.textContent = text; }

function seconds(value) {
  const minutes = Math.floor(value / 60);
  return minutes + ":" + (value - 60 * minutes).toFixed(2).padStart(5, "0");
}

function resetOutput() {
  transcriptBox.textContent = "";
  segmentRows.replaceChildren();
  for (const format of ["txt", "srt", "vtt"]) {
    const link = $("download-" + format);
    if (link.href) URL.revokeObjectURL(link.href);
    link.removeAttribute("href");
    link.classList.add("disabled");
  }
}

function addSegment(segment) {
  const row = document.createElement("tr");
  for (const value of [seconds(segment.start), seconds(segment.end), segment.text]) {
    const cell = document.createElement("td");
    cell.textContent = value;
    row.appendChild(cell);
  }
  segmentRows.appendChild(row);
}

function offer(format, text, name) {
  const link = $("download-" + format);
  link.href = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
  link.download = name + "." + format;
  link.classList.remove("disabled");
}

async function transcribe(blob, filename) {
  busy = true;
  transcribeButton.disabled = recordButton.disabled = true;
  resetOutput();
  setStatus("Uploading " + filename + " ...");
  const form = new FormData();
  form.append("file", blob, filename);
  form.append("model", "ovoz");
  form.append("stream", "true");
  form.append("timestamp_granularities[]", "segment");
  const segments = [];
  const started = performance.now();
  try {
    const response = await fetch("/v1/audio/transcriptions", { method: "POST", body: form, headers: headers() });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || response.status + " " + response.statusText);
    }
    setStatus("Transcribing ...");
    let text = "";
    for await (const event of serverSentEvents(response)) {
      if (event.type === "transcript.text.delta") {
        text += event.delta;
        transcriptBox.textContent = text;
      } else if (event.type === "transcript.text.segment") {
        segments.push(event);
        addSegment(event);
      } else if (event.type === "transcript.text.done") {
        text = event.text;
        transcriptBox.textContent = text;
      } else if (event.error) {
        throw new Error(event.error.message);
      }
    }
    const name = filename.replace(/\.[^.]*$/, "") || "transcript";
    offer("txt", text ? text + "\n" : "", name);
    for (const format of ["srt", "vtt"]) {
      const response = await fetch("/v1/ovoz/subtitles", {
        method: "POST", headers: { ...headers(), "Content-Type": "application/json" },
        body: JSON.stringify({ format, segments }),
      });
      if (response.ok) offer(format, await response.text(), name);
    }
    const took = ((performance.now() - started) / 1000).toFixed(1);
    setStatus("Done: " + segments.length + " segment(s) in " + took + " s.");
  } catch (error) {
    setStatus("Error: " + error.message);
  } finally {
    busy = false;
    transcribeButton.disabled = !fileInput.files.length;
    recordButton.disabled = false;
  }
}

async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart()).join("\n");
      if (data && data !== "[DONE]") yield JSON.parse(data);
    }
  }
}

async function toggleRecording() {
  if (recorder) { recorder.stop(); return; }
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    setStatus("This browser cannot record here (the page needs https or localhost).");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    setStatus("No microphone: " + error.message);
    return;
  }
  const pieces = [];
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (event) => pieces.push(event.data));
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((track) => track.stop());
    const type = recorder.mimeType || "audio/webm";
    recorder = null;
    recordButton.textContent = "Record";
    recordButton.classList.remove("recording");
    const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
    transcribe(new Blob(pieces, { type }), "recording." + extension);
  });
  recorder.start();
  recordButton.textContent = "Stop";
  recordButton.classList.add("recording");
  setStatus("Recording ... press Stop when done.");
}
