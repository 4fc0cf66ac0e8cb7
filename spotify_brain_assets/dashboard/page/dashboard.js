// Spotify Brain dashboard: renders dashboard_data.json into the page. No libraries, works offline.
// Times follow the browser's locale (12- or 24-hour, date order) in the listener's timezone.
"use strict";

const PALETTE = ["#1db954", "#4ea8f2", "#f2c14e", "#e5534b", "#b07cff", "#3fd0c9", "#ff8c42", "#c3e88d",
  "#ff6fb5", "#8aa1ff", "#d4a373", "#7bdff2", "#f7aef8", "#a0c4ff", "#caffbf"];
const SVG = "http://www.w3.org/2000/svg";
const RANGES = ["7d", "4w", "12m", "all"];
const state = { data: null, range: "4w", year: null };

// --- building blocks ------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

const colour = (id) => (id === null || id === undefined || id < 0 ? "#666" : PALETTE[id % PALETTE.length]);
const count = new Intl.NumberFormat();
const plays = (n) => `${count.format(n)} ${n === 1 ? "play" : "plays"}`;
const pct = (p, digits = 0) => (p === null || p === undefined ? "–" : `${(p * 100).toFixed(digits)}%`);
const signed = (p) => `${p > 0 ? "+" : ""}${Math.round(p * 100)}%`;
const short = (x) => (x === null || x === undefined ? "–" : Number(x) >= 100 ? count.format(Math.round(x)) : String(Number(Number(x).toPrecision(3))));

function duration(minutes) {
  const m = Math.round(minutes);
  if (m < 60) return `${m} min`;
  if (m < 48 * 60) return `${Math.floor(m / 60)} h ${m % 60} min`;
  return `${count.format(Math.round(m / 60))} hours`;
}

