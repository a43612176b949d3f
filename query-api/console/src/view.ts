// Small DOM helpers: every text goes through textContent (never innerHTML).

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}

/** A KPI card; `data-kpi` names it and `data-value` holds the raw figure
 *  (tests compare it with the API's answer). */
export function card(kpi: string, label: string, text: string, raw: number | null, note = ""): HTMLElement {
  return el("div", { class: "card", "data-kpi": kpi, "data-value": raw === null ? "" : String(raw) },
    el("div", { class: "label" }, label), el("div", { class: "value" }, text),
    el("div", { class: "label" }, note));
}
