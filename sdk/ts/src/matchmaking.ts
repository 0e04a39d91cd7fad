// Matchmaking types (docs/matchmaking.md): tickets in queues, their
// statuses, and the request Client.matchmake follows to a room.
import type { SeatReservation, TicketStatus as TicketStatusFrame } from "./gen/tandem_pb.js";
import { create } from "@bufbuild/protobuf";
import { MatchTermSchema, TicketCreateSchema, type TicketCreate } from "./gen/tandem_pb.js";

/** One term of a ticket's query on another ticket's property. */
export interface Term {
  property: string;
  /** The string value is one of these (one value: equals). */
  oneOf?: string[];
  /** Bounds of the numeric value. */
  min?: number;
  max?: number;
  /** should terms: added to the score (0 counts as 1). */
  weight?: number;
}

/** A matchmaking ticket. */
export interface TicketRequest {
  queue: string;
  /** Properties; the server takes only those the queue lets a client set (the token's mm claim wins). */
  strings?: Record<string, string>;
  numbers?: Record<string, number>;
  /** Terms every other player of the match satisfies. */
  must?: Term[];
  /** Terms that raise a candidate's score. */
  should?: Term[];
  /** Tickets with the same party land in one match and team, once all partySize are in. */
  party?: string;
  partySize?: number;
}

/** The states of TicketStatus.state. */
export type TicketState = "searching" | "claimed" | "matched" | "seated" | "done" | "cancelled" | "expired";

/** The state of the player's ticket in a queue. */
export interface TicketStatus {
  ticketId: string;
  queue: string;
  state: TicketState | string;
  /** cancelled, expired: why (cancelled, session_ended, queue_deleted, timeout, seat_expired). */
  reason: string;
  matchId: string;
  /** When the ticket started waiting; undefined when not said. */
  createdAt?: Date;
  team: number;
  /** matched: the reservation of the player's seat (matchmake takes it by itself). */
  seat?: SeatReservation;
}

/** Whether the ticket is over (done, cancelled or expired): the player may queue again. */
export function ticketEnded(s: TicketStatus): boolean {
  return s.state === "done" || s.state === "cancelled" || s.state === "expired";
}

/** matchmake's error when the ticket ended before the player was seated. */
export class TicketEndedError extends Error {
  override readonly name = "TicketEndedError";
  constructor(readonly status: TicketStatus) {
    super(`tandem: the ticket in queue "${status.queue}" ended: ${status.state}${status.reason ? ` (${status.reason})` : ""}`);
  }
}

export function ticketStatusOf(ts: TicketStatusFrame): TicketStatus {
  return {
    ticketId: ts.ticketId,
    queue: ts.queue,
    state: ts.state,
    reason: ts.reason,
    matchId: ts.matchId,
    createdAt: ts.createdAtMs !== 0n ? new Date(Number(ts.createdAtMs)) : undefined,
    team: ts.team,
    seat: ts.seat,
  };
}

export function ticketCreateOf(r: TicketRequest): TicketCreate {
  const terms = (ts: Term[] | undefined) =>
    (ts ?? []).map((t) => create(MatchTermSchema, { property: t.property, oneOf: t.oneOf ?? [], min: t.min, max: t.max, weight: t.weight ?? 0 }));
  return create(TicketCreateSchema, {
    queue: r.queue,
    stringProperties: r.strings ?? {},
    numericProperties: r.numbers ?? {},
    must: terms(r.must),
    should: terms(r.should),
    party: r.party ?? "",
    partySize: r.partySize ?? 0,
  });
}
