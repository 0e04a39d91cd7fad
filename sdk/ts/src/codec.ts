// The two codecs of docs/protocol.md §2, picked by the WebSocket subprotocol.
import { fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import { EnvelopeSchema, type Envelope } from "./gen/tandem_pb.js";

/** The subprotocols: protobuf binary, or protojson with proto field names. */
export type CodecName = "tandem.v1.proto" | "tandem.v1.json";

/** A codec turns envelopes into WebSocket payloads and back. */
export interface Codec {
  readonly subprotocol: CodecName;
  /** Binary frames (Uint8Array) for tandem.v1.proto, text frames for tandem.v1.json. */
  encode(env: Envelope): Uint8Array | string;
  /** Throws on a payload that does not decode (or of the wrong frame type). */
  decode(data: Uint8Array | string): Envelope;
}

const protoCodec: Codec = {
  subprotocol: "tandem.v1.proto",
  encode: (env) => toBinary(EnvelopeSchema, env),
  decode(data) {
    if (typeof data === "string") throw new Error("tandem: text frame on tandem.v1.proto");
    return fromBinary(EnvelopeSchema, data);
  },
};

// The server reads both JSON names, but writes and prefers the proto ones
// (room_message, session_id); unknown keys and enum names of a newer server
// are ignored.
const jsonCodec: Codec = {
  subprotocol: "tandem.v1.json",
  encode: (env) => toJsonString(EnvelopeSchema, env, { useProtoFieldName: true }),
  decode(data) {
    if (typeof data !== "string") throw new Error("tandem: binary frame on tandem.v1.json");
    return fromJsonString(EnvelopeSchema, data, { ignoreUnknownFields: true });
  },
};

/** Returns the codec of a subprotocol. */
export function codecFor(name: CodecName): Codec {
  switch (name) {
    case "tandem.v1.proto":
      return protoCodec;
    case "tandem.v1.json":
      return jsonCodec;
  }
  throw new Error(`tandem: unknown codec ${String(name)}`);
}
