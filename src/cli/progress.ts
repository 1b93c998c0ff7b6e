// Progress output of long CLI work: a bar with ETA and the running losses
// on a terminal, and a summary line every N steps (always, so logs of
// non-interactive runs show progress too).

import cliProgress from 'cli-progress';
import { memoryStats } from '../pool.js';

/** Formats seconds as 1h02m, 4m05s or 12s. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** Formats losses as "total 0.512 reg 0.310", in the given order. */
export function formatLosses(
  losses: Record<string, number> | null,
  names: readonly [string, string][],
): string {
  if (!losses) return '';
  return names
    .filter(([key]) => losses[key] !== undefined)
    .map(([key, short]) => `${short} ${losses[key].toFixed(4)}`)
    .join(' ');
}

/** Device memory held by the pools, as "123.4 MiB". */
export function deviceMemory(): string {
  return `${(memoryStats().totalBytes / 2 ** 20).toFixed(1)} MiB`;
}

export interface ProgressOptions {
  /** Label in front of the bar, such as "train". */
  label: string;
  total: number;
  /** Print a summary line every this many steps (0: never). */
  every: number;
  /** Output stream of the lines (default process.stderr). */
  stream?: NodeJS.WriteStream;
  /** Draw the bar (default: when the stream is a terminal). */
  bar?: boolean;
}

/**
 * A progress display. update() moves the bar and prints the summary line
 * on every `every`-th step and on the last one; done() closes the bar.
 */
export class Progress {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly stream: NodeJS.WriteStream;
  private readonly started = performance.now();
  private startValue: number | null = null;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    const drawBar = options.bar ?? Boolean(this.stream.isTTY);
    this.bar = drawBar
      ? new cliProgress.SingleBar(
          {
            stream: this.stream,
            format: `${options.label} [{bar}] {value}/{total} | ETA {eta_text} | {detail}`,
            barsize: 24,
            hideCursor: true,
            clearOnComplete: false,
            etaBuffer: 20,
          },
          cliProgress.Presets.legacy,
        )
      : null;
  }

  /** Seconds per step since the first update, and the estimated rest. */
  private rate(value: number): { perStep: number; remaining: number } {
    const elapsed = (performance.now() - this.started) / 1000;
    const steps = value - (this.startValue ?? 0);
    const perStep = steps > 0 ? elapsed / steps : NaN;
    return { perStep, remaining: perStep * (this.options.total - value) };
  }

  /** Shows `value` steps done, with a detail text (losses, stage). */
  update(value: number, detail: string): void {
    if (this.startValue === null) {
      // Timing starts at the first report, so set-up time is not counted.
      this.startValue = value - 1;
    }
    const { perStep, remaining } = this.rate(value);
    if (this.bar) {
      const payload = { detail, eta_text: formatDuration(remaining) };
      if (value === this.startValue + 1 && !this.barStarted) {
        this.bar.start(this.options.total, value, payload);
        this.barStarted = true;
      } else this.bar.update(value, payload);
    }
    const last = value >= this.options.total;
    if (this.options.every > 0 && (value % this.options.every === 0 || last)) {
      const speed = Number.isFinite(perStep) ? `${(1 / perStep).toFixed(3)} it/s` : '? it/s';
      this.line(
        `${this.options.label} ${value}/${this.options.total} | ${detail} | ${speed} | ` +
          `ETA ${formatDuration(remaining)} | device ${deviceMemory()}`,
      );
    }
  }

  private barStarted = false;

  /** Prints a line above the bar (or plainly without one). */
  line(text: string): void {
    if (this.bar && this.barStarted) {
      // cli-progress redraws on the next update; clear the bar's line first.
      this.stream.write('\r\x1b[2K' + text + '\n');
    } else {
      this.stream.write(text + '\n');
    }
  }

  done(): void {
    if (this.bar && this.barStarted) this.bar.stop();
  }
}
