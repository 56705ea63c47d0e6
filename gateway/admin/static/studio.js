// The recording studio's recorder: record with the microphone (MediaRecorder), listen back,
// save. Without this script, or in a browser that cannot record, the page keeps its plain
// upload form; the recorder stays hidden. Every text shown comes from the page (data-*), in the
// console's language.
(function () {
  "use strict";
  var boxes = document.querySelectorAll("[data-recorder]");
  if (!boxes.length || !window.MediaRecorder || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return;
  }
  // What the browser records in, best first: Chrome and Firefox make webm/opus, Firefox also
  // ogg/opus, Safari mp4/aac. The server checks the type it is told against the bytes it gets.
  var TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"];
  var EXTENSIONS = {"audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a"};

  function say(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, name) {
      return name in values ? values[name] : all;
    });
  }

  function chosenType() {
    for (var i = 0; i < TYPES.length; i++) {
      if (MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(TYPES[i])) { return TYPES[i]; }
    }
    return "";
  }

  boxes.forEach(function (box) {
    var form = box.closest("form");
    var buttons = {};
    box.querySelectorAll("[data-action]").forEach(function (b) { buttons[b.dataset.action] = b; });
    var status = box.querySelector("[data-status]");
    var error = box.querySelector("[data-error]");
    var maxSeconds = Number(box.dataset.maxSeconds) || 60;
    var maxBytes = Number(box.dataset.maxBytes) || 5000000;
    var recorder = null, stream = null, chunks = [], blob = null, started = 0, timer = null, audioContext = null;

    function enable(names) {
      Object.keys(buttons).forEach(function (name) { buttons[name].disabled = names.indexOf(name) < 0; });
    }
    function problem(text) {
      error.textContent = text || "";
      error.hidden = !text;
    }
    function seconds() {
      return Math.round((Date.now() - started) / 100) / 10;
    }
    function stopStream() {
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    }

    buttons.record.addEventListener("click", function () {
      problem("");
      blob = null;
      navigator.mediaDevices.getUserMedia({audio: true}).then(function (s) {
        stream = s;
        var type = chosenType();
        recorder = type ? new MediaRecorder(stream, {mimeType: type}) : new MediaRecorder(stream);
        chunks = [];
        recorder.addEventListener("dataavailable", function (e) { if (e.data && e.data.size) { chunks.push(e.data); } });
        recorder.addEventListener("stop", function () {
          clearInterval(timer);
          stopStream();
          blob = new Blob(chunks, {type: (recorder.mimeType || type || "audio/webm")});
          status.textContent = say(box.dataset.recorded, {seconds: seconds()});
          enable(["record", "play", "save"]);
          buttons.save.focus();
        });
        started = Date.now();
        recorder.start(250);
        enable(["stop"]);
        buttons.stop.focus();
        status.textContent = say(box.dataset.recording, {seconds: 0, max: maxSeconds});
        timer = setInterval(function () {
          status.textContent = say(box.dataset.recording, {seconds: Math.floor(seconds()), max: maxSeconds});
          if (seconds() >= maxSeconds && recorder.state === "recording") { recorder.stop(); }
        }, 250);
      }).catch(function () {
        stopStream();
        problem(box.dataset.noMic);
        enable(["record"]);
      });
    });

    buttons.stop.addEventListener("click", function () {
      if (recorder && recorder.state === "recording") { recorder.stop(); }
    });

    // Listening back goes through Web Audio: the console's content security policy lets media
    // come from the site itself only, so an <audio> element may not play a blob: URL.
    buttons.play.addEventListener("click", function () {
      if (!blob) { return; }
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { return; }
      audioContext = audioContext || new Context();
      blob.arrayBuffer().then(function (bytes) {
        return audioContext.decodeAudioData(bytes);
      }).then(function (buffer) {
        var source = audioContext.createBufferSource();
        source.buffer = buffer;
        source.connect(audioContext.destination);
        source.start();
      }).catch(function () {
        problem(box.dataset.failed);
      });
    });

    buttons.save.addEventListener("click", function () {
      if (!blob) { return; }
      if (blob.size > maxBytes) { problem(box.dataset.tooBig); return; }
      problem("");
      enable([]);
      status.textContent = box.dataset.saving;
      var body = new FormData(form);
      var type = blob.type.split(";")[0];
      body.set("source", "recorded");
      body.set("audio", blob, "recording." + (EXTENSIONS[type] || "webm"));
      fetch(form.action, {method: "POST", body: body, credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) {
          var json = (r.headers.get("content-type") || "").indexOf("json") >= 0;
          if (!json) { throw new Error("expired"); }
          return r.json().then(function (answer) { return {ok: r.ok, answer: answer}; });
        })
        .then(function (result) {
          if (result.ok && result.answer.next) {
            window.location.assign(result.answer.next);
            return;
          }
          status.textContent = "";
          problem(result.answer.error || box.dataset.failed);
          enable(["record", "play", "save"]);
        })
        .catch(function () {
          status.textContent = "";
          problem(box.dataset.failed);
          enable(["record", "play", "save"]);
        });
    });

    enable(["record"]);
    box.hidden = false;
  });
})();
