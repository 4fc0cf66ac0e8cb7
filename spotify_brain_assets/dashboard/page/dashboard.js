// Spotify Brain dashboard: renders dashboard_data.json into the page. No libraries, works offline.
"use strict";

const PALETTE = ["#1db954", "#4ea8f2", "#f2c14e", "#e5534b", "#b07cff", "#3fd0c9", "#ff8c42", "#c3e88d",
  "#ff6fb5", "#8aa1ff", "#d4a373", "#7bdff2", "#f7aef8", "#a0c4ff", "#caffbf"];
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

const pct = (p) => (p === null || p === undefined ? "–" : `${Math.round(p * 100)}%`);
const num = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
const colour = (id) => (id === null || id === undefined || id < 0 ? "#666" : PALETTE[id % PALETTE.length]);

function localTime(iso, tz, withDate = false) {
  if (!iso) return "never";
  const options = { hour: "2-digit", minute: "2-digit", timeZone: tz };
  if (withDate) Object.assign(options, { month: "short", day: "numeric" });
  try { return new Date(iso).toLocaleString(undefined, options); } catch (e) { return iso; }
}

function ago(iso, now) {
  if (!iso) return "never";
  const minutes = Math.round((now - new Date(iso)) / 60000);
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)} h ago`;
  return `${Math.round(minutes / 1440)} days ago`;
}

function empty(container, message) {
  container.replaceChildren(el("p", { class: "muted empty", text: message }));
}

function barRows(rows) {
  const box = el("div");
  for (const row of rows) {
    box.append(el("div", { class: "bar-row" },
      el("span", { class: "label", title: row.label, text: row.label }),
      el("div", { class: "bar" }, el("span", { style: `width:${Math.max(0, Math.min(1, row.value)) * 100}%;background:${row.colour || ""}` })),
      el("span", { text: pct(row.value) })));
  }
  return box;
}

function renderBanners(data, now) {
  const box = document.getElementById("banners");
  box.replaceChildren();
  if (data.is_demo) {
    box.append(el("div", { class: "banner demo", id: "demo-banner",
      text: "Demo data: this dashboard shows the built-in simulated listener, not a real Spotify account." }));
  }
  if (data.freshness && data.freshness.stale) {
    box.append(el("div", { class: "banner stale", id: "stale-banner",
      text: `Stale data: the last successful ingestion was ${ago(data.freshness.last_ingestion, now)}.` }));
  }
}

function renderNextMood(data) {
  const body = document.querySelector("#next-mood .body");
  const p = data.next_prediction;
  if (!p || !p.available) return empty(body, (p && p.note) || "No prediction yet: there is no listening session to continue.");
  const probs = [...p.probabilities].sort((a, b) => b.probability - a.probability);
  body.replaceChildren(...[
    el("div", { class: "big", id: "next-mood-label", text: p.mood_label }),
    el("p", { class: "muted", text: `confidence ${pct(p.confidence)}` }),
    p.note ? el("p", { class: "muted note", text: p.note }) : null,
    barRows(probs.map((x) => ({ label: x.mood_label, value: x.probability, colour: colour(x.mood_cluster_id) }))),
  ].filter(Boolean));
  if (p.recommended_tracks && p.recommended_tracks.length) {
    const list = el("ul", { class: "muted" });
    for (const t of p.recommended_tracks.slice(0, 5)) list.append(el("li", { text: `${t.track_name} — ${t.artist_name}` }));
    body.append(el("p", { text: "Tracks for that mood:" }), list);
  }
}

function renderSessionHours(data) {
  const body = document.querySelector("#session-hours .body");
  const probs = data.session_probs || {};
  const actual = data.session_actual || {};
  if (!Object.keys(probs).length && !Object.keys(actual).length) return empty(body, "No session model yet.");
  const W = 480, H = 170, pad = 22, bw = (W - pad * 2) / 24;
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "session start probability per hour" });
  for (let h = 0; h < 24; h++) {
    const p = probs[String(h)] ?? 0;
    const x = pad + h * bw;
    const bh = p * (H - pad * 2);
    svg.append(el("svg:rect", { x: x + 1, y: H - pad - bh, width: bw - 2, height: bh, fill: "#1db954", class: "hour-bar", "data-hour": h },
      el("svg:title", { text: `${h}:00 — ${pct(p)}` })));
    if (h % 3 === 0) svg.append(el("svg:text", { x: x + bw / 2, y: H - 6, "text-anchor": "middle", text: String(h) }));
  }
  const pts = [];
  for (let h = 0; h < 24; h++) {
    const a = actual[String(h)];
    if (a !== undefined) pts.push(`${pad + h * bw + bw / 2},${H - pad - a * (H - pad * 2)}`);
  }
  if (pts.length) svg.append(el("svg:polyline", { points: pts.join(" "), fill: "none", stroke: "#f2c14e", "stroke-width": 2 }));
  const top = (data.top_hours || []).map((t) => `${t.hour}:00 (${pct(t.probability)})`).join(", ");
  body.replaceChildren(svg,
    el("div", { class: "legend" }, el("span", {}, el("i", { style: "background:#1db954" }), "today's probability"),
      el("span", {}, el("i", { style: "background:#f2c14e" }), "historical share of session starts")),
    el("p", { class: "muted", text: top ? `Most likely: ${top}` : "" }));
}

function renderMoodMap(data) {
  const body = document.querySelector("#mood-map .body");
  const clusters = data.mood_clusters || [];
  if (!clusters.length) return empty(body, "No mood clusters yet: they are fitted by full_retrain.");
  const W = 360, H = 300, pad = 30;
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "mood clusters by valence and energy" });
  svg.append(el("svg:rect", { x: pad, y: 8, width: W - pad - 8, height: H - pad - 8, fill: "none", stroke: "#2a2f3a" }));
  svg.append(el("svg:text", { x: W / 2, y: H - 6, "text-anchor": "middle", text: "valence →" }));
  svg.append(el("svg:text", { x: 10, y: H / 2, transform: `rotate(-90 10 ${H / 2})`, "text-anchor": "middle", text: "energy →" }));
  const maxShare = Math.max(...clusters.map((c) => c.share), 0.01);
  for (const c of clusters) {
    const x = pad + c.centroid.valence * (W - pad - 8);
    const y = 8 + (1 - c.centroid.energy) * (H - pad - 8);
    const r = 8 + 22 * Math.sqrt(c.share / maxShare);
    svg.append(el("svg:circle", { cx: x, cy: y, r, fill: colour(c.cluster_id), "fill-opacity": 0.55, class: "cluster-dot" },
      el("svg:title", { text: `${c.label}: ${c.plays} plays (${pct(c.share)})` })));
    svg.append(el("svg:text", { x, y: y + r + 12, "text-anchor": "middle", class: "cluster-label", text: c.label.replace(/ energy/, "") }));
  }
  body.replaceChildren(svg);
}

function renderTrajectory(data) {
  const body = document.querySelector("#trajectory .body");
  const points = data.mood_trajectory || [];
  if (!points.length) return empty(body, "No plays in the last 24 hours.");
  const W = 480, H = 170, pad = 24;
  const end = new Date(data.as_of || data.generated_at).getTime(), start = end - 24 * 3600 * 1000;
  const xOf = (t) => pad + ((new Date(t).getTime() - start) / (end - start)) * (W - pad * 2);
  const yOf = (v) => 8 + (1 - v) * (H - pad - 8);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "valence and energy over the last 24 hours" });
  for (const [key, stroke] of [["valence", "#f2c14e"], ["energy", "#4ea8f2"]]) {
    svg.append(el("svg:polyline", { points: points.map((p) => `${xOf(p.time)},${yOf(p[key])}`).join(" "), fill: "none", stroke, "stroke-width": 2 }));
    for (const p of points) svg.append(el("svg:circle", { cx: xOf(p.time), cy: yOf(p[key]), r: 2.5, fill: stroke, class: `traj-${key}` }));
  }
  svg.append(el("svg:text", { x: pad, y: H - 4, text: "24 h ago" }));
  svg.append(el("svg:text", { x: W - pad, y: H - 4, "text-anchor": "end", text: "now" }));
  body.replaceChildren(svg, el("div", { class: "legend" },
    el("span", {}, el("i", { style: "background:#f2c14e" }), "valence"), el("span", {}, el("i", { style: "background:#4ea8f2" }), "energy")));
}

function cover(track) {
  const fallback = () => el("div", { class: "cover placeholder", style: `background:${colour(track.mood_cluster_id)}`, text: (track.track_name || "?").slice(0, 1) });
  if (!track.image_url) return fallback();
  const img = el("img", { class: "cover", alt: "", loading: "lazy", src: track.image_url });
  img.addEventListener("error", () => img.replaceWith(fallback()));
  return img;
}

function renderRecent(data) {
  const body = document.querySelector("#recent .body");
  const tracks = data.recently_played || [];
  if (!tracks.length) return empty(body, "Nothing played yet.");
  const list = el("ul", { class: "tracks" });
  for (const t of tracks) {
    list.append(el("li", { class: "track" }, cover(t), el("div", { class: "meta" },
      el("div", { text: t.track_name }), el("div", { class: "muted", text: t.artist_name }),
      el("div", { class: "muted", text: `${localTime(t.played_at, data.timezone, true)} · ${t.mood_label || "no mood yet"}` }))));
  }
  body.replaceChildren(list);
}

function renderMetrics(data) {
  const body = document.querySelector("#metrics .body");
  const rows = [];
  for (const [name, cmp] of [["Mood model", data.baselines.mood], ["Session model", data.baselines.session]]) {
    if (!cmp) continue;
    rows.push(el("tr", {}, el("th", { colspan: 3, text: `${name} · ${cmp.metric}` })));
    rows.push(el("tr", {}, el("td", { text: "model" }), el("td", { text: num(cmp.model) }), el("td")));
    for (const [baseline, value] of Object.entries(cmp.baselines)) {
      const beats = cmp.beats[baseline];
      rows.push(el("tr", { class: "baseline-row" }, el("td", { text: baseline.replaceAll("_", " ") }), el("td", { text: num(value) }),
        el("td", { class: beats ? "ok" : "no", text: beats === null || beats === undefined ? "–" : beats ? "beaten" : "not beaten" })));
    }
  }
  if (!rows.length) return empty(body, "No evaluation yet: models are trained by full_retrain.");
  body.replaceChildren(el("table", {}, el("tbody", {}, ...rows)));
}

function renderDrift(data) {
  const body = document.querySelector("#drift .body");
  const drift = data.drift;
  if (!drift || !drift.available) return empty(body, "No drift report yet.");
  if (!drift.flags.length) return body.replaceChildren(el("p", { class: "ok", text: "No drift: the last 7 days look like the 30 before." }));
  const list = el("ul");
  for (const f of drift.flags) {
    list.append(el("li", { class: "flag drift-flag", text: `${f.metric.replaceAll("_", " ")}: ${f.change === null ? "" : (f.change > 0 ? "+" : "") + Math.round(f.change * 100) + "%"} ${f.detail || ""}` }));
  }
  body.replaceChildren(list);
}

function renderFreshness(data, now) {
  const body = document.querySelector("#freshness .body");
  const f = data.freshness;
  const rows = [
    ["Last play", `${localTime(f.last_play, data.timezone, true)} (${ago(f.last_play, now)})`],
    ["Last ingestion", `${localTime(f.last_ingestion, data.timezone, true)} (${ago(f.last_ingestion, now)})`],
    ["Plays waiting for audio features", String(f.pending_features)],
    ["Plays without audio features", String(f.unavailable_features)],
  ];
  for (const [kind, m] of [["Mood model", data.models.mood], ["Session model", data.models.session]]) {
    rows.push([kind, m.available ? `${m.version} · trained ${localTime(m.trained_at, data.timezone, true)}` : (m.note || "not trained yet")]);
  }
  body.replaceChildren(el("table", {}, el("tbody", {}, ...rows.map(([k, v]) => el("tr", {}, el("td", { class: "muted", text: k }), el("td", { text: v }))))));
}

function render(data) {
  const now = new Date();
  document.getElementById("subtitle").textContent =
    `Generated ${localTime(data.generated_at, data.timezone, true)} · times in ${data.timezone}`;
  renderBanners(data, now);
  renderNextMood(data);
  renderSessionHours(data);
  renderMoodMap(data);
  renderTrajectory(data);
  renderRecent(data);
  renderMetrics(data);
  renderDrift(data);
  renderFreshness(data, now);
  document.getElementById("footer").textContent = "Spotify Brain · data refreshes every 30 minutes";
  document.body.dataset.rendered = "true";
}

function fail(message) {
  document.getElementById("banners").replaceChildren(el("div", { class: "banner error", text: message }));
  document.body.dataset.rendered = "error";
}

async function load() {
  // Prefer the JSON beside the page (it may be fresher than the copy embedded when the page was written).
  try {
    const response = await fetch("dashboard_data.json", { cache: "no-store" });
    if (response.ok) return render(await response.json());
  } catch (e) { /* opened from disk, or no JSON beside the page: use the embedded copy */ }
  const embedded = document.getElementById("embedded-data").textContent.trim();
  if (!embedded || embedded.startsWith("/*")) return fail("No dashboard data found beside this page.");
  try { render(JSON.parse(embedded)); } catch (e) { fail(`The dashboard data could not be read: ${e.message}`); }
}

load();
