// The sensorhub dashboard: one EventSource on /ui/events, a "snapshot"
// first (the latest state and the charts' history), then a "state" per
// sample. Everything is drawn with the DOM and inline SVG; text from the
// server is only ever set as textContent.
"use strict";

(function () {
  const HISTORY_SECONDS = 300;
  const SERIES = [
    { key: "accepted_per_sec", title: "accepted / s", rate: true },
    { key: "refused_per_sec", title: "refused / s", rate: true },
    { key: "in_flight", title: "submissions in flight" },
    { key: "queued", title: "tests queued" },
    { key: "outbox_backlog", title: "outbox backlog" },
    { key: "events_pending", title: "SENSOR_EVENTS pending" },
    { key: "kafka_per_sec", title: "Kafka delivered / s", rate: true },
    { key: "dead_letters", title: "dead letters" },
  ];
  const SVG = "http://www.w3.org/2000/svg";
  let history = [];

  const $ = (sel) => document.querySelector(sel);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fmt(v, rate) {
    if (v === null || v === undefined) return "–";
    if (rate) return v >= 100 ? Math.round(v).toLocaleString() : v.toFixed(1);
    return Math.round(v).toLocaleString();
  }

  function ms(v) {
    if (!v) return "–";
    return v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(v < 10 ? 2 : 0) + " ms";
  }

  function clock(t) {
    const d = new Date(t);
    return isNaN(d) ? "" : d.toLocaleTimeString();
  }

  function renderRoles(roles) {
    const box = $("#roles");
    box.replaceChildren(...roles.map((r) => {
      const inst = r.instances.length
        ? r.instances.map((i) => el("li", { "data-instance": i.id, "data-status": i.status },
          el("span", {}, i.id.length > 16 ? i.id.slice(0, 16) + "…" : i.id, i.version ? el("span", { class: "muted" }, " " + i.version) : null),
          el("span", { class: "pill", "data-status": i.status }, i.status)))
        : [el("li", { class: "muted" }, "no instance answers")];
      const deps = Object.entries(r.dependencies || {}).sort(([a], [b]) => a.localeCompare(b))
        .map(([name, d]) => el("li", { title: d.last_error || "" },
          el("span", {}, name), el("span", { class: "pill", "data-status": d.status }, d.status)));
      return el("div", { class: "card", "data-role": r.name, "data-status": r.status },
        el("h3", {}, r.name, el("span", { class: "pill", "data-status": r.status }, r.status)),
        el("div", { class: "label" }, "instances (" + r.instances.length + ")"),
        el("ul", {}, ...inst),
        deps.length ? el("div", { class: "label" }, "dependencies") : null,
        deps.length ? el("ul", {}, ...deps) : null);
    }));
  }

  function renderBreakers(breakers) {
    const rows = breakers.map((b) => el("tr", { "data-breaker": b.name, "data-state": b.state },
      el("td", {}, b.name),
      el("td", {}, el("span", { class: "pill", "data-state": b.state }, b.state)),
      el("td", { class: "num" }, fmt(b.requests)),
      el("td", { class: "num" }, fmt(b.total_successes)),
      el("td", { class: "num" }, fmt(b.total_failures)),
      el("td", { class: "num" }, fmt(b.consecutive_failures))));
    $("#breakers tbody").replaceChildren(...rows);
  }

  // The x axis spans the history the page has, from one minute up to
  // HISTORY_SECONDS, so that a page just opened has charts to read.
  function span(now) {
    const oldest = history.length ? Date.parse(history[0].at) : now;
    return Math.min(Math.max((now - oldest) / 1000, 60), HISTORY_SECONDS);
  }

  function chartPath(points, key, now, w, h, top) {
    let d = "", area = "", open = false, first = 0, last = 0;
    const seconds = span(now);
    for (const p of points) {
      const v = p[key];
      const x = w - ((now - Date.parse(p.at)) / 1000 / seconds) * w;
      if (x < 0) continue;
      if (v === null || v === undefined) {
        if (open) area += "L" + last.toFixed(1) + "," + h + "L" + first.toFixed(1) + "," + h + "Z";
        open = false;
        continue;
      }
      const y = h - (v / top) * (h - 2) - 1;
      if (!open) { d += "M"; area += "M" + x.toFixed(1) + "," + h + "L"; first = x; open = true; } else { d += "L"; area += "L"; }
      d += x.toFixed(1) + "," + y.toFixed(1);
      area += x.toFixed(1) + "," + y.toFixed(1);
      last = x;
    }
    if (open) area += "L" + last.toFixed(1) + "," + h + "L" + first.toFixed(1) + "," + h + "Z";
    return [d, area];
  }

  function renderFlow(latest) {
    const box = $("#flow");
    if (!box.children.length) {
      for (const s of SERIES) {
        const svg = document.createElementNS(SVG, "svg");
        svg.setAttribute("viewBox", "0 0 300 56");
        svg.setAttribute("preserveAspectRatio", "none");
        const area = document.createElementNS(SVG, "path");
        area.setAttribute("class", "area");
        const line = document.createElementNS(SVG, "path");
        line.setAttribute("class", "line");
        svg.append(area, line);
        box.append(el("div", { class: "chart", "data-series": s.key },
          el("div", { class: "head" }, el("span", { class: "title" }, s.title), el("span", { class: "value" }, "–")),
          svg, el("div", { class: "scale" }, "")));
      }
    }
    const now = latest ? Date.parse(latest.at) : Date.now();
    for (const s of SERIES) {
      const c = box.querySelector('[data-series="' + s.key + '"]');
      const v = latest ? latest[s.key] : null;
      c.dataset.value = v === null || v === undefined ? "" : String(v);
      c.querySelector(".value").textContent = fmt(v, s.rate);
      let top = 0;
      for (const p of history) if (p[s.key] > top) top = p[s.key];
      top = Math.max(top, 1);
      const [d, area] = chartPath(history, s.key, now, 300, 56, top);
      const paths = c.querySelectorAll("path");
      paths[0].setAttribute("d", area);
      paths[1].setAttribute("d", d);
      c.querySelector(".scale").textContent = "last " + Math.round(span(now)) + " s · max " + fmt(top, s.rate);
    }
  }

  function renderLatency(lat) {
    $("#latency-window").textContent = "(last " + lat.window_seconds + " s)";
    const row = (name, p) => el("tr", { "data-latency": name },
      el("td", {}, name), el("td", { class: "num" }, fmt(p.count)),
      el("td", { class: "num" }, ms(p.p50_ms)), el("td", { class: "num" }, ms(p.p90_ms)), el("td", { class: "num" }, ms(p.p99_ms)));
    $("#latency tbody").replaceChildren(
      row("acceptance (edge: request to 202)", lat.acceptance),
      row("completion (accepted to ended)", lat.completion));
  }

  function renderList(sel, items, empty, line) {
    const ol = $(sel);
    ol.replaceChildren(...(items.length ? items.map(line) : [el("li", { class: "empty" }, empty)]));
  }

  function render(st) {
    if (!st) return;
    const natsDown = !st.edge.nats_connected;
    $("#banner-nats").hidden = !natsDown;
    $("#nats-status").textContent = st.edge.nats_status;
    document.body.dataset.nats = natsDown ? "down" : "up";
    const overall = $("#overall");
    overall.textContent = natsDown ? "edge without NATS" : st.status || "unknown";
    overall.dataset.status = natsDown ? "down" : st.status;
    $("#updated").textContent = "updated " + clock(st.at);
    renderRoles(st.roles || []);
    renderBreakers(st.breakers || []);
    renderFlow(st.flow);
    renderLatency(st.latency);
    renderList("#supervision", st.supervision || [], "no supervision event since the roles started", (e) =>
      el("li", { "data-actor": e.actor, "data-directive": e.directive },
        el("time", {}, clock(e.at)), el("span", { class: "what" }, e.actor), " " + e.directive +
        (e.restarts ? " (restart " + e.restarts + ")" : "") + ": ", e.reason));
    renderList("#transitions", st.transitions || [], "no breaker has changed state", (t) =>
      el("li", { "data-breaker": t.breaker, "data-to": t.to },
        el("time", {}, clock(t.at)), el("span", { class: "what" }, t.breaker), " " + t.from + " → " + t.to));
  }

  function trim() {
    if (!history.length) return;
    const newest = Date.parse(history[history.length - 1].at);
    while (history.length && newest - Date.parse(history[0].at) > HISTORY_SECONDS * 1000) history.shift();
  }

  function connect() {
    const es = new EventSource("events");
    es.addEventListener("open", () => { $("#banner-stream").hidden = true; document.body.dataset.stream = "open"; });
    es.addEventListener("error", () => { $("#banner-stream").hidden = false; document.body.dataset.stream = "lost"; });
    es.addEventListener("snapshot", (ev) => {
      const snap = JSON.parse(ev.data);
      history = snap.history || [];
      trim();
      render(snap.state);
    });
    es.addEventListener("state", (ev) => {
      const st = JSON.parse(ev.data);
      history.push(st.flow);
      trim();
      render(st);
      document.body.dataset.samples = String((Number(document.body.dataset.samples) || 0) + 1);
    });
  }

  renderFlow(null);
  connect();
})();