// one set of formats for the whole page: the browser's locale, the listener's timezone
const F = {};
function setFormats(tz) {
  const make = (options, zone = tz) => {
    try { return new Intl.DateTimeFormat(undefined, { ...options, timeZone: zone }); } catch (e) { return new Intl.DateTimeFormat(undefined, options); }
  };
  F.time = make({ hour: "numeric", minute: "2-digit" });
  F.minute = new Intl.DateTimeFormat("en-US", { minute: "numeric", timeZone: make({}).resolvedOptions().timeZone });
  F.dayTime = make({ month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
  F.date = make({ year: "numeric", month: "short", day: "numeric" });
  // wall-clock values that are not instants (an hour of the day, a calendar day) are formatted in UTC
  F.hour = make({ hour: "numeric" }, "UTC");
  F.hourMinute = make({ hour: "numeric", minute: "2-digit" }, "UTC");
  F.day = make({ weekday: "short", year: "numeric", month: "short", day: "numeric" }, "UTC");
  F.dayShort = make({ month: "short", day: "numeric" }, "UTC");
  F.month = make({ month: "short" }, "UTC");
  F.monthLong = make({ month: "long" }, "UTC");
  F.weekday = make({ weekday: "short" }, "UTC");
}
const at = (iso, format = F.dayTime) => (iso ? format.format(new Date(iso)) : "never");
const hourLabel = (h) => F.hour.format(Date.UTC(2000, 0, 1, h));
const hourMinute = (h) => F.hourMinute.format(Date.UTC(2000, 0, 1, h));
const dayOf = (ymd) => { const [y, m, d] = ymd.split("-").map(Number); return Date.UTC(y, m - 1, d); };

function ago(iso, now) {
  if (!iso) return "never";
  const minutes = Math.round((now - new Date(iso)) / 60000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)} h ago`;
  return `${Math.round(minutes / 1440)} days ago`;
}

function put(container, ...children) {
  container.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
}

function empty(container, message) {
  put(container, el("p", { class: "muted empty", text: message }));
}

function moodName(label, attrs = {}) {
  return el("span", { class: "mood-name", "data-full": label, ...attrs, text: label });
}

function cover(item, id) {
  const fallback = () => el("div", { class: "cover placeholder", style: `background:${colour(id)}`, text: (item.track_name || item.artist_name || "?").slice(0, 1) });
  if (!item.image_url) return fallback();
  const img = el("img", { class: "cover", alt: "", loading: "lazy", src: item.image_url });
  img.addEventListener("error", () => img.replaceWith(fallback()));
  return img;
}

function tabs(container, keys, labelOf, selected, onSelect) {
  container.replaceChildren(...keys.map((key) => {
    const button = el("button", { type: "button", role: "tab", "aria-selected": String(key === selected), "data-key": key, text: labelOf(key) });
    button.addEventListener("click", () => onSelect(key));
    return button;
  }));
}

// --- tooltips: on hover with a mouse, on tap with a finger ----------------------------------------

function setupTooltip() {
  const tip = el("div", { id: "tooltip", role: "tooltip" });
  tip.hidden = true;
  document.body.append(tip);
  const place = (x, y) => {
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = `${Math.max(4, Math.min(x + 12, window.innerWidth - w - 4))}px`;
    tip.style.top = `${y + 16 + h > window.innerHeight ? Math.max(4, y - h - 10) : y + 16}px`;
  };
  let byTouch = false;
  const show = (target, x, y, touch = false) => { tip.textContent = target.getAttribute("data-tip"); tip.hidden = false; byTouch = touch; place(x, y); };
  const targetOf = (e) => e.target.closest && e.target.closest("[data-tip]");
  // a mouse shows the tooltip of whatever it is over; a finger shows it on tap and hides it on a tap elsewhere
  for (const type of ["pointerover", "pointermove"]) {
    document.addEventListener(type, (e) => {
      if (e.pointerType === "touch") return;
      const target = targetOf(e);
      if (target) show(target, e.clientX, e.clientY); else tip.hidden = true;
    });
  }
  document.addEventListener("pointerleave", (e) => { if (e.pointerType !== "touch") tip.hidden = true; });
  document.addEventListener("pointerdown", (e) => {
    if (e.pointerType !== "touch") return;
    const target = targetOf(e);
    if (target) show(target, e.clientX, e.clientY, true); else tip.hidden = true;
  });
  // a tapped tooltip would float over other content once the page scrolls; a mouse's follows the mouse
  window.addEventListener("scroll", () => { if (byTouch) tip.hidden = true; }, { passive: true });
}

// --- charts ---------------------------------------------------------------------------------------

function niceTicks(max, target = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / target, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v < max + step / 2; v += step) ticks.push(Number(v.toPrecision(6)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(6)));
  return ticks;
}

function widthOf(container, fallback = 480) {
  return Math.max(240, Math.floor(container.clientWidth || fallback));
}

// a frame with a y axis (ticks, gridlines, title) and an x axis line; returns the plot geometry
function frame(svg, W, H, m, yTicks, yFormat, yTitle, xTitle) {
  const top = yTicks[yTicks.length - 1];
  const y = (v) => m.t + (1 - v / top) * (H - m.t - m.b);
  for (const t of yTicks) {
    svg.append(el("svg:line", { class: "gridline", x1: m.l, x2: W - m.r, y1: y(t), y2: y(t) }));
    svg.append(el("svg:text", { x: m.l - 6, y: y(t) + 4, "text-anchor": "end", text: yFormat(t) }));
  }
  svg.append(el("svg:line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  if (yTitle) svg.append(el("svg:text", { class: "axis-title", x: 12, y: (m.t + H - m.b) / 2, transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`, "text-anchor": "middle", text: yTitle }));
  if (xTitle) svg.append(el("svg:text", { class: "axis-title", x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle", text: xTitle }));
  return y;
}

// 24 bars, one per local hour, on a labelled y scale
function hourBars(W, values, { label, yFormat, yTitle, cls, fill = "#1db954", tip, height = 150 }) {
  const H = height, m = { l: 48, r: 8, t: 8, b: 34 };
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": label });
  const ticks = niceTicks(Math.max(...values, 0));
  const y = frame(svg, W, H, m, ticks, yFormat, yTitle, "hour of the day");
  const bw = (W - m.l - m.r) / 24;
  values.forEach((v, h) => {
    const x = m.l + h * bw;
    // the hit area is the whole column, so small bars still show their tooltip
    svg.append(el("svg:rect", { x, y: m.t, width: bw, height: H - m.t - m.b, fill: "transparent", "data-tip": tip(h, v), class: `${cls}-hit` }));
    svg.append(el("svg:rect", { x: x + 1, y: y(v), width: Math.max(1, bw - 2), height: H - m.b - y(v), fill, class: cls, "data-hour": h, "data-tip": tip(h, v) }));
    if (h % (W < 420 ? 6 : 3) === 0) {
      svg.append(el("svg:line", { class: "axis", x1: x + bw / 2, x2: x + bw / 2, y1: H - m.b, y2: H - m.b + 4 }));
      svg.append(el("svg:text", { x: x + bw / 2, y: H - m.b + 15, "text-anchor": "middle", text: hourLabel(h) }));
    }
  });
  return svg;
}

// plays per day of the last 12 months, a week per column (GitHub-style), newest on the right
function calendarChart(cal) {
  const first = dayOf(cal.start), days = cal.plays.length;
  const offset = (new Date(first).getUTCDay() + 6) % 7; // Monday = 0
  const weeks = Math.ceil((offset + days) / 7);
  const cell = 12, gap = 2, left = 30, top = 18;
  const W = left + weeks * (cell + gap), H = top + 7 * (cell + gap) + 4;
  const nonzero = cal.plays.filter((p) => p > 0).sort((a, b) => a - b);
  const q = [0.25, 0.5, 0.75].map((f) => nonzero[Math.floor(f * (nonzero.length - 1))] || 0);
  const shades = ["#23272f", "#0e4429", "#006d32", "#26a641", "#39d353"];
  const level = (p) => (p === 0 ? 0 : p <= q[0] ? 1 : p <= q[1] ? 2 : p <= q[2] ? 3 : 4);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "plays per day over the last 12 months", class: "calendar" });
  for (const [row, monday] of [[0, 0], [2, 2], [4, 4]]) {
    svg.append(el("svg:text", { x: left - 6, y: top + row * (cell + gap) + cell - 2, "text-anchor": "end", text: F.weekday.format(Date.UTC(2024, 0, 1 + monday)) }));
  }
  let lastMonth = -1;
  for (let i = 0; i < days; i++) {
    const t = first + i * 86400000, d = new Date(t);
    const slot = offset + i, col = Math.floor(slot / 7), row = slot % 7;
    const x = left + col * (cell + gap), y = top + row * (cell + gap);
    if (row === 0 && d.getUTCDate() <= 7 && d.getUTCMonth() !== lastMonth && col < weeks - 1) { // the month's first Monday
      svg.append(el("svg:text", { x, y: top - 6, text: F.month.format(t) }));
      lastMonth = d.getUTCMonth();
    }
    const p = cal.plays[i];
    svg.append(el("svg:rect", { x, y, width: cell, height: cell, rx: 2, fill: shades[level(p)], class: "day",
      "data-tip": `${F.day.format(t)}: ${plays(p)}${p ? `, ${duration(cal.minutes[i])}` : ""}` }));
  }
  const legend = el("div", { class: "legend" }, el("span", { class: "muted", text: "fewer plays" }),
    ...shades.map((s) => el("i", { style: `background:${s}` })), el("span", { class: "muted", text: "more" }));
  return [el("div", { class: "scroll-x" }, svg), legend];
}

