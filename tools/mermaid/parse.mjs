// Parses each Mermaid block of the Markdown files given (```mermaid fences) with the real Mermaid parser, as GitHub
// renders them; prints one JSON line per block: {"file", "block", "ok", "type" | "error"}. Exit 1 if any fails.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const { window } = new JSDOM('');
globalThis.window = window;
globalThis.document = window.document;
const mermaid = (await import('mermaid')).default;

let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, 'utf8');
  const blocks = [...text.matchAll(/^```mermaid\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  if (blocks.length === 0) {
    console.log(JSON.stringify({ file, block: -1, ok: false, error: 'no mermaid block' }));
    failed += 1;
  }
  for (const [block, source] of blocks.entries()) {
    try {
      const result = await mermaid.parse(source);
      console.log(JSON.stringify({ file, block, ok: true, type: result.diagramType }));
    } catch (err) {
      failed += 1;
      console.log(JSON.stringify({ file, block, ok: false, error: String(err?.message ?? err).split('\n')[0] }));
    }
  }
}
process.exit(failed ? 1 : 0);
