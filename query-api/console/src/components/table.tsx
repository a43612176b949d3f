// A table of rows: columns name a header and how a cell is drawn. Text goes
// through Preact (escaped), never innerHTML.
import type { ComponentChildren, JSX } from "preact";

export interface Column<T> {
  /** Header text. */
  label: string;
  /** The cell: a function of the row, or the row's field of that name. */
  cell: ((row: T) => ComponentChildren) | keyof T;
  /** A class for the column's cells (`num` right-aligns numbers). */
  class?: string;
}

export interface TableProps<T> {
  columns: readonly Column<T>[];
  rows: readonly T[];
  /** A stable key of a row (its id). */
  rowKey: (row: T) => string;
  /** Shown instead of an empty table. */
  empty?: ComponentChildren;
  /** `aria-label` of the table. */
  label?: string;
  /** Extra attributes of a row (`data-*` for tests, a class for its state). */
  rowProps?: (row: T) => Record<string, string>;
}

function cellOf<T>(c: Column<T>, row: T): ComponentChildren {
  if (typeof c.cell === "function") return c.cell(row);
  const v = row[c.cell];
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.join(", ");
  return String(v);
}

export function Table<T>({ columns, rows, rowKey, empty = "Nothing here yet.", label, rowProps }: TableProps<T>): JSX.Element {
  if (rows.length === 0) return <p class="empty">{empty}</p>;
  return (
    <div class="table-wrap">
      <table aria-label={label}>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.label} class={c.class}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={rowKey(r)} {...(rowProps ? rowProps(r) : {})}>
              {columns.map((c) => (
                <td key={c.label} class={c.class}>
                  {cellOf(c, r)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