// --- sections -------------------------------------------------------------------------------------

function renderBanners(data, now) {
  const box = document.getElementById("banners");
  box.replaceChildren();
  if (data.is_demo) {
    box.append(el("div", { class: "banner demo", id: "demo-banner",
      text: "Demo data: this dashboard shows the built-in simulated listener, not a real Spotify account." }));
  }
  const f = data.freshness;
  if (!f) return;
  const late = f.last_ingestion && (now - new Date(f.last_ingestion)) > (f.stale_after_hours || 2) * 3600000;
  if (f.stale || late) {
    box.append(el("div", { class: "banner stale", id: "stale-banner",
      text: f.last_ingestion ? `Stale data: the last successful update from Spotify was ${ago(f.last_ingestion, now)}.`
        : "Stale data: no update from Spotify has succeeded yet." }));
  }
}

function topList(items, nameKey, subKey = null, withCover = true) {
  if (!items.length) return el("p", { class: "muted empty", text: "Nothing in this period." });
  const list = el("ol", { class: "top-list" });
  items.forEach((item, i) => {
    list.append(el("li", {},
      el("span", { class: "rank", text: String(i + 1) }),
      withCover ? cover(item, i) : null,
      el("div", { class: "meta" }, el("div", { class: "name", text: item[nameKey] }),
        subKey ? el("div", { class: "muted small", text: item[subKey] }) : null,
        el("div", { class: "figure", text: `${plays(item.plays)} · ${duration(item.minutes)}` }))));
  });
  return list;
}

function moodList(moods, total) {
  const list = el("ol", { class: "top-list moods" });
  moods.forEach((m, i) => {
    list.append(el("li", { "data-tip": `${m.mood_label}: ${plays(m.plays)}, ${pct(m.plays / Math.max(total, 1))} of the plays` },
      el("span", { class: "rank", text: String(i + 1) }),
      el("span", { class: "swatch", style: `background:${colour(m.mood_cluster_id)}` }),
      el("div", { class: "meta" }, el("div", { class: "name" }, moodName(m.mood_label)),
        el("div", { class: "bar" }, el("span", { style: `width:${(m.plays / Math.max(total, 1)) * 100}%;background:${colour(m.mood_cluster_id)}` })),
        el("div", { class: "figure", text: `${plays(m.plays)} · ${duration(m.minutes)}` }))));
  });
  return moods.length ? list : el("p", { class: "muted empty", text: "No moods yet." });
}

function tiles(entries) {
  return el("div", { class: "tiles" }, ...entries.map(([label, value, tip]) =>
    el("div", { class: "tile", "data-tip": tip || null }, el("div", { class: "value", text: value }), el("div", { class: "label", text: label }))));
}

