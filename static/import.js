// Import page: drag and drop (or choose) photos, ZIPs and CSVs; each file is sent on its own
// with XMLHttpRequest so its upload progress can be shown, then its outcome is listed.
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form) return;
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("files");
  var list = document.getElementById("upload-list");
  var summary = document.getElementById("upload-summary");
  var t = document.getElementById("import-texts").dataset;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var maxBytes = parseInt(form.dataset.maxBytes, 10) || 0;
  var counts = { accepted: 0, duplicate: 0, rejected: 0 };
  var queue = [];
  var running = 0;
  var PARALLEL = 2;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
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
      var li = el("li", "finding");
      li.appendChild(el("span", "finding-code", w.code));
      li.appendChild(document.createTextNode(" " + w.message));
      box.appendChild(li);
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
      target.appendChild(el("p", "outcome-message", line.message || line.code));
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

  function showReport(item, report) {
    var lines = (report && report.items) || [];
    if (lines.length === 1 && item.kind === "file") {
      showLine(item.li, lines[0]);
    } else {
      var sub = el("ol", "upload-sublist");
      lines.forEach(function (line) {
        var li = el("li", "upload-item");
        li.appendChild(el("p", "upload-name", line.filename));
        showLine(li, line);
        sub.appendChild(li);
      });
      item.li.appendChild(sub);
    }
  }

  function refuse(item, message) {
    showLine(item.li, { outcome: "rejected", message: message });
  }

  function finish(item, xhr) {
    item.progress.value = 100;
    item.state.textContent = "";
    var body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
    if (xhr.status === 201 && body) {
      showReport(item, body);
    } else if (body && body.error) {
      var report = body.error.details && body.error.details.report;
      if (report && report.items && report.items.length) showReport(item, report);
      else refuse(item, body.error.message);
    } else {
      refuse(item, t.failed + " (" + xhr.status + ")");
    }
    updateSummary();
  }

  function send(item) {
    running += 1;
    var data = new FormData();
    var url = form.dataset.importsUrl;
    if (item.kind === "file") {
      url = form.dataset.imagesUrl;
      ["code", "product", "alt"].forEach(function (name) {
        var value = form.elements[name].value.trim();
        if (value) data.append(name, value);
      });
    }
    data.append(item.kind, item.file, item.file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        item.progress.value = Math.round((event.loaded / event.total) * 100);
      }
    });
    xhr.upload.addEventListener("load", function () {
      item.progress.value = 100;
      item.state.textContent = t.processing;
    });
    xhr.addEventListener("load", function () { finish(item, xhr); next(); });
    xhr.addEventListener("error", function () {
      item.state.textContent = "";
      refuse(item, t.failed);
      updateSummary();
      next();
    });
    item.state.textContent = t.uploading;
    xhr.send(data);
  }

  function next() {
    running = Math.max(0, running - 1);
    pump();
  }

  function pump() {
    while (running < PARALLEL && queue.length) send(queue.shift());
  }

  function add(files) {
    Array.prototype.forEach.call(files, function (file) {
      var li = el("li", "upload-item");
      li.appendChild(el("p", "upload-name", file.name));
      var progress = el("progress", "upload-progress");
      progress.max = 100;
      progress.value = 0;
      progress.setAttribute("aria-label", t.progress + " " + file.name);
      li.appendChild(progress);
      var state = el("span", "upload-state muted");
      li.appendChild(state);
      list.appendChild(li);
      var item = { file: file, kind: kindOf(file), li: li, progress: progress, state: state };
      if (item.kind === "file" && maxBytes && file.size > maxBytes) {
        progress.value = 100;
        refuse(item, t.tooLarge);
        updateSummary();
        return;
      }
      queue.push(item);
    });
    pump();
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
