// Import page: drag and drop (or choose) photos, ZIPs and CSVs; each file shows its upload
// progress, then what happened to it.
//
// The photos of one drop go in one request (POST /api/v1/images with several file parts), so
// they make one import batch, in the order their names say: by product code, then the position
// the name carries (a name without one first), then the name. The server stores one code's
// files in request order and a file without a position takes the next free one, so
// "TEA-201.jpg" and "TEA-201_2.jpg" land at 1 and 2 whatever order they were dropped in.
// Photo requests run one after another (a later drop's "_3" comes after an earlier "_2");
// archives and manifests run in a lane of their own. A very large drop is split into requests
// of at most MAX_FILES files / MAX_BYTES bytes, sent in order. An archive or a manifest runs
// as an import job on the server: its line shows the counts growing until the job is done.
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form) return;
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("files");
  var list = document.getElementById("upload-list");
  var summary = document.getElementById("upload-summary");
  var texts = document.getElementById("import-texts");
  var t = texts.dataset;
  var errorTexts = JSON.parse(t.errors || "{}");
  var warningTexts = JSON.parse(t.warnings || "{}");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var maxBytes = parseInt(form.dataset.maxBytes, 10) || 0;
  var namePattern = compilePattern(form.dataset.filenamePattern || "");
  var counts = { accepted: 0, duplicate: 0, rejected: 0 };
  var MAX_FILES = 50;
  var MAX_BYTES = 200 * 1000 * 1000;
  var lanes = { photos: { queue: [], busy: false }, archives: { queue: [], busy: false } };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // ECOGRAM_FILENAME_PATTERN is a Python expression; named groups are spelt (?<name>) here.
  function compilePattern(source) {
    if (!source) return null;
    try {
      return new RegExp("^(?:" + source.replace(/\(\?P</g, "(?<")
        .replace(/\(\?P=(\w+)\)/g, "\\k<$1>") + ")$");
    } catch (e) {
      return null; // an expression JavaScript cannot read: files keep their names' order
    }
  }

  // Product code and position a file name says (as the server reads it: the base name without
  // its extension); a code typed in the form applies to every photo.
  function nameKey(file) {
    var typed = form.elements.code.value.trim();
    if (typed) return { code: typed, position: 0 };
    var name = file.name.replace(/\\/g, "/").split("/").pop();
    var stem = name.replace(/^\.+/, "").indexOf(".") >= 0
      ? name.slice(0, name.lastIndexOf(".")) : name;
    var match = namePattern && namePattern.exec(stem.trim());
    var groups = (match && match.groups) || {};
    var position = groups.position ? parseInt(groups.position, 10) : 0;
    return { code: (groups.code || "").trim(), position: position || 0 };
  }

  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

  function byName(a, b) {
    if (a.key.code !== b.key.code) return a.key.code < b.key.code ? -1 : 1;
    if (a.key.position !== b.key.position) return a.key.position - b.key.position;
    return collator.compare(a.file.name, b.file.name);
  }

  function fill(template, values) {
    var missing = false;
    var text = template.replace(/%\((\w+)\)s/g, function (_all, name) {
      if (values && values[name] !== undefined && values[name] !== null) return values[name];
      missing = true;
      return "";
    });
    return missing ? null : text;
  }

  // What a refusal says to a person: the page's sentence for its code (in the page's language),
  // else the server's own sentence (English pages), else the page's general sentence.
  function errorMessage(error) {
    var own = errorTexts[error.code];
    var text = own ? fill(own, error.details || {}) : null;
    if (text) return text;
    if (errorTexts["*"]) return errorTexts["*"];
    return error.message || t.failed;
  }

  function warningMessage(warning, record) {
    var own = warningTexts[warning.code];
    var qc = (record && record.qc) || {};
    var values = Object.assign({ long_side: Math.max(qc.width || 0, qc.height || 0) }, qc,
                               warning);
    var text = own ? fill(own, values) : null;
    return text || (warningTexts["*"] ? warningTexts["*"] : warning.message);
  }

  function updateSummary() {
    summary.textContent = t.summary
      .replace("{accepted}", counts.accepted)
      .replace("{duplicate}", counts.duplicate)
      .replace("{rejected}", counts.rejected);
  }

  function kindOf(file) {
    var name = file.name.toLowerCase();
    if (name.endsWith(".zip")) return "archive";
    if (name.endsWith(".csv")) return "manifest";
    return "file";
  }

  function findings(record) {
    var warnings = (record && record.qc && record.qc.warnings) || [];
    var box = el("ul", "findings");
    warnings.forEach(function (w) {
      box.appendChild(el("li", "finding", warningMessage(w, record)));
    });
    return warnings.length ? box : el("p", "ok-note", t.noFindings);
  }

  // One line of a report (a file, or a member of a ZIP / row of a CSV) into `target`.
  function showLine(target, line) {
    var outcome = line.outcome;
    counts[outcome] = (counts[outcome] || 0) + 1;
    target.classList.add("outcome-" + outcome);
    var head = el("p", "outcome");
    head.appendChild(el("span", "badge badge-" + outcome, t[outcome] || outcome));
    var record = line.record;
    if (record) {
      head.appendChild(document.createTextNode(" " + record.code + " · " + record.position + " "));
      var link = el("a", null, t.open);
      link.href = "/admin/images/" + record.id;
      head.appendChild(link);
    }
    if (outcome === "duplicate" && line.image_id) {
      head.appendChild(document.createTextNode(" (" + t.existing + " "));
      var dup = el("a", null, "#" + line.image_id);
      dup.href = "/admin/images/" + line.image_id;
      head.appendChild(dup);
      head.appendChild(document.createTextNode(")"));
    }
    target.appendChild(head);
    if (outcome === "rejected") {
      var message = line.text || errorMessage({ code: line.code, message: line.message,
                                                details: line.details });
      target.appendChild(el("p", "outcome-message", message));
    } else if (record) {
      var row = el("div", "outcome-record");
      var img = el("img", "outcome-thumb");
      img.src = "/admin/images/" + record.id + "/preview?w=160&v=" + record.version;
      img.alt = record.alt || record.product || record.code;
      img.width = 80;
      img.height = Math.max(1, Math.round(80 * record.height / record.width));
      row.appendChild(img);
      row.appendChild(findings(record));
      target.appendChild(row);
    }
  }

  function refuse(item, text) {
    showLine(item.li, { outcome: "rejected", text: text });
  }

  function done(item) {
    item.progress.value = 100;
    item.state.textContent = "";
  }

  // A batch report: photos get their own line (matched by their place in the request); an
  // archive or a manifest gets one line per member or row.
  function showReport(request, report) {
    var lines = report.items || [];
    if (request.lane === "photos") {
      var seen = {};
      lines.forEach(function (line) {
        var item = request.items[line.seq - 1];
        if (!item || seen[line.seq]) return;
        seen[line.seq] = true;
        showLine(item.li, line);
      });
      request.items.forEach(function (item, index) {
        if (!seen[index + 1]) refuse(item, t.failed);
      });
      return;
    }
    var sub = el("ol", "upload-sublist");
    lines.forEach(function (line) {
      var li = el("li", "upload-item");
      li.appendChild(el("p", "upload-name", line.filename));
      showLine(li, line);
      sub.appendChild(li);
    });
    request.items[0].li.appendChild(sub);
  }

  function finish(request, xhr) {
    request.items.forEach(done);
    var body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
    var report = null;
    var location = xhr.getResponseHeader("Location");
    if (xhr.status === 202 && body && location) {
      follow(request, location, body);
      return;
    }
    if (xhr.status === 201 && body) report = body;
    else if (body && body.error && body.error.details && body.error.details.report) {
      report = body.error.details.report;
    }
    if (report && report.items && report.items.length) {
      showReport(request, report);
    } else if (body && body.error) {
      var text = errorMessage(body.error);
      request.items.forEach(function (item) { refuse(item, text); });
    } else {
      request.items.forEach(function (item) { refuse(item, t.failed + " (" + xhr.status + ")"); });
    }
    updateSummary();
  }

  // An archive or manifest import runs as a job (202): poll its report, show the counts and
  // the bar growing as files land, then its lines once it is done (or why it stopped).
  var POLL_MS = 1500;
  function follow(request, location, report) {
    var item = request.items[0];
    if (report.status === "done" || report.status === "interrupted") {
      item.state.textContent = "";
      if (report.items && report.items.length) showReport(request, report);
      if (report.status === "interrupted") refuse(item, report.reason || t.failed);
      updateSummary();
      return;
    }
    var landed = report.accepted + report.duplicate + report.rejected;
    item.progress.value = report.files ? Math.round(landed / report.files * 100) : 0;
    item.state.textContent = t.processing + " " + t.summary
      .replace("{accepted}", report.accepted)
      .replace("{duplicate}", report.duplicate)
      .replace("{rejected}", report.rejected) +
      (report.files ? " (" + landed + "/" + report.files + ")" : "");
    setTimeout(function () {
      var poll = new XMLHttpRequest();
      poll.open("GET", location);
      poll.setRequestHeader("Accept", "application/json");
      poll.addEventListener("load", function () {
        var next = null;
        try { next = JSON.parse(poll.responseText); } catch (e) { next = null; }
        if (poll.status === 200 && next) follow(request, location, next);
        else refuse(item, t.failed + " (" + poll.status + ")");
      });
      poll.addEventListener("error", function () { follow(request, location, report); });
      poll.send();
    }, POLL_MS);
  }

  function send(request) {
    var data = new FormData();
    var url = form.dataset.importsUrl;
    if (request.lane === "photos") {
      url = form.dataset.imagesUrl;
      ["code", "product", "alt"].forEach(function (name) {
        var value = form.elements[name].value.trim();
        if (value) data.append(name, value);
      });
    }
    request.items.forEach(function (item) {
      data.append(item.kind, item.file, item.file.name);
    });
    var sizes = request.items.map(function (item) { return item.file.size; });
    var whole = sizes.reduce(function (a, b) { return a + b; }, 0) || 1;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    // Archives and manifests run as jobs: 202 at once, then their progress (follow).
    if (request.lane !== "photos") xhr.setRequestHeader("Prefer", "respond-async");
    // The parts go in order: each file's bar follows its own share of the bytes sent.
    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      var sent = event.loaded / event.total * whole;
      var start = 0;
      request.items.forEach(function (item, index) {
        var size = sizes[index] || 1;
        var part = Math.max(0, Math.min(1, (sent - start) / size));
        item.progress.value = Math.round(part * 100);
        start += sizes[index];
      });
    });
    xhr.upload.addEventListener("load", function () {
      request.items.forEach(function (item) {
        item.progress.value = 100;
        item.state.textContent = t.processing;
      });
    });
    xhr.addEventListener("load", function () { finish(request, xhr); next(request.lane); });
    xhr.addEventListener("error", function () {
      request.items.forEach(function (item) { done(item); refuse(item, t.failed); });
      updateSummary();
      next(request.lane);
    });
    request.items.forEach(function (item) { item.state.textContent = t.uploading; });
    xhr.send(data);
  }

  function next(name) {
    lanes[name].busy = false;
    pump(name);
  }

  function pump(name) {
    var lane = lanes[name];
    if (lane.busy || !lane.queue.length) return;
    lane.busy = true;
    send(lane.queue.shift());
  }

  function line(item) {
    var li = el("li", "upload-item");
    li.appendChild(el("p", "upload-name", item.file.name));
    var progress = el("progress", "upload-progress");
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute("aria-label", t.progress + " " + item.file.name);
    li.appendChild(progress);
    var state = el("span", "upload-state muted");
    li.appendChild(state);
    list.appendChild(li);
    item.li = li;
    item.progress = progress;
    item.state = state;
  }

  function add(files) {
    var photos = [];
    Array.prototype.forEach.call(files, function (file) {
      var item = { file: file, kind: kindOf(file) };
      if (item.kind === "file") {
        item.key = nameKey(file);
        photos.push(item);
      } else {
        line(item);
        lanes.archives.queue.push({ lane: "archives", items: [item] });
      }
    });
    photos.sort(byName);
    var batch = [];
    var bytes = 0;
    photos.forEach(function (item) {
      line(item);
      if (maxBytes && item.file.size > maxBytes) {
        done(item);
        refuse(item, t.tooLarge);
        updateSummary();
        return;
      }
      if (batch.length && (batch.length >= MAX_FILES || bytes + item.file.size > MAX_BYTES)) {
        lanes.photos.queue.push({ lane: "photos", items: batch });
        batch = [];
        bytes = 0;
      }
      batch.push(item);
      bytes += item.file.size;
    });
    if (batch.length) lanes.photos.queue.push({ lane: "photos", items: batch });
    pump("photos");
    pump("archives");
  }

  input.addEventListener("change", function () {
    add(input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    if (event.dataTransfer && event.dataTransfer.files) add(event.dataTransfer.files);
  });
  // The whole page accepts drops, so a near miss does not open the file in the browser.
  document.addEventListener("dragover", function (event) { event.preventDefault(); });
  document.addEventListener("drop", function (event) {
    event.preventDefault();
    if (!zone.contains(event.target) && event.dataTransfer) add(event.dataTransfer.files);
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
})();
