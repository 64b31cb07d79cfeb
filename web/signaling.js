// Signaling protocol v1 over a WebSocket: one JSON object per text frame, with a "type" field
// (the table in DESIGN.md, "Signaling protocol v1"; crates/proto/src/signal.rs).

/** The signaling WebSocket of the server that served this page. */
export function signalingUrl(location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/signal`;
}

/** What each server error code means to the person at the controller. */
export const ERROR_TEXT = Object.freeze({
  bad_message: 'The signaling server did not understand this page\'s request.',
  unknown_type: 'The signaling server speaks a different protocol version than this page.',
  unknown_code: 'No puppet has this code. Check the digits; codes also expire, so ask for the current one.',
  unknown_session: 'This session no longer exists: the puppet has gone or ended it.',
  busy: 'The server or the puppet has reached its limit. Try again in a moment.',
  rate_limited: 'Too many wrong codes were tried from this address. Wait a minute, then try again.',
  not_allowed: 'The signaling server refused this step.',
});

/** Why the server closed the WebSocket, from its close code (1008 abuse, 1009 too big). */
export function closeText(code, reason) {
  switch (code) {
    case 1000:
    case 1001:
      return 'The signaling server closed the connection.';
    case 1006:
      return 'Cannot reach the signaling server, or the connection to it broke.';
    case 1008:
      return `The signaling server closed the connection: ${reason || 'policy violation'}.`;
    case 1009:
      return 'The signaling server closed the connection: a message was too large.';
    default:
      return `The signaling connection closed (${code}${reason ? `: ${reason}` : ''}).`;
  }
}

/**
 * A signaling connection. Events: `message` (detail: the parsed object) and `close`
 * (detail: {code, reason}).
 */
export class Signaling extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.socket = null;
  }

  /** Opens the WebSocket; resolves when it is open, rejects if it cannot be. */
  open() {
    return new Promise((resolve, reject) => {
      let opened = false;
      const socket = new WebSocket(this.url);
      this.socket = socket;
      socket.addEventListener('open', () => {
        opened = true;
        resolve();
      });
      socket.addEventListener('message', (event) => {
        if (typeof event.data !== 'string') return;
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message && typeof message.type === 'string') {
          this.dispatchEvent(new CustomEvent('message', { detail: message }));
        }
      });
      socket.addEventListener('close', (event) => {
        if (!opened) reject(new Error(closeText(event.code, event.reason)));
        this.socket = null;
        this.dispatchEvent(new CustomEvent('close', {
          detail: { code: event.code, reason: event.reason },
        }));
      });
    });
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  close() {
    if (this.socket) this.socket.close(1000, 'bye');
    this.socket = null;
  }
}

/**
 * The 9 routing digits of a code as typed or pasted ("123 456 789 012", "123-456-789", …), or
 * null. A puppet shows 12 digits; the last 3 are for end-to-end verification, which a page
 * served by the signaling server cannot do (crates/pake/PAKE.md § 6), so they are dropped here
 * and never sent anywhere.
 */
export function normaliseCode(text) {
  const digits = String(text).replace(/[\s\-._]/g, '');
  return /^\d{9}(\d{3})?$/.test(digits) ? digits.slice(0, 9) : null;
}

/** A code grouped for reading: "123 456 789". */
export function groupCode(digits) {
  return digits.replace(/^(\d{3})(\d{3})(\d{3})$/, '$1 $2 $3');
}
