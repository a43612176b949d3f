// The console's entry: the key (kept for this tab only), the window picker
// (state in the URL, so a link reproduces the view), the header HUD, and
// the overview.
import "./style.css";
import { Api, ApiError } from "./api";
import { budgetLevel, count, usd, WINDOWS, windowFrom, type Window } from "./format";
import { overview } from "./overview";
import { el } from "./view";

const KEY = "agentops.console.key";
const main = document.getElementById("main") as HTMLElement;
const hud = document.getElementById("hud") as HTMLElement;
const picker = document.getElementById("window") as HTMLFormElement;

function askKey(message = ""): void {
  const input = el("input", { type: "password", name: "key", placeholder: "aok_… (read key)", required: "" });
  const form = el("form", { class: "key" }, el("label", {}, "Read key of your org", input),
    el("button", { type: "submit" }, "Open"), el("div", { class: "error", role: "alert" }, message));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    void render();
  });
  main.replaceChildren(form);
}

function drawPicker(w: Window): void {
  picker.replaceChildren(...WINDOWS.map((x) => {
    const b = el("button", { type: "button", "aria-pressed": String(x === w) }, x);
    b.addEventListener("click", () => {
      const u = new URL(location.href);
      u.searchParams.set("window", x);
      history.pushState(null, "", u);
      void render();
    });
    return b;
  }));
}

async function drawHud(api: Api): Promise<void> {
  const [o, budgets] = await Promise.all([api.overview("24h"), api.budgets()]);
  const worst = budgets.reduce<number | null>((m, b) => (b.percent === null ? m : Math.max(m ?? 0, b.percent)), null);
  const link = (text: string, cls = "") => el("a", { href: "/console/", class: cls }, text);
  hud.replaceChildren(link(`runs ${count(o.runs)}`), link(`spend ${usd(o.cost_usd)}`),
    link(`errors/h ${count(o.errors_last_hour)}`, o.errors_last_hour > 0 ? "warn" : "ok"),
    link(`worst budget ${worst === null ? "—" : `${worst.toFixed(0)}%`}`, budgetLevel(worst)));
}

/** `?tv=1`: a wall screen — no navigation, large type, KPIs and gauges only. */
const TV = new URLSearchParams(location.search).get("tv") === "1";
/** Seconds between redraws (a TV redraws at most once a second). */
const REFRESH_SECS = TV ? 5 : 15;
let drawing = false;

async function render(): Promise<void> {
  const key = sessionStorage.getItem(KEY);
  if (!key) return askKey();
  if (drawing) return;
  drawing = true;
  try {
    await draw(key);
  } finally {
    drawing = false;
  }
}

async function draw(key: string): Promise<void> {
  const api = new Api(key);
  const w = windowFrom(location.search);
  drawPicker(w);
  try {
    await Promise.all([overview(api, w, main), drawHud(api)]);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      sessionStorage.removeItem(KEY);
      return askKey(e.message);
    }
    main.replaceChildren(el("p", { class: "error", role: "alert" }, String(e instanceof Error ? e.message : e)));
  }
}

if (TV) document.body.classList.add("tv");
window.addEventListener("popstate", () => void render());
setInterval(() => {
  if (!document.hidden) void render();
}, REFRESH_SECS * 1000);
void render();
