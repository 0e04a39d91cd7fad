// Errors of the SDK: the server's error frames and problem+json answers
// (one code table, docs/protocol.md §11), close codes and their three
// classes (§12), and the SDK's own conditions.
import type { Error as ErrorFrame } from "./gen/tandem_pb.js";

/** Error codes (docs/protocol.md §11); the HTTP API uses the same numbers. */
export const Code = {
  internal: 1,
  invalid: 2,
  unauthenticated: 3,
  permissionDenied: 4,
  notFound: 5,
  conflict: 6,
  rateLimited: 7,
  unavailable: 8,
  tooLarge: 9,
  unknownMessage: 10,
  notInRoom: 11,
  roomFull: 12,
  joinRejected: 13,
  quotaExceeded: 14,
  tokenExpired: 15,
  unknownRpc: 16,
  timeout: 17,
  validationFailed: 18,
  mfaRequired: 19,
  reauthRequired: 20,
  banned: 21,
} as const;

const codeNames = [
  "", "internal", "invalid", "unauthenticated", "permission_denied", "not_found", "conflict",
  "rate_limited", "unavailable", "too_large", "unknown_message", "not_in_room", "room_full",
  "join_rejected", "quota_exceeded", "token_expired", "unknown_rpc", "timeout", "validation_failed",
  "mfa_required", "reauth_required", "banned",
];

/** The name of an error code, "unknown" for one this SDK does not know (a newer server). */
export function codeName(code: number): string {
  return codeNames[code] || "unknown";
}

/** One invalid field of a request (validation_failed). */
export interface FieldError {
  field: string;
  message: string;
}

/**
 * An error frame of the realtime server, or a problem+json answer of the web
 * server. `message` is safe to show.
 */
export class ServerError extends Error {
  override readonly name = "ServerError";
  /** The code's name, such as "room_full". */
  readonly codeName: string;
  constructor(
    readonly code: number,
    message: string,
    readonly temporary = false,
    readonly fields: FieldError[] = [],
    /** How long to wait before retrying (rate_limited), in ms; 0 when not said. */
    readonly retryAfterMs = 0,
    /** banned: when the ban ends; undefined for a permanent ban. */
    readonly until?: Date,
  ) {
    super(message ? `tandem: server error ${codeName(code)} (${code}): ${message}` : `tandem: server error ${codeName(code)} (${code})`);
    this.codeName = codeName(code);
  }

  static fromFrame(e: ErrorFrame): ServerError {
    return new ServerError(e.code, e.message, e.temporary, e.fields.map((f) => ({ field: f.field, message: f.message })));
  }
}

/** What a client does after a close (docs/protocol.md §9.4). */
export type CloseClass = "resume" | "rejoin" | "final";

/** The close codes the server sends (docs/protocol.md §12). */
export const CloseCode = {
  abnormal: 4000,
  heartbeatTimeout: 4001,
  slowConsumer: 4002,
  serverRestart: 4003,
  replaced: 4004,
  sessionExpired: 4300,
  nodeDraining: 4301,
  nodeGone: 4302,
  badToken: 4500,
  banned: 4501,
  kicked: 4502,
  protocolViolation: 4503,
  duplicateSession: 4504,
  moved: 4505,
  connectTimeout: 4506,
  tooLarge: 4507,
  policyViolation: 4508,
} as const;

/**
 * The class of a close code: 4500–4999 final, 4300–4499 rejoin, anything
 * else (4000–4299, 1000, 1001, 1006, a reset) resume.
 */
export function closeClass(code: number): CloseClass {
  if (code >= 4500 && code <= 4999) return "final";
  if (code >= 4300 && code <= 4499) return "rejoin";
  return "resume";
}

/** A WebSocket close from the server, with the error frame sent just before it, if any. */
export class CloseError extends Error {
  override readonly name = "CloseError";
  constructor(
    readonly code: number,
    readonly reason: string,
    readonly server?: ServerError,
  ) {
    super(`tandem: connection closed: ${code} (${closeClass(code)})${reason ? `: ${reason}` : ""}${server ? `; ${server.message}` : ""}`, { cause: server });
  }

  get closeClass(): CloseClass {
    return closeClass(this.code);
  }
}

/** An answer of the web server that is not problem+json (a proxy's error page). */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    readonly retryAfterMs = 0,
  ) {
    super(`tandem: HTTP ${status}`);
  }
}

/** The client was closed with close(); requests and sends fail with it. */
export class ClientClosedError extends Error {
  override readonly name = "ClientClosedError";
  constructor() {
    super("tandem: client closed");
  }
}

/**
 * The session ended (rejoin class, or moved away) and the SDK started a new
 * one; requests pending then fail with it, and so do sends to the old rooms.
 */
export class SessionLostError extends Error {
  override readonly name = "SessionLostError";
  constructor(cause?: unknown) {
    super("tandem: session lost", { cause });
  }
}

/** The room was left; sends to it fail. */
export class RoomLeftError extends Error {
  override readonly name = "RoomLeftError";
  constructor() {
    super("tandem: room left");
  }
}

/** The encoded frame is larger than the server's max_frame_bytes; it was not sent. */
export class FrameTooLargeError extends Error {
  override readonly name = "FrameTooLargeError";
  constructor() {
    super("tandem: frame larger than max_frame_bytes");
  }
}

/** Nothing arrived for the heartbeat timeout: the connection was treated as lost. */
export class HeartbeatTimeoutError extends Error {
  override readonly name = "HeartbeatTimeoutError";
  constructor() {
    super("tandem: no frame within the heartbeat timeout");
  }
}

/** The WebSocket could not be opened (no answer, a refused upgrade). */
export class DialError extends Error {
  override readonly name = "DialError";
  constructor(readonly url: string, cause?: unknown) {
    super(`tandem: cannot open ${url}`, { cause });
  }
}

/**
 * The login session is over: logout(), or the server refused a refresh for
 * good (cause: the ServerError saying why, such as banned). A client whose
 * token source fails with it stops.
 */
export class LoggedOutError extends Error {
  override readonly name = "LoggedOutError";
  constructor(cause?: unknown) {
    super("tandem: logged out", { cause });
  }
}

/** The class of the reason a connection or a connection attempt ended. */
export function classOf(err: unknown): CloseClass {
  if (err instanceof CloseError) return err.closeClass;
  if (err instanceof LoggedOutError) return "final";
  return "resume";
}

export function isMoved(err: unknown): boolean {
  return err instanceof CloseError && err.code === CloseCode.moved;
}

/** Whether err says the node used is gone, so the client should ask where to go. */
export function nodeGone(err: unknown): boolean {
  if (err instanceof DialError) return true;
  if (!(err instanceof CloseError)) return false;
  return err.code === CloseCode.nodeDraining || err.code === CloseCode.nodeGone || err.code === CloseCode.moved;
}