function renderStats(data) {
  const section = document.getElementById("stats");
  const body = section.querySelector(".body");
  const stats = data.stats;
  if (!stats) return empty(body, "No listening stats in this data.");
  tabs(document.getElementById("range-switch"), RANGES, (k) => stats.ranges[k].label, state.range, (k) => { state.range = k; renderStats(data); });
  const r = stats.ranges[state.range];
  const estimated = r.estimated_share > 0 ? `${pct(r.estimated_share)} of the plays have no known length; their time is estimated from the gap to the previous play` : "from the length of every play";
  const since = r.start ? `${at(r.start, F.date)} – ${at(r.end, F.date)}` : "";
  const clockBox = el("div", { class: "chart clock" });
  const calendarBox = el("div", { class: "chart" });
  put(body, 
    el("p", { class: "muted small", id: "range-dates", text: since }),
    tiles([["listening time", duration(r.minutes), `Listening time ${estimated}.`], ["plays", count.format(r.plays)],
      ["tracks", count.format(r.tracks)], ["artists", count.format(r.artists)]]),
    el("div", { class: "columns" },
      el("div", {}, el("h3", { text: "Top artists" }), topList(r.top_artists, "artist_name")),
      el("div", {}, el("h3", { text: "Top tracks" }), topList(r.top_tracks, "track_name", "artist_name")),
      el("div", {}, el("h3", { text: "Top moods" }), moodList(r.top_moods, r.plays))),
    el("div", { class: "columns two" },
      el("div", {}, el("h3", { text: "Listening clock" }), clockBox),
      el("div", {}, el("h3", { text: "Plays per day, last 12 months" }), calendarBox)));
  clockBox.append(hourBars(widthOf(clockBox), r.clock, { label: "plays per hour of the day", cls: "clock-bar", yFormat: (v) => count.format(v),
    yTitle: "plays", fill: "#4ea8f2", tip: (h, v) => `${hourMinute(h)}–${hourMinute((h + 1) % 24)}: ${plays(v)}` }));
  calendarBox.append(...calendarChart(stats.calendar));
  const scroller = calendarBox.querySelector(".scroll-x");
  scroller.scrollLeft = scroller.scrollWidth; // the newest weeks first on a narrow screen
}

function monthBars(W, y) {
  const H = 170, m = { l: 44, r: 8, t: 8, b: 30 };
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "plays per month by mood" });
  const byMonth = new Map(y.moods_by_month.map((x) => [x.month, x]));
  const max = Math.max(...y.moods_by_month.map((x) => x.plays), 0);
  const yOf = frame(svg, W, H, m, niceTicks(max), (v) => count.format(v), "plays", null);
  const bw = (W - m.l - m.r) / 12;
  for (let month = 1; month <= 12; month++) {
    const x = m.l + (month - 1) * bw, entry = byMonth.get(month);
    const name = F.monthLong.format(Date.UTC(2000, month - 1, 1));
    let base = 0;
    for (const part of entry ? entry.moods : []) {
      const y0 = yOf(base), y1 = yOf(base + part.plays);
      const label = moodLabel(part.mood_cluster_id);
      svg.append(el("svg:rect", { x: x + 2, y: y1, width: Math.max(1, bw - 4), height: Math.max(0, y0 - y1), fill: colour(part.mood_cluster_id), class: "month-bar",
        "data-tip": `${name}: ${label}, ${plays(part.plays)} (${pct(part.plays / entry.plays)})` }));
      base += part.plays;
    }
    svg.append(el("svg:text", { x: x + bw / 2, y: H - m.b + 15, "text-anchor": "middle", text: W < 420 ? F.month.format(Date.UTC(2000, month - 1, 1)).slice(0, 1) : F.month.format(Date.UTC(2000, month - 1, 1)) }));
  }
  return svg;
}

let MOOD_LABELS = new Map();
const moodLabel = (id) => MOOD_LABELS.get(id) || `Mood ${id}`;

function renderRecap(data) {
  const section = document.getElementById("recap");
  if (!section) return;
  const body = section.querySelector(".body");
  const years = (data.recap && data.recap.years) || [];
  if (!years.length) return empty(body, "No recap yet: it needs a year with plays.");
  if (!years.some((y) => y.year === state.year)) state.year = years[0].year;
  tabs(document.getElementById("year-switch"), years.map((y) => y.year), String, state.year, (k) => { state.year = k; renderRecap(data); });
  const y = years.find((x) => x.year === state.year);
  for (const entry of years) for (const m of entry.top_moods) MOOD_LABELS.set(m.mood_cluster_id, m.mood_label);
  const period = y.in_progress ? `${y.year} so far` : `${y.year}`;
  const from = y.first_day.endsWith("-01-01") ? "" : ` (from ${F.dayShort.format(dayOf(y.first_day))})`;
  const s = y.longest_session, busy = y.busiest_day;
  const chartBox = el("div", { class: "chart" });
  const mood = y.mood_of_year;
  put(body, 
    el("p", { class: "big", id: "recap-title", text: `${period}${from}: ${duration(y.minutes)} of music` }),
    tiles([["listening time", duration(y.minutes)], ["plays", count.format(y.plays)], ["artists", count.format(y.artists)],
      ["new artists", y.first_year ? "–" : count.format(y.new_artists.count), y.first_year ? "Your first year here: every artist is new." : null]]),
    el("div", { class: "columns" },
      el("div", {}, el("h3", { text: "Top artists" }), topList(y.top_artists, "artist_name", null, false)),
      el("div", {}, el("h3", { text: "Top tracks" }), topList(y.top_tracks, "track_name", "artist_name", false)),
      el("div", {}, el("h3", { text: "Mood of the year" }),
        mood ? el("p", {}, el("span", { class: "swatch", style: `background:${colour(mood.mood_cluster_id)}` }), " ", moodName(mood.mood_label, { id: "mood-of-year" }),
          el("span", { class: "muted", text: ` · ${pct(mood.share)} of the plays` })) : el("p", { class: "muted", text: "No moods yet." }),
        el("div", { class: "chart-title muted", text: "Moods month by month" }), chartBox)),
    el("ul", { class: "facts" },
      el("li", { id: "busiest-day" }, el("div", { class: "label", text: "Busiest day" }), el("div", { text: `${F.day.format(dayOf(busy.date))}` }),
        el("div", { class: "muted small", text: `${duration(busy.minutes)}, ${plays(busy.plays)}` })),
      el("li", { id: "longest-session" }, el("div", { class: "label", text: "Longest session" }), el("div", { text: `${at(s.start)} – ${at(s.end, F.time)}` }),
        el("div", { class: "muted small", text: `${duration(s.minutes)}, ${plays(s.plays)}` })),
      el("li", { id: "habit-hours" }, el("div", { class: "label", text: "Your habit hours" }),
        el("div", { text: y.habit_hours.map((h) => hourMinute(h.hour)).join(", ") || "–" }),
        el("div", { class: "muted small", text: y.habit_hours.length ? `${pct(y.habit_hours.reduce((a, h) => a + h.share, 0))} of the plays start then` : "" })),
      el("li", { id: "new-artists" }, el("div", { class: "label", text: "New artists discovered" }),
        el("div", { text: y.first_year ? "Everything: your first year here" : count.format(y.new_artists.count) }),
        el("div", { class: "muted small", text: y.first_year ? "" : y.new_artists.top.map((a) => a.artist_name).join(", ") }))),
    document.body.classList.contains("recap-only") ? null
      : el("p", { class: "small" }, el("a", { href: "recap.html", id: "share-recap", text: "Open the recap on its own page to share" }),
        el("span", { class: "muted", text: " (no artwork, nothing but the recap)" })));
  chartBox.append(monthBars(widthOf(chartBox, 300), y),
    el("ul", { class: "mood-legend" }, ...y.top_moods.map((m) => el("li", {}, el("span", { class: "swatch", style: `background:${colour(m.mood_cluster_id)}` }),
      moodName(m.mood_label), el("span", { class: "muted", text: pct(m.plays / y.plays) })))));
}

