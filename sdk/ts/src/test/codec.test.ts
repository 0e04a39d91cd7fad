// Both codecs against conformance/vectors (conformance/README.md; the rules
// are protocol/testdata/vectors/README.md): each NAME.bin and NAME.json
// decode to the same envelope; re-encoding gives NAME.bin byte for byte
// (from either) and, in JSON, the same parsed values; the variants decode
// to the same envelope as NAME. And the close-code classes.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";
import { equals } from "@bufbuild/protobuf";
import { EnvelopeSchema, type Envelope } from "../gen/tandem_pb.js";
import { CloseCode, closeClass, codecFor } from "../index.js";

const dir = new URL("../../../../conformance/vectors/", import.meta.url);
const json = codecFor("tandem.v1.json");
const proto = codecFor("tandem.v1.proto");

function read(name: string): Envelope {
  const path = new URL(name, dir);
  return name.endsWith(".bin") ? proto.decode(new Uint8Array(readFileSync(path))) : json.decode(readFileSync(path, "utf8"));
}

function hex(b: Uint8Array | string): string {
  return Buffer.from(b as Uint8Array).toString("hex");
}

const files = readdirSync(dir);
const names = files.filter((f) => f.endsWith(".bin") && f.split(".").length === 2).map((f) => f.slice(0, -4));

test("the vectors exist", () => {
  assert.ok(names.length > 10, `only ${names.length} vectors in ${dir.pathname}`);
});

for (const name of names) {
  test(`vector ${name}: both codecs decode the same envelope and round-trip`, () => {
    const bin = readFileSync(new URL(`${name}.bin`, dir)).toString("hex");
    const fromBin = read(`${name}.bin`);
    const fromJson = read(`${name}.json`);
    assert.ok(equals(EnvelopeSchema, fromBin, fromJson), `${name}.bin and ${name}.json differ`);
    // The server's encoding, byte for byte: from the .bin and from the .json.
    assert.equal(hex(proto.encode(fromBin)), bin, `${name}.bin re-encoded`);
    assert.equal(hex(proto.encode(fromJson)), bin, `${name}.json encoded as proto`);
    const text = json.encode(fromJson) as string;
    assert.ok(equals(EnvelopeSchema, json.decode(text), fromJson));
    // The SDK writes proto field names, and 64-bit integers as strings.
    assert.deepEqual(JSON.parse(text), JSON.parse(readFileSync(new URL(`${name}.json`, dir), "utf8")));
  });
}

for (const variant of files.filter((f) => f.split(".").length === 3)) {
  const base = variant.split(".")[0]!;
  test(`vector ${variant} decodes as ${base}`, () => {
    assert.ok(equals(EnvelopeSchema, read(variant), read(`${base}.bin`)));
  });
}

test("a frame of the other type is refused", () => {
  assert.throws(() => json.decode(new Uint8Array([1])));
  assert.throws(() => proto.decode("{}"));
});

test("close codes fall in three classes", () => {
  const want: [number, string][] = [
    [CloseCode.abnormal, "resume"],
    [CloseCode.heartbeatTimeout, "resume"],
    [CloseCode.replaced, "resume"],
    [4299, "resume"],
    [1000, "resume"],
    [1006, "resume"],
    [CloseCode.sessionExpired, "rejoin"],
    [CloseCode.nodeGone, "rejoin"],
    [4499, "rejoin"],
    [CloseCode.badToken, "final"],
    [CloseCode.moved, "final"],
    [4999, "final"],
  ];
  for (const [code, cls] of want) assert.equal(closeClass(code), cls, String(code));
});
