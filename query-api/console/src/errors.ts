// The API's errors (`{error: {code, message, field?}}`) mapped onto a form:
// a message next to the named field when the form has it, else one message
// for the whole form. Pure, unit-tested.

import { ApiError } from "./api";

export interface FormErrors {
  /** Messages by field name, shown next to that field. */
  fields: Record<string, string>;
  /** A message for the form as a whole (no field, or a field it lacks). */
  general: string | null;
}

export const NO_ERRORS: FormErrors = { fields: {}, general: null };

/** The API words a field error as "field `x`: why" or "parameter `x`: why";
 *  next to the field, "why" is enough. */
export function bare(message: string, field: string): string {
  for (const p of [`field \`${field}\`: `, `parameter \`${field}\`: `, `${field}: `]) {
    if (message.startsWith(p)) return message.slice(p.length);
  }
  return message;
}

/** What to show for `e` in a form whose fields are named `fields`. */
export function formErrors(e: unknown, fields: readonly string[]): FormErrors {
  if (e instanceof ApiError) {
    if (e.field && fields.includes(e.field)) {
      return { fields: { [e.field]: bare(e.message, e.field) }, general: null };
    }
    if (e.status === 403) return { fields: {}, general: `Not allowed: ${e.message}` };
    return { fields: {}, general: e.message };
  }
  return { fields: {}, general: e instanceof Error ? e.message : String(e) };
}