function renderNextMood(data) {
  const body = document.querySelector("#next-mood .body");
  const p = data.next_prediction;
  const why = p && p.reason ? el("details", { class: "technical" }, el("summary", { text: "Technical reason" }), el("p", { class: "muted small", text: p.reason })) : null;
  if (!p || !p.available) return put(body, el("p", { class: "muted empty", text: (p && p.note) || "No guess yet." }), why);
  const probs = [...p.probabilities].sort((a, b) => b.probability - a.probability);
  const rows = el("div", { class: "bars" });
  for (const x of probs) {
    rows.append(el("div", { class: "bar-row", "data-tip": `${x.mood_label}: ${pct(x.probability, 1)} chance` },
      moodName(x.mood_label, { class: "mood-name label" }),
      el("div", { class: "bar" }, el("span", { style: `width:${Math.max(0, Math.min(1, x.probability)) * 100}%;background:${colour(x.mood_cluster_id)}` })),
      el("span", { class: "value", text: pct(x.probability) })));
  }
  put(body, 
    el("div", { class: "big" }, moodName(p.mood_label, { id: "next-mood-label" })),
    el("p", { class: "muted", text: `${pct(p.confidence)} chance, the most likely of ${probs.length} moods` }),
    p.note ? el("p", { class: "muted note", text: p.note }) : null,
    why,
    rows);
  if (p.recommended_tracks && p.recommended_tracks.length) {
    const list = el("ul", { class: "muted" });
    for (const t of p.recommended_tracks.slice(0, 5)) list.append(el("li", { text: `${t.track_name} — ${t.artist_name}` }));
    body.append(el("p", { text: "Songs for that mood:" }), list);
  }
}

function renderSessionHours(data) {
  const body = document.querySelector("#session-hours .body");
  const probs = data.session_probs || {};
  const share = data.session_start_share || {};
  if (!Object.keys(probs).length && !Object.keys(share).length) return empty(body, "No guesses yet: the session model is trained by the daily retrain.");
  const W = widthOf(body);
  const hours = [...Array(24).keys()];
  const parts = [];
  if (Object.keys(probs).length) {
    parts.push(el("div", { class: "chart-title", text: "Chance that a session starts in each hour of today" }),
      hourBars(W, hours.map((h) => probs[String(h)] ?? 0), { label: "chance of a session starting per hour today", cls: "hour-bar",
        yFormat: (v) => pct(v), yTitle: "chance", tip: (h, v) => `Today ${hourMinute(h)}–${hourMinute((h + 1) % 24)}: ${pct(v)} chance of a session starting` }));
    const top = (data.top_hours || []).map((t) => `${hourMinute(t.hour)} (${pct(t.probability)})`).join(", ");
    if (top) parts.push(el("p", { class: "muted small", text: `Most likely: ${top}` }));
  }
  if (Object.keys(share).length) {
    parts.push(el("div", { class: "chart-title", text: "When your past sessions started" }),
      hourBars(W, hours.map((h) => share[String(h)] ?? 0), { label: "share of past sessions per starting hour", cls: "share-bar", fill: "#f2c14e", height: 130,
        yFormat: (v) => pct(v), yTitle: "of sessions", tip: (h, v) => `${pct(v, 1)} of your sessions started between ${hourMinute(h)} and ${hourMinute((h + 1) % 24)}` }));
  }
  put(body, ...parts);
}

