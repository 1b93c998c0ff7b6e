// A live loss plot on a 2D canvas: one panel per loss term, one above the
// other, each with its own value range (the terms differ in scale and the NCC
// similarity is negative), redrawn after every training step.

export interface LossSeries {
  /** Loss name in StepResult.losses, such as 'registration'. */
  key: string;
  /** Panel title. */
  title: string;
}

const BACKGROUND = '#18181c';
const AXES = '#5a5a64';
const TEXT = '#c8c8d0';
const CURVE = '#ffbe3c';
const FONT = '13px system-ui, sans-serif';
const SCALE_FONT = '11px system-ui, sans-serif';
const PADDING = 10;

function formatValue(value: number): string {
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e4)) {
    return value.toExponential(2);
  }
  return value.toFixed(4);
}

export class LossPlot {
  private series: LossSeries[] = [];
  private points: { iteration: number; values: Record<string, number> }[] = [];

  constructor(private readonly canvas: HTMLCanvasElement) {
    this.draw();
  }

  /** Starts a new plot of `series`, clearing the old points. */
  reset(series: LossSeries[]): void {
    this.series = series;
    this.points = [];
    this.draw();
  }

  /** Adds the losses of one step and redraws. */
  add(iteration: number, losses: Partial<Record<string, number>>): void {
    const values: Record<string, number> = {};
    for (const { key } of this.series) {
      const value = losses[key];
      if (value !== undefined && Number.isFinite(value)) values[key] = value;
    }
    this.points.push({ iteration, values });
    this.draw();
  }

  /** Number of steps plotted since the last reset. */
  get length(): number {
    return this.points.length;
  }

  private draw(): void {
    const context = this.canvas.getContext('2d');
    if (!context) return;
    // Draw in CSS pixels on a backing store of the device's resolution.
    const ratio = window.devicePixelRatio || 1;
    const width = this.canvas.clientWidth || this.canvas.width;
    const height = this.canvas.clientHeight || this.canvas.height;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.fillStyle = BACKGROUND;
    context.fillRect(0, 0, width, height);
    if (this.series.length === 0) {
      context.font = FONT;
      context.fillStyle = TEXT;
      context.fillText('Loss curves appear here during training.', PADDING, 24);
      return;
    }
    const panelHeight = height / this.series.length;
    this.series.forEach((series, index) => {
      this.drawPanel(context, series, index * panelHeight, width, panelHeight);
    });
  }

  private drawPanel(
    context: CanvasRenderingContext2D,
    series: LossSeries,
    top: number,
    width: number,
    height: number,
  ): void {
    const values = this.points
      .filter((point) => point.values[series.key] !== undefined)
      .map((point) => ({ x: point.iteration, y: point.values[series.key] }));
    context.font = FONT;
    context.fillStyle = TEXT;
    const last = values.at(-1);
    const title = last
      ? `${series.title}: ${formatValue(last.y)}`
      : series.title;
    context.fillText(title, PADDING, top + PADDING + 10, width - 2 * PADDING);
    const box = {
      left: PADDING,
      top: top + PADDING + 16,
      width: width - 2 * PADDING,
      height: height - PADDING * 2 - 16,
    };
    context.strokeStyle = AXES;
    context.strokeRect(box.left, box.top, box.width, box.height);
    if (values.length === 0) return;
    const xs = values.map((value) => value.x);
    const ys = values.map((value) => value.y);
    const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
    let [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
    if (yMax - yMin < 1e-12) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
    // A single point sits in the middle of the x range.
    const xFraction = (x: number) =>
      xMax === xMin ? 0.5 : (x - xMin) / (xMax - xMin);
    const toX = (x: number) => box.left + xFraction(x) * box.width;
    const toY = (y: number) =>
      box.top + (1 - (y - yMin) / (yMax - yMin)) * box.height;
    context.strokeStyle = CURVE;
    context.fillStyle = CURVE;
    context.lineWidth = 2;
    context.beginPath();
    values.forEach((value, i) => {
      if (i === 0) context.moveTo(toX(value.x), toY(value.y));
      else context.lineTo(toX(value.x), toY(value.y));
    });
    context.stroke();
    if (values.length === 1) {
      context.fillRect(toX(values[0].x) - 2, toY(values[0].y) - 2, 4, 4);
    }
    context.lineWidth = 1;
    this.drawScale(context, box, [xMin, xMax], [yMin, yMax]);
  }

  /**
   * Writes the panel's value range at the top and bottom of its left edge
   * and its iteration range at the bottom right, inside the box.
   */
  private drawScale(
    context: CanvasRenderingContext2D,
    box: { left: number; top: number; width: number; height: number },
    [xMin, xMax]: [number, number],
    [yMin, yMax]: [number, number],
  ): void {
    context.font = SCALE_FONT;
    context.fillStyle = AXES;
    const bottom = box.top + box.height - 4;
    context.textAlign = 'left';
    context.fillText(formatValue(yMax), box.left + 4, box.top + 12);
    context.fillText(formatValue(yMin), box.left + 4, bottom);
    context.textAlign = 'right';
    const iterations = xMin === xMax ? `iteration ${xMin}` : `iterations ${xMin} to ${xMax}`;
    context.fillText(iterations, box.left + box.width - 4, bottom);
    context.textAlign = 'left';
  }
}
