import type { JournalEvent } from '../../lifecycle/events.js';
import type { ReadJournal } from '../journal.js';
import type { RebuiltRow } from './rebuilt-row.js';

type DamagedLine = ReadJournal['damaged'][number];

/** The row a damaged line seems to be about, from its text, to say so (never trusted further). */
export function seemingKeyOf(text: string): string | undefined {
  return /"key"\s*:\s*"([^"\\]{1,300})"/.exec(text)?.[1];
}

/** The intent of a create from a damaged line, when its type, key, request, attempt, time and client_ref can still be read. */
export function salvageSubmitting(text: string): (Extract<JournalEvent, { type: 'submitting' }> & { clientRef: string }) | undefined {
  const field = (name: string) => new RegExp(`"${name}":"([^"\\\\]+)"`).exec(text)?.[1];
  if (field('type') !== 'submitting') return undefined;
  const key = field('key');
  const request = field('request');
  const clientRef = field('clientRef');
  const at = field('at');
  const attempt = Number(/"attempt":(\d+)/.exec(text)?.[1]);
  if (!key || !request || !clientRef || !at || !Number.isFinite(Date.parse(at)) || !Number.isInteger(attempt)) return undefined;
  const session = field('session');
  return { type: 'submitting', at, key, request, attempt, clientRef, ...(session !== undefined && { session }) };
}

/**
 * The create intents read back from damaged lines, as rows to write again: a damaged intent still says which
 * client_ref to look up, and dropping it would let the next run pay again.
 */
export function salvageIntents(damaged: readonly DamagedLine[]): { rows: RebuiltRow[]; lines: Set<number> } {
  const rows: RebuiltRow[] = [];
  const lines = new Set<number>();
  for (const d of damaged) {
    const intent = salvageSubmitting(d.text);
    if (!intent) continue;
    lines.add(d.line);
    rows.push({
      key: intent.key,
      request: intent.request,
      at: intent.at,
      events: [intent],
      from: { kind: 'damaged-intent', line: d.line, clientRef: intent.clientRef },
    });
  }
  return { rows, lines };
}

/** What is lost with the damaged lines nothing could be read back from, one description each. */
export function describeLostLines(damaged: readonly DamagedLine[], salvaged: ReadonlySet<number>): string[] {
  return damaged
    .filter((d) => !salvaged.has(d.line))
    .map((d) => {
      const key = seemingKeyOf(d.text);
      return `journal line ${d.line}: damaged, its content cannot be read${key ? ` (it seems to be about ${key})` : ''}`;
    });
}
