// The console's entry: the key (kept for this tab only), the window picker
// (state in the URL, so a link reproduces the view), the header HUD, and
// the overview.
import "./style.css";
import { Api, ApiError, type Me } from "./api";
import { budgetLevel, count, usd, WINDOWS, windowFrom, type Window } from "./format";
import { overview } from "./overview";
import { el } from "./view";

const KEY = "agentops.console.key";
const main = document.getElementById("main") as HTMLElement;
const hud = document.getElementById("hud") as HTMLElement;
const picker = document.getElementById("window") as HTMLFormElement;
const who = document.getElementById("who") as HTMLElement;

/** Who is signed in: a person by the session cookie, or a key kept for the tab. */
let current: { api: Api; me: Me } | null = null;

/** The signed-in caller, asking the API about the cookie when none is known. */
async function caller(): Promise<{ api: Api; me: Me } | null> {
  if (current) return current;
  const key = sessionStorage.getItem(KEY);
  const api = new Api(key);
  try {
    current = { api, me: await api.me() };
    return current;
  } catch (e) {
    // Not signed in: ask. A refused key is reported (by `render`).
    if (key === null && e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

function signIn(message = ""): void {
  who.replaceChildren();
  hud.replaceChildren();
  picker.replaceChildren();
  const email = el("input", { type: "email", name: "email", autocomplete: "username", required: "" });
  const password = el("input", { type: "password", name: "password", autocomplete: "current-password", required: "" });
  const error = el("div", { class: "error", role: "alert" }, message);
  const form = el("form", { class: "key", "aria-label": "sign in" },
    el("h1", {}, "Sign in"), el("label", {}, "Email ", email), el("label", {}, "Password ", password),
    el("button", { type: "submit" }, "Sign in"), error);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const api = new Api(null);
    api.login(email.value.trim(), password.value).then((me) => {
      current = { api, me };
      return render();
    }).catch((e: unknown) => error.replaceChildren(e instanceof Error ? e.message : String(e)));
  });
  const key = el("input", { type: "password", name: "key", placeholder: "aok_… (read key)" });
  const keyForm = el("form", { class: "key", "aria-label": "read key" },
    el("label", {}, "Or a read key of your org ", key), el("button", { type: "submit" }, "Open"));
  keyForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, key.value.trim());
    current = null;
    void render();
  });
  main.replaceChildren(form, el("details", {}, el("summary", {}, "Use a read key instead"), keyForm));
}

function drawWho(c: { api: Api; me: Me }): void {
  const label = c.me.user ? `${c.me.user.name} (${c.me.role ?? "?"}, ${c.me.org_id})` : `key ${c.me.key?.prefix ?? ""} (${c.me.org_id})`;
  const out = el("button", { type: "button", id: "sign-out" }, c.me.user ? "Sign out" : "Forget key");
  out.addEventListener("click", () => {
    const done = c.me.user ? c.api.logout() : Promise.resolve(sessionStorage.removeItem(KEY));
    void done.finally(() => {
      current = null;
      signIn();
    });
  });
  who.replaceChildren(el("span", { id: "who-name" }, label), out);
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
  if (drawing) return;
  drawing = true;
  try {
    const c = await caller();
    if (!c) return signIn();
    drawWho(c);
    const w = windowFrom(location.search);
    drawPicker(w);
    await Promise.all([overview(c.api, w, main), drawHud(c.api)]);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      current = null;
      sessionStorage.removeItem(KEY);
      return signIn(`Refused: ${e.message}`);
    }
    main.replaceChildren(el("p", { class: "error", role: "alert" }, String(e instanceof Error ? e.message : e)));
  } finally {
    drawing = false;
  }
}

if (TV) document.body.classList.add("tv");
window.addEventListener("popstate", () => void render());
setInterval(() => {
  if (!document.hidden) void render();
}, REFRESH_SECS * 1000);
void render();
