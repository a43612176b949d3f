// Forms over the API: `<ApiForm>` submits its values (FormData) to a call,
// disables itself meanwhile, and maps the API's field-named error onto the
// `<Field>` of that name (the message next to it), any other error onto the
// form. `<ConfirmButton>` asks before a destructive call.
import type { ComponentChildren, JSX } from "preact";
import { createContext } from "preact";
import { useContext, useState } from "preact/hooks";
import { formErrors, NO_ERRORS, type FormErrors } from "../errors";

const ErrorsContext = createContext<FormErrors>(NO_ERRORS);

export interface ApiFormProps {
  /** `aria-label` of the form (tests and screen readers find it by this). */
  label: string;
  /** The submit button's text. */
  submit: string;
  /** The call; resolves when done (the form resets unless `keep`). */
  onSubmit: (values: FormData) => Promise<unknown>;
  children: ComponentChildren;
  /** Keep the values after a success (edit forms). */
  keep?: boolean;
  /** A cancel button's action (edit forms). */
  onCancel?: () => void;
  class?: string;
}

export function ApiForm({ label, submit, onSubmit, children, keep, onCancel, class: cls }: ApiFormProps): JSX.Element {
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);
  const handle = (ev: SubmitEvent) => {
    ev.preventDefault();
    const form = ev.currentTarget as HTMLFormElement;
    const names = Array.from(form.querySelectorAll<HTMLElement>("[data-field]")).map((e) => e.dataset.field ?? "");
    setBusy(true);
    setErrors(NO_ERRORS);
    onSubmit(new FormData(form)).then(
      () => {
        setBusy(false);
        if (!keep && form.isConnected) form.reset();
      },
      (e: unknown) => {
        setBusy(false);
        setErrors(formErrors(e, names));
      },
    );
  };
  return (
    <form class={`api-form ${cls ?? ""}`} aria-label={label} onSubmit={handle} aria-busy={busy}>
      <ErrorsContext.Provider value={errors}>{children}</ErrorsContext.Provider>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {submit}
        </button>
        {onCancel ? (
          <button type="button" class="secondary" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
      <div class="error form-error" role="alert">
        {errors.general ?? ""}
      </div>
    </form>
  );
}

export interface FieldProps {
  /** The API's field name (its errors land here). */
  name: string;
  label: string;
  children: ComponentChildren;
  /** A hint under the input. */
  hint?: ComponentChildren;
}

/** One labelled input of an `<ApiForm>`, with the API's message for it. */
export function Field({ name, label, children, hint }: FieldProps): JSX.Element {
  const error = useContext(ErrorsContext).fields[name];
  return (
    <div class={`field${error ? " invalid" : ""}`} data-field={name}>
      <label>
        <span class="field-label">{label}</span>
        {children}
      </label>
      {hint ? <div class="hint">{hint}</div> : null}
      {error ? (
        <div class="field-error error" role="alert" data-field-error={name}>
          {error}
        </div>
      ) : null}
    </div>
  );
}

export interface ConfirmButtonProps {
  /** The button's text ("Delete"). */
  children: ComponentChildren;
  /** The question ("Delete budget ops?"). */
  question: string;
  /** The destructive call; its error is shown next to the button. */
  onConfirm: () => Promise<unknown>;
  class?: string;
}

/** A button that asks inline ("Sure? Yes / No") before acting. */
export function ConfirmButton({ children, question, onConfirm, class: cls }: ConfirmButtonProps): JSX.Element {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!asking) {
    return (
      <span class="confirm">
        <button type="button" class={cls ?? "danger"} onClick={() => setAsking(true)}>
          {children}
        </button>
        {error ? (
          <span class="error" role="alert">
            {error}
          </span>
        ) : null}
      </span>
    );
  }
  return (
    <span class="confirm asking" role="group" aria-label="confirm">
      <span>{question}</span>
      <button
        type="button"
        class="danger"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          onConfirm().then(
            () => {
              setBusy(false);
              setAsking(false);
              setError(null);
            },
            (e: unknown) => {
              setBusy(false);
              setAsking(false);
              setError(formErrors(e, []).general);
            },
          );
        }}
      >
        Yes
      </button>
      <button type="button" class="secondary" onClick={() => setAsking(false)}>
        No
      </button>
    </span>
  );
}

/** An uncontrolled `<select>` starting at `value` (Preact has no
 *  `defaultValue` for selects: the option is marked `selected`). */
export function Choice({ name, value, options }: { name: string; value: string; options: readonly (readonly [string, string])[] }): JSX.Element {
  return (
    <select name={name}>
      {options.map(([v, label]) => (
        <option key={v} value={v} selected={v === value}>
          {label}
        </option>
      ))}
    </select>
  );
}
