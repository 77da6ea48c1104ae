// Validate AsyncAPI documents with @asyncapi/parser.
//
//     node validate-asyncapi.mjs doc.json [more.json ...]
//
// Prints one JSON line per document: {"file", "errors", "warnings", "diagnostics": [...]}
// (severity 0 is an error, 1 a warning). Exits 1 when any document has an error.
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const parser = new Parser();
let failed = false;
for (const file of process.argv.slice(2)) {
  const text = await readFile(file, "utf8");
  const { document, diagnostics } = await parser.parse(text, { source: file });
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning);
  if (document === undefined || errors.length > 0) failed = true;
  console.log(JSON.stringify({
    file,
    parsed: document !== undefined,
    errors: errors.length,
    warnings: warnings.length,
    diagnostics: diagnostics.map((d) => ({ severity: d.severity, code: d.code, message: d.message, path: d.path })),
  }));
}
process.exit(failed ? 1 : 0);
