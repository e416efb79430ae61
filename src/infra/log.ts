import { createLogUpdate } from 'log-update';
import { redactJson, redactText } from './http.js';
import { applyProgress, newProgress, progressLine, renderProgress, type ProgressState } from '../report/progress.js';
import type { LogEventName, LogEvents, LogLevel, LoggedEvent } from './log-events.js';

export type LogFormat = 'pretty' | 'json';
export type { LogLevel } from './log-events.js';

/** The fields of event `E`: required when the event is about a row. */
type FieldsArg<E extends LogEventName> = Partial<LogEvents[E]> extends LogEvents[E] ? [fields?: LogEvents[E]] : [fields: LogEvents[E]];

export interface LoggerOptions {
  format: LogFormat;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
  /** Draw the live block (a terminal): lines are not printed one per event, only warnings and errors. */
  live?: boolean;
  /** A line saying the run is alive, this often, when not live. */
  heartbeatMs?: number;
}

/**
 * Progress and problems. On a terminal: one live block (log-update) with warnings and errors above it.
 * Otherwise (cron, CI): one plain line per event, or JSON lines with `--log json`, and a heartbeat.
 * Nothing secret is ever passed here (keys live only in the HTTP clients' headers).
 */
/** One line as every `--log json` line is shaped (message and details redacted). */
export function jsonLine(level: LogLevel, event: string, message: string, details: Record<string, unknown> = {}): string {
  return JSON.stringify({ time: new Date().toISOString(), level, event, message: redactText(message), details: redactJson(details) });
}

export class Logger {
  private readonly format: LogFormat;
  private readonly write: (line: string) => void;
  private readonly live: ReturnType<typeof createLogUpdate> | undefined;
  private readonly heartbeatMs: number;
  private progress: ProgressState | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: LoggerOptions | LogFormat, write?: (line: string) => void) {
    const o: LoggerOptions = typeof options === 'string' ? { format: options, ...(write && { write }) } : options;
    this.format = o.format;
    this.write = o.write ?? ((line) => process.stderr.write(`${line}\n`));
    this.live = o.live && o.format === 'pretty' ? createLogUpdate(process.stderr, { showCursor: true }) : undefined;
    this.heartbeatMs = o.heartbeatMs ?? 60_000;
  }

  /** Starts tracking progress: the live block, or the heartbeat. */
  startProgress(o: { rowsToDo: number; doneBefore: number; estimatedMicros: number }): void {
    this.progress = newProgress({ startedAtMs: Date.now(), ...o });
    const tick = () => {
      if (!this.progress) return;
      if (this.live) this.live(renderProgress(this.progress, Date.now()).join('\n'));
      else this.info('heartbeat', progressLine(this.progress, Date.now()));
    };
    if (this.live) tick();
    this.timer = setInterval(tick, this.live ? 250 : this.heartbeatMs);
    this.timer.unref();
  }

  stopProgress(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.live && this.progress) {
      this.live(renderProgress(this.progress, Date.now()).join('\n'));
      this.live.done();
    }
    this.progress = undefined;
  }

  info<E extends LogEventName>(event: E, message: string, ...[fields]: FieldsArg<E>): void {
    this.emit('info', { event, fields: fields ?? {} } as LoggedEvent, message);
  }

  warn<E extends LogEventName>(event: E, message: string, ...[fields]: FieldsArg<E>): void {
    this.emit('warn', { event, fields: fields ?? {} } as LoggedEvent, message);
  }

  error<E extends LogEventName>(event: E, message: string, ...[fields]: FieldsArg<E>): void {
    this.emit('error', { event, fields: fields ?? {} } as LoggedEvent, message);
  }

  /** One event of any name at a level chosen at run time (the row machine's log effects). */
  emit(level: LogLevel, logged: LoggedEvent, raw: string): void {
    const { event } = logged;
    const fields = logged.fields as Record<string, unknown> & { manifest?: unknown; row?: unknown };
    if (this.progress) applyProgress(this.progress, logged);
    // The last line of defence: a key or a signature echoed by a provider never reaches a log line.
    const message = redactText(raw);
    if (this.format === 'json') {
      const { manifest, row, ...details } = fields;
      this.write(
        JSON.stringify({
          time: new Date().toISOString(),
          level,
          event,
          ...(manifest !== undefined && { manifest }),
          ...(row !== undefined && { row }),
          message,
          details: redactJson(details),
        }),
      );
      return;
    }
    if (this.live && level === 'info') return; // the block shows it
    const time = new Date().toTimeString().slice(0, 8);
    const where = typeof fields.manifest === 'string' && typeof fields.row === 'string' ? `${fields.manifest}/${fields.row}: ` : '';
    const tag = level === 'info' ? '' : `${level.toUpperCase()} `;
    const line = `${time} ${tag}${where}${message}`;
    if (this.live && this.progress) {
      // Print above the block, then draw the block again below.
      this.live.clear();
      this.write(line);
      this.live(renderProgress(this.progress, Date.now()).join('\n'));
    } else {
      this.write(line);
    }
  }
}
