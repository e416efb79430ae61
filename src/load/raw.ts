/** A value as read from a manifest or pipeline file, with where it was written (for error messages). */
export interface RawValue {
  value: unknown;
  file: string;
  line: number;
}

/** One row as read, before validation: field name → value and location. */
export interface RawRow {
  file: string;
  line: number;
  fields: Map<string, RawValue>;
}

/** Defaults that apply to rows, from a pipeline file or a YAML manifest's `defaults:` block. */
export type RawDefaults = Map<string, RawValue>;
