// TypeScript declarations for wspush.js (wspush-client), protocol v1.1
// of wspushd (docs/protocol.md).

/** Connection state. `closed` is final: after close() or a 4000-4999 close. */
export type State = 'connecting' | 'open' | 'closed';

/** A topic's position: the run of the topic (`epoch`) and a seq in it. */
export interface Position {
  epoch: string;
  seq: number;
}

/** What `onReset` gets: the client could not give the application every message. */
export interface ResetInfo {
  topic: string;
  /**
   * - `not_recovered`: a resubscribe with `since` got `recovered:false`
   *   (history off or too short, or the topic started a new epoch);
   * - `reset`: the server sent `{"op":"reset"}` (it lost messages of the topic);
   * - `gap`: a live delivery skipped seqs (dropped for a slow consumer).
   */
  reason: 'not_recovered' | 'reset' | 'gap';
  /** The position the client had reached (null if it had none). */
  from: Position | null;
  /** Where delivery continues: the next message has a seq greater than this. */
  position: Position;
}

/** What `onuserreset` gets: messages of the user stream were lost (reasons as in ResetInfo). */
export interface UserResetInfo {
  /** The user id (the token's `sub`). */
  user: string;
  reason: 'not_recovered' | 'reset' | 'gap';
  from: Position | null;
  position: Position;
}

/** Metadata of one message of the user stream. */
export interface UserMessageMeta {
  user: string;
  seq: number;
  epoch: string;
}

/** Details passed to `onstate`. */
export interface StateDetail {
  /** The close code of the connection that ended (1006 for an abrupt end). */
  code?: number;
  reason?: string;
  /** Milliseconds until the next connect attempt. */
  delay?: number;
}

/** Metadata of one delivery. */
export interface MessageMeta {
  topic: string;
  seq: number;
  /** The epoch of the subscription's position (null before the first ack). */
  epoch: string | null;
}

/** An Error with the server's error code (`bad_topic`, `forbidden`, `limit`, `disabled`, ...)
 * or one of the client's: `closed`, `unsubscribed`, `duplicate`, `token`, `connect`, `bad_frame`,
 * `offline`, `disconnected`. */
export class WspushError extends Error {
  constructor(code: string, message?: string);
  readonly code: string;
}

export interface ClientOptions {
  /** Connect token, sent as `?token=`: a string, or a (possibly async) function called before each connect. */
  token?: string | (() => string | null | undefined | Promise<string | null | undefined>);
  /** Smallest reconnect delay in ms (default 500). */
  minDelay?: number;
  /** Largest reconnect delay in ms (default 30000). */
  maxDelay?: number;
  /** WebSocket constructor (default `globalThis.WebSocket`); e.g. the `ws` package in node. */
  WebSocket?: new (url: string) => WebSocket | any;
  onstate?: ((state: State, detail: StateDetail) => void) | null;
  onerror?: ((err: WspushError) => void) | null;
  onreset?: ((info: ResetInfo | UserResetInfo) => void) | null;
  /** Messages of the user stream (a token with `sub`): each once, in seq order, also across reconnects. */
  onuser?: ((data: any, meta: UserMessageMeta) => void) | null;
  /** Lost messages of the user stream (without it, `onreset` gets them). */
  onuserreset?: ((info: UserResetInfo) => void) | null;
}

export interface SubscribeOptions {
  /** Called when messages were lost (see ResetInfo): reload the state from your backend. */
  onReset?: (info: ResetInfo) => void;
  /** Called when the server refuses a resubscribe after a reconnect (the subscription is then dropped). */
  onError?: (err: WspushError) => void;
}

export interface Subscription<T = unknown> {
  readonly topic: string;
  /** The latest position: from the ack, then each delivery processed, or a reset. */
  readonly position: Position | null;
  /**
   * The server conflates this topic (`--topic-policy topic=conflate`): a slow
   * client gets the latest value, so seq may jump; such jumps are not
   * reported to onReset.
   */
  readonly conflated: boolean;
  /** False after unsubscribe(), close(), or a refused subscribe. */
  readonly active: boolean;
  /** Resolves with the subscription on the server's ack; rejects with a WspushError carrying the server's code and message. */
  readonly ready: Promise<Subscription<T>>;
  /** Stops the subscription; resolves when the server acked (at once when offline). */
  unsubscribe(): Promise<void>;
}

/**
 * A wspushd client: one WebSocket at a time, reconnecting with exponential
 * backoff and full jitter after any close but close() and 4000-4999; on
 * reconnect every subscription resumes from its position with `since`, so
 * each message reaches `onMessage` once, in seq order, and what cannot be
 * recovered goes to `onReset`. With a token that has `sub`, the server
 * joins the connection to that user's stream: its messages go to `onuser`,
 * resumed the same way (`since=@<user>:<epoch>:<seq>` at reconnect).
 * Connects at construction, always with `positions=1`.
 */
export class WspushClient {
  /** @param url the `ws://host:port/ws` (or `wss://`) URL of wspushd */
  constructor(url: string, opts?: ClientOptions);
  readonly url: string;
  readonly state: State;
  onstate: ((state: State, detail: StateDetail) => void) | null;
  /** Errors that belong to no pending request (an error reply without id, a refused resubscribe without onError). */
  onerror: ((err: WspushError) => void) | null;
  /** Resets of subscriptions that have no onReset, and of the user stream without onuserreset (without either, console.warn). */
  onreset: ((info: ResetInfo | UserResetInfo) => void) | null;
  /** Messages of the user stream, see ClientOptions.onuser. */
  onuser: ((data: any, meta: UserMessageMeta) => void) | null;
  /** Lost messages of the user stream, see ClientOptions.onuserreset. */
  onuserreset: ((info: UserResetInfo) => void) | null;
  /** The user the connect token names (learnt from the server at connect), or null. */
  readonly user: string | null;
  /** The user stream's position: from the server at connect, then each message processed, or a reset. */
  readonly userPosition: Position | null;
  /** Subscribes to a topic (one subscription per topic; a second one throws `duplicate`). */
  subscribe<T = unknown>(topic: string, onMessage: (data: T, meta: MessageMeta) => void, opts?: SubscribeOptions): Subscription<T>;
  /**
   * Publishes `data` (any JSON value) to a topic over this connection; the
   * server must run with `--client-publish` (else code `disabled`). Resolves
   * on the server's ack; rejects with the server's code, `offline` (not
   * connected), or `disconnected` (the connection ended before the reply:
   * the outcome is unknown).
   */
  publish(topic: string, data: unknown): Promise<void>;
  /** Closes for good: no reconnect; pending `ready` promises reject with code `closed`. */
  close(): void;
}

/** The reconnect delay of attempt n (0-based): uniform in [minDelay, min(maxDelay, minDelay * 2^n)]. */
export function backoffDelay(attempt: number, minDelay: number, maxDelay: number, random?: () => number): number;
/** Whether the client reconnects after a close with this code (all but 4000-4999, e.g. 4001 "disconnected by server"). */
export function shouldReconnect(code: number): boolean;
/** A JWT's `sub` claim, read without verification: null when it has none, undefined when the token is not a readable JWT. */
export function tokenSubject(token: string | null | undefined): string | null | undefined;

export default WspushClient;
