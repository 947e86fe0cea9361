// Counters of one Transport, for metrics and tests. Monotonic.

export interface TransportStats {
  /** MessageBatch frames written to peer streams. */
  writes: number;
  /** Raft messages written to peer streams. */
  messagesSent: number;
  /** Raft messages dropped on the sending side, for any reason. */
  messagesDropped: number;
  /** ...because the peer's queue was full. */
  droppedQueueFull: number;
  /** ...because the peer was down (backoff) or its stream failed with them queued. */
  droppedPeerDown: number;
  /** ...because no peer with that id is known. */
  droppedUnknownPeer: number;
  /** ...because raft handed over a local or unencodable message (a bug upstream). */
  droppedInvalid: number;
  /** Outbound streams accepted by a peer. */
  streamsOpened: number;
  /** Outbound streams that failed after being accepted. */
  streamsFailed: number;
  /** Outbound connection attempts that failed before the peer accepted. */
  connectFailures: number;
  /** Inbound streams accepted / refused (bad header, other cluster, wrong cert). */
  inboundAccepted: number;
  inboundRefused: number;
  /** Inbound MessageBatch frames, and messages delivered to raft. */
  batchesReceived: number;
  messagesReceived: number;
  /** Inbound messages dropped as malformed (bad field, wrong from/to). */
  malformedReceived: number;
  /** Inbound frames that did not decode strictly (proto/strict.ts): the stream is ended with INVALID_ARGUMENT. */
  undecodableFrames: number;
  /** Exceptions thrown by the node's onMessage handler (a bug upstream). */
  handlerErrors: number;
}

export function newStats(): TransportStats {
  return {
    writes: 0, messagesSent: 0, messagesDropped: 0, droppedQueueFull: 0, droppedPeerDown: 0,
    droppedUnknownPeer: 0, droppedInvalid: 0, streamsOpened: 0, streamsFailed: 0,
    connectFailures: 0, inboundAccepted: 0, inboundRefused: 0, batchesReceived: 0,
    messagesReceived: 0, malformedReceived: 0, undecodableFrames: 0, handlerErrors: 0,
  };
}
