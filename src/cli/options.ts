import { InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import { requiredDuration } from '../config/duration.js';
import { flagError, parseFlagValue, settingField, SETTING_FLAGS, type SettingName } from '../config/flags.js';
import type { PipelineSources } from '../config/pipeline.js';

/** A commander parser that checks a flag's text with a schema field: the error names the flag and what it allows. */
export function schemaParser(flag: string, field: z.ZodType, use: 'input' | 'output' = 'input'): (text: string) => unknown {
  return (text) => {
    const parsed = parseFlagValue(field, text);
    if (!parsed.ok) throw new InvalidArgumentError(flagError(flag, parsed.message));
    return use === 'input' ? parsed.input : parsed.output;
  };
}

/** The option of a flag that overrides a pipeline setting, checked by that setting's schema field. */
export function settingOption(name: SettingName, valueName: string, description: string): Option {
  const { flag, path } = SETTING_FLAGS[name];
  return new Option(`${flag} <${valueName}>`, description).argParser(schemaParser(flag, settingField(path)));
}

/** `--pipeline <file>`, with what this command reads from it. */
export function pipelineOption(description: string): Option {
  return new Option('--pipeline <file>', description);
}

/** `--since <duration>`, as milliseconds, `fallback` when absent. */
export function sinceOption(description: string, fallback: string): Option {
  const parse = schemaParser('--since', requiredDuration(0), 'output');
  return new Option('--since <duration>', description).argParser(parse).default(parse(fallback), fallback);
}

/** Where a command's pipeline comes from, as its options say (`--pipeline` and the setting flags it has). */
export function sourcesOf(opts: Record<string, unknown>): PipelineSources {
  const sources: PipelineSources = {};
  if (typeof opts.pipeline === 'string') sources.pipelineFile = opts.pipeline;
  for (const [name, { flag }] of Object.entries(SETTING_FLAGS) as [SettingName, (typeof SETTING_FLAGS)[SettingName]][]) {
    const value = opts[new Option(`${flag} <v>`).attributeName()];
    if (value !== undefined) (sources as Record<string, unknown>)[name] = value;
  }
  return sources;
}

/** The help line of the output folder option of the folder commands. */
export const OUT_HELP = "output folder (default: the pipeline's output.dir, else out/)";

/** `--only <manifest>/<id>`, repeatable, globs allowed: the rows a command acts on tonight. */
export function onlyOption(): Option {
  return new Option('--only <row>', "only this row, <manifest>/<id> as clipmill status shows it (repeatable; globs, quoted: 'spring-launch/hero-*')").argParser(
    (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
  );
}

/** The `--only` rows given, as run and estimate options take them. */
export function onlyOf(opts: Record<string, unknown>): { only?: string[] } {
  return Array.isArray(opts.only) ? { only: opts.only as string[] } : {};
}
