import Table from 'cli-table3';
import type { OutputStream } from './cli-io.js';

export type Cell = string | number | undefined | null;

// No colours (output is often piped, and cli-table3 colours headings by default) and no rule
// between rows, as OpenStack's own tables.
const style = { head: [] as string[], border: [] as string[], compact: true };

function text(cell: Cell): string {
  return cell === undefined || cell === null ? '' : String(cell);
}

/** A table with a heading row, one row per item. */
export function renderTable(head: string[], rows: Cell[][]): string {
  const table = new Table({ head, style });
  for (const row of rows) table.push(row.map(text));
  return `${table.toString()}\n`;
}

/** A two-column Field/Value table for one object; rows without a value are left out. */
export function renderFields(fields: Array<[string, Cell]>): string {
  const table = new Table({ head: ['Field', 'Value'], style });
  for (const [name, value] of fields) {
    if (text(value) !== '') table.push([name, text(value)]);
  }
  return `${table.toString()}\n`;
}

export function printJson(out: OutputStream, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}
