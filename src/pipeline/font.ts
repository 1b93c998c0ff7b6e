// A 5x7 pixel bitmap font for panel titles in PNG previews: upper-case
// letters, digits and common punctuation. Lower-case letters are drawn as
// upper case, and characters without a glyph as a blank.

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;

// Each glyph is 7 rows of 5 pixels, '#' set, top row first.
const GLYPHS: Record<string, string> = {
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '####. #...# #...# #...# #...# #...# ####.',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '####. ....# ....# .###. ....# ....# ####.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '.###. #.... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ....# .###.',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  ',': '..... ..... ..... ..... .##.. ..#.. .#...',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  '-': '..... ..... ..... ##### ..... ..... .....',
  '_': '..... ..... ..... ..... ..... ..... #####',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
  '=': '..... ..... ##### ..... ##### ..... .....',
  '/': '....# ....# ...#. ..#.. .#... #.... #....',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '%': '##..# ##.#. ...#. ..#.. .#... .#.## #..##',
  '#': '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.',
  "'": '..#.. ..#.. .#... ..... ..... ..... .....',
};

/** Returns the 7 rows of a character's glyph, or null for a blank. */
export function glyphRows(character: string): string[] | null {
  const glyph = GLYPHS[character.toUpperCase()];
  return glyph ? glyph.split(' ') : null;
}

/** Returns the width in pixels of text drawn at `scale`. */
export function textWidth(text: string, scale: number): number {
  if (text.length === 0) return 0;
  return (text.length * (GLYPH_WIDTH + 1) - 1) * scale;
}

/** An 8-bit RGBA canvas, rows top to bottom (the layout of RgbaImage). */
interface Canvas {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Draws text with the 5x7 font at (left, top), each font pixel a
 * scale x scale square of `color` (default white). Pixels off the canvas
 * are dropped.
 */
export function drawText(
  canvas: Canvas,
  text: string,
  left: number,
  top: number,
  scale: number,
  color: readonly [number, number, number] = [255, 255, 255],
): void {
  for (let character = 0; character < text.length; character++) {
    const rows = glyphRows(text[character]);
    if (!rows) continue;
    const glyphLeft = left + character * (GLYPH_WIDTH + 1) * scale;
    rows.forEach((bits, row) => {
      for (let column = 0; column < GLYPH_WIDTH; column++) {
        if (bits[column] !== '#') continue;
        fillRect(canvas, glyphLeft + column * scale, top + row * scale, scale, scale, color);
      }
    });
  }
}

/** Fills a rectangle with an opaque colour, clipped to the canvas. */
export function fillRect(
  canvas: Canvas,
  x0: number,
  y0: number,
  width: number,
  height: number,
  color: readonly [number, number, number],
): void {
  const xStart = Math.max(0, Math.floor(x0));
  const yStart = Math.max(0, Math.floor(y0));
  const xEnd = Math.min(canvas.width, Math.floor(x0 + width));
  const yEnd = Math.min(canvas.height, Math.floor(y0 + height));
  for (let y = yStart; y < yEnd; y++) {
    for (let x = xStart; x < xEnd; x++) {
      const pixel = (y * canvas.width + x) * 4;
      canvas.data[pixel] = color[0];
      canvas.data[pixel + 1] = color[1];
      canvas.data[pixel + 2] = color[2];
      canvas.data[pixel + 3] = 255;
    }
  }
}