function renderMoodMap(data) {
  const body = document.querySelector("#mood-map .body");
  const clusters = data.mood_clusters || [];
  if (!clusters.length) return empty(body, "No moods yet: they are found by the daily retrain.");
  const W = Math.min(widthOf(body), 560), H = Math.round(W * 0.6), m = { l: 44, r: 12, t: 10, b: 38 };
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "moods by valence and energy" });
  const x = (v) => m.l + v * (W - m.l - m.r), y = (v) => m.t + (1 - v) * (H - m.t - m.b);
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(el("svg:line", { class: "gridline", x1: x(t), x2: x(t), y1: m.t, y2: H - m.b }));
    svg.append(el("svg:line", { class: "gridline", x1: m.l, x2: W - m.r, y1: y(t), y2: y(t) }));
    svg.append(el("svg:text", { x: x(t), y: H - m.b + 14, "text-anchor": "middle", text: String(t) }));
    svg.append(el("svg:text", { x: m.l - 6, y: y(t) + 4, "text-anchor": "end", text: String(t) }));
  }
  svg.append(el("svg:text", { class: "axis-title", x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle", text: "valence: sad → happy" }));
  svg.append(el("svg:text", { class: "axis-title", x: 12, y: (m.t + H - m.b) / 2, transform: `rotate(-90 12 ${(m.t + H - m.b) / 2})`, "text-anchor": "middle", text: "energy: calm → energetic" }));
  const rMax = Math.min(W, H) * 0.11;
  const radius = (share) => Math.max(3, rMax * Math.sqrt(share)); // area proportional to the share of plays
  const sorted = [...clusters].sort((a, b) => b.share - a.share); // big circles first, small ones stay on top
  sorted.forEach((c) => {
    const tip = `${c.label}: ${plays(c.plays)}, ${pct(c.share)} of all plays (valence ${c.centroid.valence.toFixed(2)}, energy ${c.centroid.energy.toFixed(2)})`;
    svg.append(el("svg:circle", { cx: x(c.centroid.valence), cy: y(c.centroid.energy), r: radius(c.share), fill: colour(c.cluster_id), "fill-opacity": 0.6,
      stroke: colour(c.cluster_id), class: "cluster-dot", "data-cluster": c.cluster_id, "data-tip": tip }));
  });
  const legend = el("ul", { class: "mood-legend" });
  for (const c of sorted) {
    legend.append(el("li", { "data-tip": `${c.label}: ${plays(c.plays)}` }, el("span", { class: "swatch", style: `background:${colour(c.cluster_id)}` }),
      moodName(c.label, { class: "mood-name cluster-label" }), el("span", { class: "muted", text: pct(c.share) })));
  }
  const sizes = el("svg:svg", { viewBox: `0 0 ${Math.round(rMax * 4.5 + 90)} ${Math.round(rMax * 2 + 6)}`, width: Math.round(rMax * 4.5 + 90), height: Math.round(rMax * 2 + 6), "aria-label": "circle sizes" });
  let cx = 4;
  for (const share of [0.1, 0.25, 0.5]) {
    const r = radius(share);
    sizes.append(el("svg:circle", { cx: cx + r, cy: rMax + 3, r, fill: "none", stroke: "#9aa3b2" }));
    sizes.append(el("svg:text", { x: cx + r, y: rMax + 7, "text-anchor": "middle", text: pct(share) }));
    cx += 2 * r + 10;
  }
  put(body, svg, el("div", { class: "legend size-legend" }, el("span", { class: "muted", text: "Circle area: share of your plays" }), sizes), legend);
}

function renderTrajectory(data) {
  const body = document.querySelector("#trajectory .body");
  const points = data.mood_trajectory || [];
  if (!points.length) return empty(body, "No plays in the last 24 hours.");
  const W = widthOf(body), H = W < 420 ? 220 : 300, m = { l: 58, r: 10, t: 8, b: 34 };
  const end = new Date(data.as_of || data.generated_at).getTime(), start = end - 24 * 3600 * 1000;
  const x = (t) => m.l + ((new Date(t).getTime() - start) / (end - start)) * (W - m.l - m.r);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "valence and energy over the last 24 hours" });
  const y = frame(svg, W, H, m, [0, 0.25, 0.5, 0.75, 1], (v) => String(v), "0 = low, 1 = high", null);
  // ticks on whole local hours: the first one after the window starts, then every 4 (8 on a phone)
  const minute = Number(F.minute.format(start));
  const firstTick = start - (start % 60000) + ((60 - minute) % 60) * 60000;
  for (let t = firstTick; t <= end; t += (W < 420 ? 8 : 4) * 3600 * 1000) {
    svg.append(el("svg:line", { class: "axis", x1: x(t), x2: x(t), y1: H - m.b, y2: H - m.b + 4 }));
    svg.append(el("svg:text", { x: x(t), y: H - m.b + 16, "text-anchor": "middle", text: F.time.format(t) }));
  }
  const BIN = 15 * 60 * 1000, GAP = 2 * BIN; // bins more than 30 minutes apart: no listening between them
  for (const [key, stroke] of [["valence", "#f2c14e"], ["energy", "#4ea8f2"]]) {
    let d = "", prev = null;
    for (const p of points) {
      const t = new Date(p.time).getTime();
      d += `${prev === null || t - prev > GAP ? "M" : "L"}${x(p.time).toFixed(1)},${y(p[key]).toFixed(1)} `;
      prev = t;
    }
    svg.append(el("svg:path", { d, fill: "none", stroke, "stroke-width": 2, class: `traj-line-${key}` }));
    for (const p of points) {
      svg.append(el("svg:circle", { cx: x(p.time), cy: y(p[key]), r: 3, fill: stroke, class: `traj-${key}`,
        "data-tip": `${at(p.time, F.time)}–${F.time.format(new Date(p.time).getTime() + BIN)}: valence ${p.valence.toFixed(2)}, energy ${p.energy.toFixed(2)} (${plays(p.plays)})` }));
    }
  }
  put(body, svg, el("div", { class: "legend" },
    el("span", {}, el("i", { style: "background:#f2c14e" }), "valence (sad → happy)"), el("span", {}, el("i", { style: "background:#4ea8f2" }), "energy (calm → energetic)"),
    el("span", { class: "muted", text: "Gaps in the lines: no listening." })));
}

