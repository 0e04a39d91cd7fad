// The client's side of reliable delivery (docs/protocol.md §4, §5): the
// resend buffer of its reliable frames and its position in every stream.
import { create } from "@bufbuild/protobuf";
import { StreamPosSchema, type StreamPos } from "./gen/tandem_pb.js";

/** A reliable client frame kept until the server acks its seq. */
export interface OutFrame {
  seq: bigint;
  cid: bigint;
  payload: Uint8Array | string; // resent as is, with its original seq and cid
  room?: string; // room_message only: for the error event of a refusal
  topic?: string;
}

/** The reliable frames the server has not acknowledged, in seq order. */
export class ResendBuffer {
  frames: OutFrame[] = [];

  add(f: OutFrame): void {
    this.frames.push(f);
  }

  /** Drops the frames with seq <= ack. */
  trim(ack: bigint): void {
    let i = 0;
    while (i < this.frames.length && this.frames[i]!.seq <= ack) i++;
    if (i > 0) this.frames = this.frames.slice(i);
  }

  byCid(cid: bigint): OutFrame | undefined {
    return this.frames.find((f) => f.cid === cid);
  }

  reset(): void {
    this.frames = [];
  }
}

interface RoomPos {
  epoch: number;
  seq: bigint;
}

/**
 * The last position received per stream. Frames at or below it are dropped:
 * a frame arrives twice only around a resume.
 */
export class Tracker {
  session = 0n;
  rooms = new Map<string, RoomPos>();
  /** Frames were accepted since the last ack_frame. */
  dirty = false;

  /** Whether a session-stream frame is new; advances the position. seq 0 is in no stream. */
  acceptSession(seq: bigint): boolean {
    if (seq === 0n) return true;
    if (seq <= this.session) return false;
    this.session = seq;
    this.dirty = true;
    return true;
  }

  join(room: string, epoch: number, seq: bigint): void {
    this.rooms.set(room, { epoch, seq });
    this.dirty = true;
  }

  leave(room: string): void {
    this.rooms.delete(room);
    this.dirty = true;
  }

  /** Whether the room is tracked, and whether a frame with seq is new in it. */
  acceptRoom(room: string, seq: bigint): { known: boolean; fresh: boolean } {
    const p = this.rooms.get(room);
    if (!p) return { known: false, fresh: false };
    if (seq === 0n) return { known: true, fresh: true };
    if (seq <= p.seq) return { known: true, fresh: false };
    p.seq = seq;
    this.dirty = true;
    return { known: true, fresh: true };
  }

  /** Applies a gap: the position becomes (epoch, seq) unless the gap is a duplicate. */
  gap(room: string, epoch: number, seq: bigint): { known: boolean; fresh: boolean } {
    const p = this.rooms.get(room);
    if (!p) return { known: false, fresh: false };
    if (epoch < p.epoch || (epoch === p.epoch && seq <= p.seq)) return { known: true, fresh: false };
    p.epoch = epoch;
    p.seq = seq;
    this.dirty = true;
    return { known: true, fresh: true };
  }

  /** Every position: the session stream first, then the rooms by id. */
  positions(): StreamPos[] {
    const out = [create(StreamPosSchema, { seq: this.session })];
    for (const id of [...this.rooms.keys()].sort()) {
      const p = this.rooms.get(id)!;
      out.push(create(StreamPosSchema, { room: id, epoch: p.epoch, seq: p.seq }));
    }
    return out;
  }
}

/**
 * The delay before reconnect attempt n (0-based), in ms: full jitter,
 * uniform in [lo, min(hi, lo·2^(n+1))].
 */
export function backoff(n: number, lo: number, hi: number): number {
  const ceil = Math.min(hi, lo * 2 ** Math.min(n + 1, 30));
  return lo + Math.random() * Math.max(ceil - lo, 0);
}
