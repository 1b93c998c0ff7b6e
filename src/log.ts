// A small leveled logger. Silent except for errors unless the level is
// raised with setLogLevel() or the RRL_MEDSAM_LOG environment variable
// ("error", "warn", "info", "debug").

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

const ORDER: Record<LogLevel, number> = {
  silent: 0,
  error: 1,
  warn: 2,
  info: 3,
  debug: 4,
};

function initialLevel(): LogLevel {
  const env =
    typeof process !== 'undefined' ? process.env?.RRL_MEDSAM_LOG : undefined;
  if (env && env in ORDER) return env as LogLevel;
  return 'error';
}

let level: LogLevel = initialLevel();

/** Sets how much the library logs; "silent" drops even errors. */
export function setLogLevel(next: LogLevel): void {
  level = next;
}

function emit(at: LogLevel, message: string): void {
  if (ORDER[at] > ORDER[level]) return;
  const line = `rrl-medsam ${at}: ${message}`;
  if (at === 'error') console.error(line);
  else if (at === 'warn') console.warn(line);
  else console.log(line);
}

export const log = {
  error: (message: string) => emit('error', message),
  warn: (message: string) => emit('warn', message),
  info: (message: string) => emit('info', message),
  debug: (message: string) => emit('debug', message),
  enabled: (at: LogLevel) => ORDER[at] <= ORDER[level],
};
