export type LogFormat = 'pretty' | 'json';
export type LogLevel = 'info' | 'warn' | 'error';

export interface LogFields {
  manifest?: string;
  row?: string;
  [name: string]: unknown;
}

/**
 * Progress and problems, one line per event: readable text, or JSON lines for log collectors.
 * Nothing secret is ever passed here (keys live only in the HTTP client's headers).
 */
export class Logger {
  constructor(
    private readonly format: LogFormat,
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  info(event: string, message: string, fields: LogFields = {}): void {
    this.emit('info', event, message, fields);
  }

  warn(event: string, message: string, fields: LogFields = {}): void {
    this.emit('warn', event, message, fields);
  }

  error(event: string, message: string, fields: LogFields = {}): void {
    this.emit('error', event, message, fields);
  }

  private emit(level: LogLevel, event: string, message: string, fields: LogFields): void {
    if (this.format === 'json') {
      this.write(JSON.stringify({ time: new Date().toISOString(), level, event, message, ...fields }));
      return;
    }
    const time = new Date().toTimeString().slice(0, 8);
    const where = fields.manifest !== undefined && fields.row !== undefined ? `${fields.manifest}/${fields.row}: ` : '';
    const tag = level === 'info' ? '' : `${level.toUpperCase()} `;
    this.write(`${time} ${tag}${where}${message}`);
  }
}
