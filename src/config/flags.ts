import type { z } from 'zod';
import { pipelineFields } from './schema.js';

/**
 * Command-line flags that override a pipeline setting, each checked by that setting's own schema
 * field: the limits and the wording of what is allowed are the pipeline file's.
 */
export const SETTING_FLAGS = {
  outDir: { flag: '--out', path: ['output', 'dir'] },
  concurrency: { flag: '--concurrency', path: ['concurrency'] },
  requestsPerMinute: { flag: '--rpm', path: ['requests_per_minute'] },
  /** Merged as the lower of it and the file's budget_usd. */
  maxCostUsd: { flag: '--max-cost', path: ['budget_usd'] },
} as const satisfies Record<string, { flag: string; path: readonly string[] }>;

export type SettingName = keyof typeof SETTING_FLAGS;

/** What a command (or a caller of `runManifests`) may override, in the program's names. */
export interface SettingOverrides {
  outDir?: string;
  concurrency?: number;
  requestsPerMinute?: number;
  maxCostUsd?: number;
}

type AnySchema = z.ZodType;
/** The parts of zod 4's schema definitions read here (`schema._zod.def`). */
interface Def {
  type: string;
  innerType?: AnySchema;
  shape?: Record<string, AnySchema>;
  checks?: { _zod: { def: CheckDef } }[];
  entries?: Record<string, string>;
}
interface CheckDef {
  check?: string;
  value?: number;
  inclusive?: boolean;
  minimum?: number;
  format?: string;
}

const defOf = (schema: AnySchema): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The field under defaults, optionals and prefaults: what a value is checked against. */
function baseOf(schema: AnySchema): AnySchema {
  let s = schema;
  for (let d = defOf(s); d.innerType && ['default', 'prefault', 'optional', 'nullable'].includes(d.type); d = defOf(s)) s = d.innerType;
  return s;
}

/** The schema of the pipeline setting at `path` (like ['output', 'dir']). */
export function settingField(path: readonly string[]): AnySchema {
  let schema: AnySchema = pipelineFields;
  for (const key of path) {
    const field = defOf(baseOf(schema)).shape?.[key];
    if (!field) throw new Error(`no pipeline setting ${path.join('.')}`);
    schema = field;
  }
  return schema;
}

/** What a field allows, in words ("a whole number from 1 to 1000"), when its type says it plainly. */
export function describeAllowed(schema: AnySchema): string | undefined {
  const def = defOf(baseOf(schema));
  const checks = (def.checks ?? []).map((c) => c._zod.def);
  if (def.type === 'enum' && def.entries) return `one of ${Object.values(def.entries).join(', ')}`;
  if (def.type === 'string') return checks.some((c) => c.check === 'min_length' && (c.minimum ?? 0) > 0) ? 'a non-empty text' : 'a text';
  if (def.type !== 'number') return undefined;
  const noun = checks.some((c) => c.check === 'number_format' && (c.format ?? '').includes('int')) ? 'a whole number' : 'a number';
  const min = checks.find((c) => c.check === 'greater_than');
  const max = checks.find((c) => c.check === 'less_than');
  if (min && !min.inclusive) return `${noun} above ${min.value}${max ? ` and at most ${max.value}` : ''}`;
  if (min && max) return `${noun} from ${min.value} to ${max.value}`;
  if (min) return `${noun}, at least ${min.value}`;
  if (max) return `${noun}, at most ${max.value}`;
  return noun;
}

export type FlagValue = { ok: true; input: unknown; output: unknown } | { ok: false; message: string };

/**
 * A flag's text checked by a schema field: numbers are read as numbers when the field takes only
 * numbers; `input` is what to write into the pipeline, `output` the parsed value (a duration in ms).
 * A refusal reads "must be a whole number from 1 to 1000" or the field's own message.
 */
export function parseFlagValue(field: AnySchema, text: string): FlagValue {
  const numeric = defOf(baseOf(field)).type === 'number';
  const input: unknown = numeric ? (text.trim() === '' ? Number.NaN : Number(text)) : text;
  return checkValue(field, input);
}

/** A value (from a flag or a caller) checked by a schema field. */
export function checkValue(field: AnySchema, input: unknown): FlagValue {
  const parsed = field.safeParse(input);
  if (parsed.success) return { ok: true, input, output: parsed.data };
  const allowed = describeAllowed(field);
  const custom = parsed.error.issues.find((i) => i.code === 'custom');
  return { ok: false, message: custom || !allowed ? ((custom ?? parsed.error.issues[0])?.message ?? 'is not allowed') : `must be ${allowed}` };
}

/** Every override a caller gave, checked by its setting's field: `[flag, message]` for each refused one. */
export function overrideProblems(overrides: SettingOverrides): [flag: string, message: string][] {
  const problems: [string, string][] = [];
  for (const [name, spec] of Object.entries(SETTING_FLAGS) as [SettingName, (typeof SETTING_FLAGS)[SettingName]][]) {
    const value = overrides[name];
    if (value === undefined) continue;
    const checked = checkValue(settingField(spec.path), value);
    if (!checked.ok) problems.push([spec.flag, checked.message]);
  }
  return problems;
}

/** "--concurrency must be a whole number from 1 to 1000", or "--since: "x" is not a duration (…)". */
export function flagError(flag: string, message: string): string {
  return message.startsWith('must ') ? `${flag} ${message}` : `${flag}: ${message}`;
}
