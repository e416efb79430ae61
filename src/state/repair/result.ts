/** `clipmill repair`'s exit codes: 0 nothing lost, 1 something could not be recovered, 2 nothing to repair from. */
export const REPAIR_EXIT = { ok: 0, lost: 1, nothingHere: 2 } as const;

export interface RepairResult {
  exitCode: number;
  /** What `clipmill repair` prints. */
  lines: string[];
  journalFile: string;
  /** The damaged original, kept beside the repaired journal (when the journal was rewritten). */
  keptAs?: string;
  /** Lines of the journal kept as they were. */
  keptLines: number;
  /** Line numbers (1-based) of damaged lines that were skipped. */
  damagedLines: number[];
  /** Row keys whose state was rebuilt from a sidecar. */
  rebuilt: string[];
  /** Videos (relative paths) whose row could not be recovered: no sidecar, or one that does not match. */
  unrecovered: string[];
  /** Rows whose last event is a create sent without an answer. */
  submitting: string[];
}