function renderRecent(data) {
  const body = document.querySelector("#recent .body");
  const tracks = data.recently_played || [];
  if (!tracks.length) return empty(body, "Nothing played yet.");
  const list = el("ul", { class: "tracks" });
  for (const t of tracks) {
    list.append(el("li", { class: "track" }, cover(t, t.mood_cluster_id), el("div", { class: "meta" },
      el("div", { text: t.track_name }), el("div", { class: "muted", text: t.artist_name }),
      el("div", { class: "muted small" }, `${at(t.played_at)} · `, t.mood_label ? moodName(t.mood_label) : "no mood yet"))));
  }
  put(body, list);
}

function technical(details) {
  if (!details) return null;
  const head = el("tr", {}, el("th", { text: "" }), ...details.metrics.map((m) => el("th", { class: "num", text: m.label })));
  const rows = details.rows.map((r) => el("tr", { class: r.key === "model" ? "model-row" : "baseline-row" }, el("td", { text: r.name }),
    ...details.metrics.map((m) => el("td", { class: "num", text: r.values[m.key] === null || r.values[m.key] === undefined ? "–" : Number(r.values[m.key]).toFixed(3) }))));
  const window = details.test_start && details.test_end
    ? `Measured on ${details.test_rows === null || details.test_rows === undefined ? "" : `${count.format(details.test_rows)} cases from `}${at(details.test_start, F.date)} – ${at(details.test_end, F.date)}, which the model did not learn from.`
    : "";
  return el("details", { class: "technical" }, el("summary", { text: "Technical figures" }),
    el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))),
    el("p", { class: "muted small", text: window }));
}

function liveQuality(live) {
  // the online evaluation: how the guesses shown here did against what happened, in plain words
  const lines = Object.values(live || {}).filter((entry) => entry && typeof entry.summary === "string")
    .map((entry) => el("li", { text: entry.summary }));
  return lines.length ? el("div", { class: "live-quality", id: "live-quality" }, el("h3", { text: "How the guesses did lately" }), el("ul", { class: "small" }, ...lines)) : null;
}

function renderModels(data) {
  const body = document.querySelector("#models .body");
  const models = data.models || {};
  const pillText = { model: "a model guesses", rule: "a simple rule guesses", nothing: "not trained yet" };
  const parts = [];
  for (const kind of ["mood", "session"]) {
    const m = models[kind];
    if (!m) continue;
    const serving = m.serving || (m.available ? "model" : "nothing");
    parts.push(el("div", { class: "model", id: `model-${kind}` },
      el("h3", {}, m.title || (kind === "mood" ? "Next-mood model" : "Session-start model"), el("span", { class: `pill serving-${serving}`, text: pillText[serving] })),
      el("p", { class: "summary", text: m.summary || m.note || "" }),
      m.available && m.trained_at ? el("p", { class: "muted small", text: `The model in use was trained ${at(m.trained_at, F.date)} (version ${m.version}).` }) : null,
      technical(m.details)));
  }
  const live = liveQuality(data.live_quality);
  if (live) parts.push(live);
  if (!parts.length) return empty(body, "No models yet: they are trained by the daily retrain.");
  put(body, ...parts);
}

