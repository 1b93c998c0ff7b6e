// A strict JSON (RFC 8259) parser for file headers. Unlike JSON.parse it
// rejects duplicate object keys instead of keeping the last, and it returns
// objects as Maps, so a key such as "__proto__" is an ordinary key.

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | Map<string, JsonValue>;

/** Invalid JSON at a character index of the text. */
export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';

  constructor(
    readonly reason: string,
    readonly index: number,
  ) {
    super(`${reason} at character ${index}`);
  }
}

// Nesting past this depth is rejected rather than risking a stack overflow.
const MAX_DEPTH = 64;

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

/** Parses a whole JSON text; throws JsonSyntaxError on any violation. */
export function parseStrictJson(text: string): JsonValue {
  const parser = new Parser(text);
  parser.skipWhitespace();
  const value = parser.parseValue(0);
  parser.skipWhitespace();
  if (parser.index !== text.length) {
    parser.fail('unexpected text after the value');
  }
  return value;
}

class Parser {
  index = 0;

  constructor(private readonly text: string) {}

  fail(reason: string): never {
    throw new JsonSyntaxError(reason, this.index);
  }

  skipWhitespace(): void {
    const { text } = this;
    while (this.index < text.length) {
      const c = text[this.index];
      if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') break;
      this.index += 1;
    }
  }

  parseValue(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH}`);
    const c = this.text[this.index];
    if (c === '{') return this.parseObject(depth);
    if (c === '[') return this.parseArray(depth);
    if (c === '"') return this.parseString();
    if (c === 't') return this.parseLiteral('true', true);
    if (c === 'f') return this.parseLiteral('false', false);
    if (c === 'n') return this.parseLiteral('null', null);
    return this.parseNumber();
  }

  private parseObject(depth: number): Map<string, JsonValue> {
    const object = new Map<string, JsonValue>();
    this.index += 1;
    this.skipWhitespace();
    if (this.text[this.index] === '}') {
      this.index += 1;
      return object;
    }
    for (;;) {
      if (this.text[this.index] !== '"') this.fail('expected a string key');
      const keyIndex = this.index;
      const key = this.parseString();
      if (object.has(key)) {
        throw new JsonSyntaxError(
          `duplicate key ${JSON.stringify(key)}`,
          keyIndex,
        );
      }
      this.skipWhitespace();
      this.expect(':');
      this.skipWhitespace();
      object.set(key, this.parseValue(depth + 1));
      this.skipWhitespace();
      if (this.text[this.index] === '}') {
        this.index += 1;
        return object;
      }
      this.expect(',');
      this.skipWhitespace();
    }
  }

  private parseArray(depth: number): JsonValue[] {
    const array: JsonValue[] = [];
    this.index += 1;
    this.skipWhitespace();
    if (this.text[this.index] === ']') {
      this.index += 1;
      return array;
    }
    for (;;) {
      array.push(this.parseValue(depth + 1));
      this.skipWhitespace();
      if (this.text[this.index] === ']') {
        this.index += 1;
        return array;
      }
      this.expect(',');
      this.skipWhitespace();
    }
  }

  private parseString(): string {
    const { text } = this;
    let out = '';
    let start = (this.index += 1);
    for (;;) {
      if (this.index >= text.length) this.fail('unterminated string');
      const code = text.charCodeAt(this.index);
      if (code === 0x22) break;
      if (code < 0x20) this.fail('control character in a string');
      if (code !== 0x5c) {
        this.index += 1;
        continue;
      }
      out += text.slice(start, this.index);
      out += this.parseEscape();
      start = this.index;
    }
    out += text.slice(start, this.index);
    this.index += 1;
    return out;
  }

  private parseEscape(): string {
    const letter = this.text[this.index + 1];
    if (letter === 'u') {
      const hex = this.text.slice(this.index + 2, this.index + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape');
      this.index += 6;
      return String.fromCharCode(parseInt(hex, 16));
    }
    const escaped = letter === undefined ? undefined : ESCAPES[letter];
    if (escaped === undefined) this.fail('invalid escape');
    this.index += 2;
    return escaped;
  }

  private parseNumber(): number {
    NUMBER.lastIndex = this.index;
    const match = NUMBER.exec(this.text);
    if (match === null) this.fail('expected a value');
    this.index += match[0].length;
    return Number(match[0]);
  }

  private parseLiteral<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.index)) this.fail('expected a value');
    this.index += word.length;
    return value;
  }

  private expect(c: string): void {
    if (this.text[this.index] !== c) this.fail(`expected '${c}'`);
    this.index += 1;
  }
}
