import type { Problem } from '../load/problem.js';
import { summarise, type Plan, type WorkItem } from './plan.js';

/** `--only` and `clipmill retry` name rows as `<manifest>/<id>`, with `*` and `?` globs in either part. */
export interface RowSelection {
  /** The patterns as written, in order. */
  patterns: string[];
  matches(key: string): boolean;
  /** `clipmill retry`: only rows that failed are submitted again; others named are left, with the reason. */
  retry: boolean;
}

/** What the selection left alone among the rows it named, and why (`clipmill retry` names a row that did not fail). */
export interface LeftAlone {
  key: string;
  why: string;
}

function globPart(part: string): RegExp {
  const body = part
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  // Ids are unique ignoring case (load.ts), so a pattern matches the same way.
  return new RegExp(`^${body}$`, 'i');
}

/** Pure: the patterns as a selection, or the problems of those that are not `<manifest>/<id>`. */
export function parseSelection(patterns: readonly string[], source: string, retry = false): { selection?: RowSelection; problems: Problem[] } {
  const problems: Problem[] = [];
  const parts: [RegExp, RegExp][] = [];
  for (const pattern of patterns) {
    const slash = pattern.indexOf('/');
    const manifest = pattern.slice(0, slash);
    const id = pattern.slice(slash + 1);
    if (slash <= 0 || id === '' || id.includes('/')) {
      problems.push({
        file: source,
        line: 0,
        field: pattern,
        message: 'expected <manifest>/<id> as clipmill status shows it (globs allowed: spring-launch/hero-*, */hero)',
      });
      continue;
    }
    parts.push([globPart(manifest), globPart(id)]);
  }
  if (problems.length > 0) return { problems };
  const matches = (key: string): boolean => {
    const slash = key.indexOf('/');
    const manifest = key.slice(0, slash);
    const id = key.slice(slash + 1);
    return parts.some(([m, i]) => m.test(manifest) && i.test(id));
  };
  return { selection: { patterns: [...patterns], matches, retry }, problems };
}

/** A row left out does nothing that may pay for a new run (submit, or look up a lost create); re-attaching and downloading are always done: never paid again, and a result left at the provider expires. */
function leaveAlone(item: WorkItem): WorkItem {
  return item.action === 'submit' || item.action === 'unknown' ? { ...item, action: 'not_selected', wanted: item.action } : item;
}

/** Pure: the patterns that name no row of the manifests (a typo must not silently run nothing, or everything). */
export function unmatchedPatterns(selection: RowSelection, keys: readonly string[]): string[] {
  return selection.patterns.filter((pattern) => {
    const single = parseSelection([pattern], '').selection;
    return single !== undefined && !keys.some((key) => single.matches(key));
  });
}

/** Why `clipmill retry` leaves a row it was named: only a row the journal knows in this version is submitted again. */
function retryRefusal(item: WorkItem): string | undefined {
  // A redo note not run yet makes a new version too: the manifest row is as it was, so "edited" would mislead.
  if (item.action === 'submit' && item.state === undefined && item.row.review !== undefined)
    return 'has a redo note in review.json that has not run yet (a new version of the row, not a retry): run it with clipmill run --only to pay for the redo';
  if (item.action === 'submit' && item.state === undefined)
    return item.changed
      ? 'was edited since its last run (or the pipeline defaults differ): run it with clipmill run --only to pay for the new version'
      : 'has never run: run it with clipmill run --only';
  if (item.action === 'done') return 'is done: nothing to retry';
  return undefined;
}

/**
 * Pure: the plan with every row outside the selection set to `not_selected` when tonight would submit it or look up
 * its lost create. Runs in flight and videos owed are finished for every row (that never pays again). Under `retry`,
 * a named row is submitted again only if the journal knows it in this version (failed, or its create refused).
 */
export function selectRows(plan: Plan, selection: RowSelection): { plan: Plan; left: LeftAlone[] } {
  const left: LeftAlone[] = [];
  const items = plan.items.map((item): WorkItem => {
    if (!selection.matches(item.key)) return leaveAlone(item);
    const why = selection.retry ? retryRefusal(item) : undefined;
    if (why === undefined) return item;
    left.push({ key: item.key, why });
    return leaveAlone(item);
  });
  return { plan: summarise(items), left };
}
