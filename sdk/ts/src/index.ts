// @tandem/sdk: the TypeScript client of Tandem's realtime protocol
// (docs/protocol.md) and player API (docs/api.md), for browsers and Node.js 20.
export { Client, Room } from "./client.js";
export type { ClientEvents, ClientOptions, JoinOptions, SendOptions } from "./client.js";
export type { WebSocketConstructor, WebSocketLike } from "./conn.js";
export type { Codec, CodecName } from "./codec.js";
export { codecFor } from "./codec.js";
export { Auth, loginEmail, loginGuest, newDeviceSecret, register } from "./auth.js";
export type { AuthOptions } from "./auth.js";
export {
  ClientClosedError,
  CloseCode,
  CloseError,
  Code,
  DialError,
  FrameTooLargeError,
  HeartbeatTimeoutError,
  HttpError,
  LoggedOutError,
  RoomLeftError,
  ServerError,
  SessionLostError,
  closeClass,
  codeName,
} from "./errors.js";
export type { CloseClass, FieldError } from "./errors.js";
export { TicketEndedError, ticketEnded } from "./matchmaking.js";
export type { Term, TicketRequest, TicketState, TicketStatus } from "./matchmaking.js";
export { Delivery, JoinMode, LeaveReason, RoomEventKind } from "./gen/tandem_pb.js";
export type { Envelope, RoomInfo, SeatReservation } from "./gen/tandem_pb.js";
