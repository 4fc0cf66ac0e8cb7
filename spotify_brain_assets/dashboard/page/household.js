// The household page: renders household_data.json with dashboard.js's building blocks (el, formats,
// tooltips), which the page inlines before this file. Names here start with hh: one script holds both.

function hhHourOf(iso, tz) {
  // the hour of the day of an instant in the household's timezone, 0–23
  const hour = new Intl.DateTimeFormat("en-US", { hour: "numeric", hourCycle: "h23", timeZone: tz }).format(new Date(iso));
  return Number(hour) % 24;
}

function hhStrip(listener, currentHour) {
  const name = listener.display_name;
  const strip = el("div", { class: "strip", role: "img", "aria-label": `${name}: minutes listened in each hour of today` });
  listener.today.hours.forEach((minutes, h) => {
    const future = h > currentHour;
    const level = Math.min(minutes / 60, 1);
    strip.append(el("span", {
      class: `hour${future ? " future" : ""}${minutes > 0 ? " listened" : ""}`,
      "data-hour": h,
      style: minutes > 0 ? `background:rgba(29,185,84,${(0.2 + 0.8 * level).toFixed(2)})` : null,
      "data-tip": `${name}, ${hourMinute(h)}–${hourMinute((h + 1) % 24)}: ${future ? "later today" : minutes > 0 ? duration(minutes) : "no listening"}`,
    }));
  });
  return strip;
}

function hhAxis() {
  return el("div", { class: "strip strip-axis", "aria-hidden": "true" },
    ...[...Array(24).keys()].map((h) => el("span", { class: h % 6 === 0 ? "every6" : h % 3 === 0 ? "every3" : null, text: h % 3 === 0 ? hourLabel(h) : "" })));
}

function hhRenderToday(data) {
  const body = document.querySelector("#today .body");
  const listeners = data.listeners || [];
  if (!listeners.length) return empty(body, "No listener shares their listening here yet: set share: true for a listener in listeners.yaml.");
  const currentHour = hhHourOf(data.generated_at, data.timezone);
  const rows = listeners.map((l) => {
    const t = l.today;
    const summary = t.plays ? `${plays(t.plays)} · ${duration(t.minutes)} today` : `nothing played today${l.today.last_play ? `; last play ${at(l.today.last_play)}` : ""}`;
    return el("div", { class: "listener", "data-name": l.name },
      el("div", { class: "listener-head" },
        el("a", { class: "dashboard-link", href: l.dashboard, text: l.display_name }),
        el("span", { class: "muted small listener-summary", text: summary })),
      hhStrip(l, currentHour));
  });
  put(body, el("p", { class: "muted small", text: `${F.day.format(dayOf(data.date))}. Each square is an hour; the brighter, the more minutes listened.` }),
    ...rows, hhAxis());
}

function hhRenderArtists(data) {
  const body = document.querySelector("#household-artists .body");
  const artists = data.top_artists || [];
  const n = (data.listeners || []).length;
  if (!artists.length) return empty(body, `Nothing played in the last ${data.period.days} days.`);
  const list = el("ol", { class: "top-list household-artists" });
  artists.forEach((a, i) => {
    list.append(el("li", {},
      el("span", { class: "rank", text: String(i + 1) }),
      el("div", { class: "meta" }, el("div", { class: "name", text: a.artist_name }),
        el("div", { class: "figure", text: `${plays(a.plays)} · ${duration(a.minutes)} · ${a.listeners === 1 ? "1 listener" : `${a.listeners} of ${n} listeners`}` }))));
  });
  put(body, el("p", { class: "muted small", text: `The last ${data.period.days} days, plays of everyone here added up.` }), list);
}

function hhRenderMoods(data) {
  const body = document.querySelector("#household-moods .body");
  const moods = data.top_moods || [];
  if (!moods.length) return empty(body, `No moods in the last ${data.period.days} days: they are found by each listener's daily retrain.`);
  const list = el("ol", { class: "top-list moods household-moods" });
  moods.forEach((m, i) => {
    const colourOf = PALETTE[i % PALETTE.length];
    list.append(el("li", { "data-tip": `${m.mood_label}: ${plays(m.plays)}, ${pct(m.share)} of the household's plays with a mood` },
      el("span", { class: "rank", text: String(i + 1) }),
      el("span", { class: "swatch", style: `background:${colourOf}` }),
      el("div", { class: "meta" }, el("div", { class: "name" }, moodName(m.mood_label)),
        el("div", { class: "bar" }, el("span", { style: `width:${m.share * 100}%;background:${colourOf}` })),
        el("div", { class: "figure", text: `${plays(m.plays)} · ${m.listeners === 1 ? "1 listener" : `${m.listeners} listeners`}` }))));
  });
  put(body, el("p", { class: "muted small", text: `The last ${data.period.days} days, each listener's moods by name.` }), list);
}

function hhRender(data) {
  setFormats(data.timezone || "UTC");
  document.getElementById("subtitle").textContent = `Made ${at(data.generated_at)} · times in ${data.timezone}`;
  const banners = document.getElementById("banners");
  banners.replaceChildren();
  if (data.is_demo) {
    banners.append(el("div", { class: "banner demo", id: "demo-banner", text: "Demo data: some listeners here are the built-in simulated listener, not a real Spotify account." }));
  }
  hhRenderToday(data);
  hhRenderArtists(data);
  hhRenderMoods(data);
  document.getElementById("footer").textContent = `Spotify Brain · only listeners who chose to share appear here · data as of ${at(data.generated_at)}.`;
  document.body.dataset.rendered = "true";
}

async function hhLoad() {
  setupTooltip();
  const embedded = document.getElementById("embedded-data").textContent.trim();
  // the JSON beside the page first (fresher when only it was deployed), else the embedded copy
  if (location.protocol !== "file:") {
    try {
      const response = await fetch("household_data.json", { cache: "no-store" });
      if (response.ok) return hhRender(await response.json());
    } catch (e) { /* no JSON beside the page: use the embedded copy */ }
  }
  if (!embedded || embedded.startsWith("/*")) return fail("No household data found beside this page.");
  try { hhRender(JSON.parse(embedded)); } catch (e) { fail(`The household data could not be read: ${e.message}`); }
}

if (document.body.dataset.page === "household") hhLoad();
