// Vite (and so vitest, in Node and in the browser) loads `?raw` imports as
// the file's text. The test fixtures load this way, so the same import works
// in both projects without node:fs.
declare module '*?raw' {
  const text: string;
  export default text;
}