function renderDrift(data) {
  const body = document.querySelector("#drift .body");
  const drift = data.drift;
  if (!drift || !drift.available) return empty(body, "No comparison yet: it needs a few weeks of listening.");
  const w = drift.windows;
  const compared = w ? `The last ${w.current_days} days compared with the ${w.reference_days} days before.` : "Recent listening compared with the weeks before.";
  if (!drift.flags.length) return put(body, el("p", { class: "muted small", text: compared }), el("p", { class: "ok", text: "No big changes." }));
  const list = el("ul", { class: "drift-list" });
  for (const f of drift.flags) {
    const name = f.label ? (f.hour !== undefined && f.hour !== null ? `Session starts at ${hourMinute(f.hour)} (per day)` : f.label) : f.metric.replaceAll("_", " ");
    const value = (v) => (f.percent ? pct(v, 1) : short(v));
    const values = f.reference !== undefined && f.reference !== null ? `${value(f.reference)} → ${value(f.current)}` : f.detail || "";
    const change = f.change === null || f.change === undefined ? "" : ` (${signed(f.change)})`;
    list.append(el("li", { class: "flag drift-flag" }, el("span", { text: name }), el("span", { class: "muted", text: `: ${values}${change}` })));
  }
  put(body, el("p", { class: "muted small", text: `${compared} Changes of more than 20% are listed.` }), list);
}

function gapsNotice(gaps) {
  // spans whose plays fell out of Spotify's list of your last 50 before a run could fetch them
  if (!Array.isArray(gaps) || !gaps.length) return null;
  const items = gaps.map((g) => {
    const held = g.plays_in_history ? `; ${count.format(g.plays_in_history)} of them are in your history now` : "";
    return el("li", { class: "gap", text: `${at(g.from)} – ${at(g.to)}: about ${plays(g.estimated_plays)} missing${held}` });
  });
  return el("div", { id: "gaps-notice", class: "flag small" },
    el("p", { text: "Some plays may be missing: Spotify only remembers your last 50, and more than that went by between two updates." }),
    el("ul", {}, ...items),
    el("p", { class: "muted", text: "Importing your Spotify data export fills these gaps." }));
}

function renderFreshness(data, now) {
  const body = document.querySelector("#freshness .body");
  const f = data.freshness;
  const next = f.next_runs || {};
  const rows = [
    ["Last play", f.last_play ? `${at(f.last_play)} (${ago(f.last_play, now)})` : "nothing played yet"],
    ["Last update from Spotify", f.last_ingestion ? `${at(f.last_ingestion)} (${ago(f.last_ingestion, now)})` : "none yet"],
    ["Next update", next.update ? at(next.update) : "not scheduled when this page was made (Dagster's scheduler was not running)"],
    ["Next retrain", next.full_retrain ? at(next.full_retrain) : "not scheduled when this page was made"],
    ["Plays waiting for audio features", count.format(f.pending_features)],
    ["Plays without audio features", count.format(f.unavailable_features)],
  ];
  put(body, el("dl", { class: "rows" }, ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])), gapsNotice(data.gaps));
}

// --- the page -------------------------------------------------------------------------------------

function render(data) {
  const started = performance.now();
  state.data = data;
  drawnWidth = window.innerWidth;
  setFormats(data.timezone || "UTC");
  MOOD_LABELS = new Map((data.mood_clusters || []).map((c) => [c.cluster_id, c.label]));
  const now = new Date();
  document.getElementById("subtitle").textContent = `Made ${at(data.generated_at)} · times in ${data.timezone}`;
  renderBanners(data, now);
  const sections = { stats: renderStats, recap: renderRecap, "next-mood": renderNextMood, "session-hours": renderSessionHours,
    "mood-map": renderMoodMap, trajectory: renderTrajectory, recent: renderRecent, models: renderModels, drift: renderDrift,
    freshness: (d) => renderFreshness(d, now) };
  for (const [id, draw] of Object.entries(sections)) if (document.getElementById(id)) draw(data);
  document.getElementById("footer").textContent = `Spotify Brain · this page shows the data as of ${at(data.generated_at)}.`;
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  document.body.dataset.renderedAt = String(Math.round(performance.now()));
  document.body.dataset.rendered = "true";
}

function fail(message) {
  document.getElementById("banners").replaceChildren(el("div", { class: "banner error", text: message }));
  document.body.dataset.rendered = "error";
}

// charts are drawn to the width they have: redraw when it changes (not the height: a phone's address bar)
let resizeTimer = null, drawnWidth = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (!state.data || window.innerWidth === drawnWidth) return;
    drawnWidth = window.innerWidth;
    render(state.data);
  }, 150);
});

async function load() {
  setupTooltip();
  const embedded = document.getElementById("embedded-data").textContent.trim();
  const recapOnly = document.body.classList.contains("recap-only");
  // Prefer the JSON beside the page (it may be fresher than the copy embedded when the page was written);
  // the shareable recap page never fetches: it shows exactly what it embeds.
  if (!recapOnly && location.protocol !== "file:") {
    try {
      const response = await fetch("dashboard_data.json", { cache: "no-store" });
      if (response.ok) return render(await response.json());
    } catch (e) { /* no JSON beside the page: use the embedded copy */ }
  }
  if (!embedded || embedded.startsWith("/*")) return fail("No dashboard data found beside this page.");
  try { render(JSON.parse(embedded)); } catch (e) { fail(`The dashboard data could not be read: ${e.message}`); }
}

if (!document.body.dataset.page) load(); // a page with a script of its own (household.html) starts itself
