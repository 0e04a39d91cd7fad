using System;

namespace Tandem.Protocol
{
    /// <summary>The two codecs, picked by the WebSocket subprotocol (docs/protocol.md §1.1).</summary>
    public enum CodecKind { Json, Binary }

    public static class Codec
    {
        public const string JsonSubprotocol = "tandem.v1.json";
        public const string BinarySubprotocol = "tandem.v1.proto";

        public static string Subprotocol(CodecKind k) { return k == CodecKind.Binary ? BinarySubprotocol : JsonSubprotocol; }

        /// <summary>JSON goes in text frames, binary in binary frames.</summary>
        public static bool IsText(CodecKind k) { return k == CodecKind.Json; }

        public static byte[] Encode(CodecKind k, Envelope e) { return k == CodecKind.Binary ? ProtoCodec.Encode(e) : JsonCodec.Encode(e); }

        /// <summary>Decodes a frame; FormatException when it does not decode.</summary>
        public static Envelope Decode(CodecKind k, byte[] frame) { return k == CodecKind.Binary ? ProtoCodec.Decode(frame) : JsonCodec.Decode(frame); }
    }
}
