// Form values (strings from inputs) to API bodies. A value the API must
// judge is passed on as typed, so its field-named error reaches the form
// rather than a guess made here. Pure, unit-tested.

/** A trimmed string, or undefined when empty (the field is left out). */
export function text(v: FormDataEntryValue | null | undefined): string | undefined {
  if (typeof v !== "string") return undefined;
  const t = v.trim();
  return t === "" ? undefined : t;
}

/** A number; empty → undefined; not a number → the raw text (the API
 *  answers a field error naming it). */
export function num(v: FormDataEntryValue | null | undefined): number | string | undefined {
  const t = text(v);
  if (t === undefined) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

/** A list from comma- or newline-separated text (empty items dropped). */
export function list(v: FormDataEntryValue | null | undefined): string[] {
  const t = text(v);
  if (t === undefined) return [];
  return t.split(/[,\n]/).map((s) => s.trim()).filter((s) => s !== "");
}

/** A list of numbers from comma-separated text (non-numbers passed on raw). */
export function numList(v: FormDataEntryValue | null | undefined): (number | string)[] {
  return list(v).map((s) => (Number.isFinite(Number(s)) ? Number(s) : s));
}

/** An object without its undefined members (absent fields keep defaults). */
export function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as Partial<T>;
}

/** Every value of a multi-valued field (checkboxes of one name). */
export function all(fd: FormData, name: string): string[] {
  return fd.getAll(name).filter((v): v is string => typeof v === "string" && v !== "");
}
