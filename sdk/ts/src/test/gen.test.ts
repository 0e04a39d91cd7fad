// The generated protocol types (src/gen/tandem_pb.ts) match
// protocol/tandem.proto: protoc with this package's protoc-gen-es writes
// them again into a temporary directory and they must be the same, so a
// change to the .proto cannot land without `npm run gen`. Needs Debian's
// protobuf-compiler (.ci/run installs it); without it the test skips,
// except under CI=true, where it fails.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const pkg = fileURLToPath(new URL("../../", import.meta.url)); // sdk/ts/ (from dist/test/)

function protoc(): string {
  try {
    execFileSync("protoc", ["--version"], { stdio: "ignore" });
    return "";
  } catch {
    const why = "protoc is not installed (apt-get install protobuf-compiler)";
    if (process.env.CI === "true") throw new Error(`sdk/ts gen test: ${why}`);
    return why;
  }
}

test("src/gen/tandem_pb.ts is what protoc-gen-es makes of protocol/tandem.proto", { skip: protoc() || false }, async () => {
  const out = await mkdtemp(join(tmpdir(), "tandem-ts-gen-"));
  try {
    execFileSync("protoc", [
      `--plugin=protoc-gen-es=${join(pkg, "node_modules/.bin/protoc-gen-es")}`,
      `--es_out=${out}`, "--es_opt=target=ts",
      "-I", join(pkg, "../../protocol"), join(pkg, "../../protocol/tandem.proto"),
    ], { stdio: ["ignore", "ignore", "pipe"] });
    const fresh = await readFile(join(out, "tandem_pb.ts"), "utf8");
    const committed = await readFile(join(pkg, "src/gen/tandem_pb.ts"), "utf8");
    assert.ok(fresh === committed, "src/gen/tandem_pb.ts differs from protocol/tandem.proto: run `npm run gen` in sdk/ts");
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
