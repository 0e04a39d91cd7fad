// Constructors of every envelope the SDK sends. Reliable frames get their
// cid and seq when they are queued.
import { create } from "@bufbuild/protobuf";
import {
  Delivery,
  EnvelopeSchema,
  JoinMode,
  type Envelope,
  type SeatReservation,
  type StreamPos,
  type TicketCreate,
} from "./gen/tandem_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { TicketCreateSchema } from "./gen/tandem_pb.js";


function envelope(body: MessageInitShape<typeof EnvelopeSchema>["body"]): Envelope {
  return create(EnvelopeSchema, { body });
}

export function connectFrame(token: string, resumeToken: string, positions: StreamPos[], seatToken: string, sdk: string): Envelope {
  return envelope({ case: "connect", value: { token, resumeToken, positions, seatToken, sdk } });
}

export interface JoinFields {
  mode?: JoinMode;
  roomId?: string;
  roomType?: string;
  options?: Uint8Array;
  metadata?: Uint8Array;
  seatToken?: string;
}

export function joinFrame(o: JoinFields): Envelope {
  return create(EnvelopeSchema, {
    body: {
      case: "join",
      value: {
        mode: o.mode ?? JoinMode.UNSPECIFIED,
        roomId: o.roomId ?? "",
        roomType: o.roomType ?? "",
        options: o.options ?? new Uint8Array(),
        metadata: o.metadata ?? new Uint8Array(),
        seatToken: o.seatToken ?? "",
      },
    },
  });
}

/** Joins the room of a seat reservation made on the session's own node: the seat token claims the seat. */
export function seatJoinFrame(sr: SeatReservation, metadata?: Uint8Array): Envelope {
  return joinFrame({ mode: JoinMode.JOIN, roomId: sr.roomId, seatToken: sr.seatToken, metadata });
}

export function leaveFrame(roomId: string): Envelope {
  return create(EnvelopeSchema, { body: { case: "leave", value: { roomId } } });
}

export function roomMessageFrame(roomId: string, topic: string, data: Uint8Array, delivery: Delivery, to: string[]): Envelope {
  return create(EnvelopeSchema, { body: { case: "roomMessage", value: { roomId, topic, data, delivery, to } } });
}

export function rpcFrame(method: string, data: Uint8Array): Envelope {
  return create(EnvelopeSchema, { body: { case: "rpc", value: { method, data } } });
}

export function listRoomsFrame(roomType: string): Envelope {
  return create(EnvelopeSchema, { body: { case: "listRooms", value: { roomType } } });
}

export function ackFrame(positions: StreamPos[]): Envelope {
  return create(EnvelopeSchema, { body: { case: "ackFrame", value: { positions } } });
}

export function pingFrame(timeUs: bigint): Envelope {
  return create(EnvelopeSchema, { body: { case: "ping", value: { timeUs } } });
}

export function pongFrame(timeUs: bigint): Envelope {
  return create(EnvelopeSchema, { body: { case: "pong", value: { timeUs } } });
}

export function ticketCreateFrame(t: MessageInitShape<typeof TicketCreateSchema> | TicketCreate): Envelope {
  return create(EnvelopeSchema, { body: { case: "ticketCreate", value: t } });
}

export function ticketCancelFrame(queue: string): Envelope {
  return create(EnvelopeSchema, { body: { case: "ticketCancel", value: { queue } } });
}

export function ticketStatusFrame(queue: string): Envelope {
  return create(EnvelopeSchema, { body: { case: "ticketStatus", value: { queue } } });
}

export { Delivery };
