// The `control` and `file` channels (crates/proto/CHANNELS.md, crates/proto/FILES.md): chat,
// clipboard, stats, keyboard mode and file transfers. Control messages are JSON text on
// `control` (read from string or binary messages, as UTF-8); file bytes are binary chunks on
// `file`, each a 13-byte header (tag 0x18, transfer id u32 LE, offset u64 LE) and 1..=16384
// bytes of data. Both channels are opened by the puppet; this page only uses them.

/** Bytes of data per chunk (FILES.md: at most 16384). */
export const CHUNK_DATA = 16384;
/** The chunk's header: tag, id, offset. */
export const CHUNK_HEADER = 13;
/** The v1 chunk tag: version 1, kind 8. */
export const CHUNK_TAG = 0x18;
/** CHANNELS.md: at most this many `file` bytes buffered at once, so input never waits long. */
export const FILE_BUFFER_LIMIT = 64 * 1024;
/** The window this page grants when it receives a file (what rtcdesk grants). */
export const RECEIVE_WINDOW = 4 * 1024 * 1024;
const MIN_WINDOW = 16384;
const MAX_WINDOW = 64 * 1024 * 1024;
/** A received file is kept in memory until saved, so it is bounded. */
export const MAX_RECEIVE = 512 * 1024 * 1024;
/** A file to send is read whole for its SHA-256 (crypto.subtle has no streaming digest). */
export const MAX_SEND = 512 * 1024 * 1024;
/** Transfers in flight each way (what rtcdesk allows). */
const MAX_IN_FLIGHT = 8;
/** Bytes read from a file at once while sending. */
const READ_BLOCK = 1024 * 1024;
/** How often the UI is told of progress, at most. */
const PROGRESS_MS = 100;
const MAX_NAME = 255;
const MAX_REASON = 1024;

/** Decodes one control message, or null when it is not JSON with a string "type". */
export function decodeControl(data) {
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
  try {
    const message = JSON.parse(text);
    return message && typeof message.type === 'string' ? message : null;
  } catch {
    return null;
  }
}

/** One chunk message: header and data (a Uint8Array). */
export function encodeChunk(id, offset, data) {
  const message = new Uint8Array(CHUNK_HEADER + data.length);
  const view = new DataView(message.buffer);
  view.setUint8(0, CHUNK_TAG);
  view.setUint32(1, id, true);
  view.setBigUint64(5, BigInt(offset), true);
  message.set(data, CHUNK_HEADER);
  return message;
}

/**
 * Parses one chunk message (an ArrayBuffer): `{id, offset, data}`, or `{error}` saying why it
 * is refused (FILES.md: wrong version or kind, shorter than 14 bytes, more than 16384 bytes of
 * data, an offset a JavaScript number cannot hold exactly).
 */
export function decodeChunk(buffer) {
  if (!(buffer instanceof ArrayBuffer)) return { error: 'a chunk that is not binary' };
  if (buffer.byteLength < CHUNK_HEADER + 1) return { error: `a chunk of ${buffer.byteLength} bytes` };
  const view = new DataView(buffer);
  const tag = view.getUint8(0);
  if (tag !== CHUNK_TAG) return { error: `tag 0x${tag.toString(16)} is not a v1 chunk` };
  const length = buffer.byteLength - CHUNK_HEADER;
  if (length > CHUNK_DATA) return { error: `a chunk with ${length} bytes of data` };
  const offset = view.getBigUint64(5, true);
  if (offset + BigInt(length) > BigInt(Number.MAX_SAFE_INTEGER)) return { error: 'an offset past 2^53' };
  return { id: view.getUint32(1, true), offset: Number(offset), data: new Uint8Array(buffer, CHUNK_HEADER) };
}

/** SHA-256 as 64 lowercase hex digits, or null where the page has no crypto.subtle. */
export async function sha256Hex(blobOrBytes) {
  if (!globalThis.crypto || !crypto.subtle) return null; // only in secure contexts
  const bytes = blobOrBytes instanceof Blob ? await blobOrBytes.arrayBuffer() : blobOrBytes;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** At most `max` bytes of UTF-8, cut on a character boundary. */
function clip(text, max) {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= max) return text;
  let end = max;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end -= 1;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

const isId = (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isSize = (v) => Number.isSafeInteger(v) && v >= 0;

/**
 * Speaks the control protocol on `control` and moves file bytes on `file`. The UI passes
 * callbacks: chat(text), clipboard(text), stats(message), viewOnly(bool), mode() for the
 * keyboard mode to announce, offer(transfer) for a received offer (call transfer.accept() /
 * transfer.decline()), progress(transfer), done(transfer), failed(transfer, reason).
 *
 * A transfer: `{id, direction: 'in'|'out', name, size, done, rate, cancel()}`; `done` counts
 * bytes acknowledged (sending) or received; `rate` is bytes per second lately. A received one
 * that finished has `blob`.
 */
export class Control {
  constructor(ui) {
    this.ui = ui;
    this.channel = null;
    this.file = null;
    this.nextId = 1;
    this.sending = new Map();
    this.receiving = new Map();
    this.pumping = false;
    this.waitingForRoom = null;
  }

  attach(channel) {
    this.channel = channel;
    channel.addEventListener('message', (event) => {
      const message = decodeControl(event.data);
      if (message) this.handle(message);
    });
    // The channel may already be open when it is announced, with its open event still to come.
    let announced = false;
    const announce = () => {
      if (announced) return;
      announced = this.send({ type: 'keyboard', mode: this.ui.mode() });
    };
    channel.addEventListener('open', announce);
    announce();
  }

  /** The puppet's `file` channel: chunks come in on it, and go out on it. */
  attachFile(channel) {
    this.file = channel;
    channel.binaryType = 'arraybuffer';
    // Woken when the buffer drains to half the limit: room for two more chunks at least.
    channel.bufferedAmountLowThreshold = FILE_BUFFER_LIMIT / 2;
    channel.addEventListener('bufferedamountlow', () => this.wake());
    channel.addEventListener('open', () => this.wake());
    channel.addEventListener('message', (event) => this.chunk(event.data));
    channel.addEventListener('close', () => {
      for (const transfer of [...this.sending.values(), ...this.receiving.values()]) {
        this.end(transfer, 'the file channel closed');
      }
      this.wake();
    });
  }

  send(message) {
    if (!this.channel || this.channel.readyState !== 'open') return false;
    this.channel.send(JSON.stringify(message));
    return true;
  }

  handle(message) {
    switch (message.type) {
      case 'chat':
        if (typeof message.text === 'string') this.ui.chat(message.text);
        break;
      case 'clipboard':
        if (typeof message.text === 'string') this.ui.clipboard(message.text);
        break;
      case 'stats':
        this.ui.stats(message);
        break;
      case 'view_only':
        if (typeof message.on === 'boolean') this.ui.viewOnly(message.on);
        break;
      case 'file_offer': this.offered(message); break;
      case 'file_accept': this.accepted(message); break;
      case 'file_ack': this.acknowledged(message); break;
      case 'file_done': this.finished(message); break;
      case 'file_decline': {
        const transfer = this.sending.get(message.id);
        if (transfer) this.end(transfer, `declined: ${String(message.reason || 'no reason given')}`);
        break;
      }
      case 'file_cancel':
      case 'file_error': {
        // `by` says which end sent it: the receiver's refer to files this page offered.
        const book = message.by === 'receiver' ? this.sending : message.by === 'sender' ? this.receiving : null;
        const transfer = book && book.get(message.id);
        if (!transfer) break;
        const why = message.type === 'file_cancel'
          ? `the puppet cancelled: ${String(message.reason || '')}`
          : `the puppet reports ${String(message.code || 'other')}: ${String(message.message || '')}`;
        this.end(transfer, why);
        break;
      }
      default:
        break;
    }
  }

  setKeyboardMode(mode) {
    this.send({ type: 'keyboard', mode });
  }

  /** Ends a transfer here, without a message to the puppet, and tells the UI why. */
  end(transfer, reason) {
    const book = transfer.direction === 'out' ? this.sending : this.receiving;
    if (book.get(transfer.id) !== transfer) return;
    book.delete(transfer.id);
    transfer.parts = [];
    transfer.over = true;
    this.ui.failed(transfer, reason);
  }

  /** Ends a transfer because the puppet broke a rule of FILES.md. */
  protocol(transfer, message) {
    this.send({
      type: 'file_error', id: transfer.id, by: transfer.direction === 'out' ? 'sender' : 'receiver',
      code: 'protocol', message: clip(message, MAX_REASON),
    });
    this.end(transfer, `stopped: ${message}`);
  }

  progress(transfer, force = false) {
    const now = performance.now();
    if (!force && now - transfer.shownAt < PROGRESS_MS) return;
    // The rate over the time since the last sample at least half a second old.
    if (now - transfer.sampleAt >= 500) {
      transfer.rate = ((transfer.done - transfer.sampleDone) * 1000) / (now - transfer.sampleAt);
      transfer.sampleAt = now;
      transfer.sampleDone = transfer.done;
    }
    transfer.shownAt = now;
    this.ui.progress(transfer);
  }

  newTransfer(fields) {
    const now = performance.now();
    return { done: 0, rate: 0, shownAt: -Infinity, sampleAt: now, sampleDone: 0, ...fields };
  }

  // Sending a file to the puppet.

  async sendFile(file) {
    const refuse = (reason) => this.ui.failed(this.newTransfer({
      id: `refused-${this.nextId++}`, name: file.name, size: file.size, direction: 'out',
    }), reason);
    if (!this.file) { refuse('the puppet offers no file channel'); return; }
    if (this.sending.size >= MAX_IN_FLIGHT) { refuse(`at most ${MAX_IN_FLIGHT} files at once`); return; }
    if (file.size > MAX_SEND) { refuse(`a browser can send files up to ${MAX_SEND / 1024 / 1024} MiB`); return; }
    const id = this.nextId;
    this.nextId += 1;
    const transfer = this.newTransfer({
      id, name: file.name, size: file.size, direction: 'out', file, state: 'hashing',
      sent: 0, acked: 0, window: 0, block: null, blockAt: 0,
    });
    transfer.cancel = () => {
      this.send({ type: 'file_cancel', id, by: 'sender', reason: 'cancelled by the user' });
      this.end(transfer, 'cancelled');
    };
    this.sending.set(id, transfer);
    this.ui.progress(transfer);
    let sha256;
    try {
      sha256 = await sha256Hex(file);
    } catch (error) {
      this.end(transfer, `the file could not be read: ${error.message}`);
      return;
    }
    if (transfer.over) return;
    if (!sha256) {
      this.end(transfer, 'sending files needs a secure page (https:// or localhost) for its SHA-256');
      return;
    }
    transfer.state = 'offered';
    const name = clip(file.name.split(/[\\/]/).pop() || 'file', MAX_NAME);
    if (!this.send({ type: 'file_offer', id, name, size: file.size, sha256 })) {
      this.end(transfer, 'the control channel is closed');
      return;
    }
    this.ui.progress(transfer);
  }

  accepted({ id, offset, window }) {
    const transfer = this.sending.get(id);
    if (!transfer || transfer.state !== 'offered') return;
    if (!isSize(offset) || offset > transfer.size) {
      this.protocol(transfer, `accepted from offset ${offset}, past the size ${transfer.size}`);
      return;
    }
    if (!Number.isInteger(window) || window < MIN_WINDOW || window > MAX_WINDOW) {
      this.protocol(transfer, `a window of ${window} bytes is outside ${MIN_WINDOW}..=${MAX_WINDOW}`);
      return;
    }
    Object.assign(transfer, { state: 'sending', sent: offset, acked: offset, window, done: offset, sampleDone: offset });
    transfer.sampleAt = performance.now();
    this.progress(transfer, true);
    this.wake();
  }

  acknowledged({ id, offset }) {
    const transfer = this.sending.get(id);
    if (!transfer || transfer.state !== 'sending') return;
    if (!isSize(offset) || offset < transfer.acked || offset > transfer.sent) {
      this.protocol(transfer, `an acknowledgement of ${offset} with ${transfer.acked}..=${transfer.sent} possible`);
      return;
    }
    transfer.acked = offset;
    transfer.done = offset;
    this.progress(transfer);
    this.wake();
  }

  finished({ id }) {
    const transfer = this.sending.get(id);
    if (!transfer) return;
    if (transfer.state !== 'sending' || transfer.sent < transfer.size) {
      this.protocol(transfer, `done before ${transfer.size - transfer.sent} bytes were sent`);
      return;
    }
    this.sending.delete(id);
    transfer.done = transfer.size;
    this.progress(transfer, true);
    this.ui.done(transfer);
  }

  /** Starts the sending loop unless it runs; after a wait it is woken by its cause. */
  wake() {
    if (this.waitingForRoom) {
      const resolve = this.waitingForRoom;
      this.waitingForRoom = null;
      resolve();
    }
    if (!this.pumping) this.pump();
  }

  /**
   * Sends chunks, one transfer after another in turn, while the `file` channel's buffer is
   * under its limit and a transfer has window left. Returns when nothing can be sent now; an
   * acknowledgement, an accept or `bufferedamountlow` starts it again.
   */
  async pump() {
    this.pumping = true;
    try {
      for (;;) {
        const file = this.file;
        if (!file || file.readyState !== 'open') return;
        const ready = [...this.sending.values()].filter((t) => t.state === 'sending'
          && t.sent < t.size && t.sent < t.acked + t.window);
        if (ready.length === 0) return;
        let sent = false;
        for (const transfer of ready) {
          if (file.bufferedAmount + CHUNK_HEADER + CHUNK_DATA > FILE_BUFFER_LIMIT) break;
          const room = Math.min(CHUNK_DATA, transfer.size - transfer.sent, transfer.acked + transfer.window - transfer.sent);
          let data;
          try {
            data = await this.read(transfer, room);
          } catch (error) {
            this.send({
              type: 'file_error', id: transfer.id, by: 'sender', code: 'read_failed',
              message: clip(`the browser could not read the file: ${error.message}`, MAX_REASON),
            });
            this.end(transfer, `the file could not be read: ${error.message}`);
            sent = true;
            continue;
          }
          if (transfer.over || file.readyState !== 'open') continue;
          file.send(encodeChunk(transfer.id, transfer.sent, data));
          transfer.sent += data.length;
          sent = true;
        }
        if (!sent) {
          // The buffer is full: wait for `bufferedamountlow` (or an ack, or a cancel).
          await new Promise((resolve) => { this.waitingForRoom = resolve; });
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The next `length` bytes of a transfer's file at `sent`, read a block at a time. */
  async read(transfer, length) {
    const start = transfer.sent;
    if (!transfer.block || start < transfer.blockAt || start + length > transfer.blockAt + transfer.block.length) {
      const end = Math.min(transfer.size, start + Math.max(READ_BLOCK, length));
      transfer.block = new Uint8Array(await transfer.file.slice(start, end).arrayBuffer());
      transfer.blockAt = start;
      if (transfer.block.length < length) throw new Error('the file is shorter than offered');
    }
    return transfer.block.subarray(start - transfer.blockAt, start - transfer.blockAt + length);
  }

  // Receiving a file from the puppet.

  offered(offer) {
    const { id, size, sha256 } = offer;
    if (!isId(id) || !isSize(size) || typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)
      || typeof offer.name !== 'string') {
      return; // refused: dropped, not answered (FILES.md)
    }
    const name = offer.name.split(/[\\/]/).pop().replace(/[\u0000-\u001f\u007f<>:"|?*]/g, '_').trim() || 'file';
    const previous = this.receiving.get(id);
    if (previous) {
      // FILES.md rule 1: reusing the id of a transfer in progress cuts that transfer off.
      this.protocol(previous, `offer ${id} again while it was in progress`);
      return;
    }
    const transfer = this.newTransfer({
      id, name, size, direction: 'in', sha256: sha256.toLowerCase(), state: 'offered',
      parts: [], acked: 0, window: RECEIVE_WINDOW,
    });
    const error = (code, message) => {
      this.send({ type: 'file_error', id, by: 'receiver', code, message: clip(message, MAX_REASON) });
      this.ui.failed(transfer, message);
    };
    if (this.receiving.size >= MAX_IN_FLIGHT) { error('too_many', `at most ${MAX_IN_FLIGHT} files at once`); return; }
    const same = [...this.receiving.values()].some((t) => t.name === name && t.size === size && t.sha256 === transfer.sha256);
    if (same) { error('other', 'this file is already being received'); return; }
    this.receiving.set(id, transfer);
    transfer.accept = () => {
      if (this.receiving.get(id) !== transfer || transfer.state !== 'offered') return;
      if (!globalThis.crypto || !crypto.subtle) {
        this.receiving.delete(id);
        error('other', 'this page is not secure (https:// or localhost), so it cannot check the SHA-256');
        return;
      }
      if (size > MAX_RECEIVE) {
        this.receiving.delete(id);
        error('no_space', `a browser keeps received files in memory, up to ${MAX_RECEIVE / 1024 / 1024} MiB`);
        return;
      }
      transfer.state = 'receiving';
      transfer.sampleAt = performance.now();
      this.send({ type: 'file_accept', id, offset: 0, window: RECEIVE_WINDOW });
      this.progress(transfer, true);
      if (size === 0) this.complete(transfer);
    };
    transfer.decline = () => {
      if (this.receiving.get(id) !== transfer || transfer.state !== 'offered') return;
      this.receiving.delete(id);
      this.send({ type: 'file_decline', id, reason: 'declined by the user' });
    };
    transfer.cancel = () => {
      this.send({ type: 'file_cancel', id, by: 'receiver', reason: 'cancelled by the user' });
      this.end(transfer, 'cancelled');
    };
    this.ui.offer(transfer);
  }

  chunk(data) {
    const chunk = decodeChunk(data);
    if (chunk.error) {
      console.warn(`file channel: dropped ${chunk.error}`);
      return;
    }
    const transfer = this.receiving.get(chunk.id);
    // Chunks of a transfer that just ended, or of none at all, are dropped (FILES.md rule 4).
    if (!transfer || transfer.state === 'checking') return;
    if (transfer.state !== 'receiving') {
      this.protocol(transfer, 'a chunk before the offer was accepted');
      return;
    }
    const end = chunk.offset + chunk.data.length;
    if (chunk.offset !== transfer.done) {
      this.protocol(transfer, `a chunk at ${chunk.offset}, expected ${transfer.done}`);
    } else if (end > transfer.size) {
      this.protocol(transfer, `a chunk ending at ${end}, past the size ${transfer.size}`);
    } else if (end > transfer.acked + transfer.window) {
      this.protocol(transfer, `a chunk ending at ${end}, past the window (${transfer.acked} + ${transfer.window})`);
    } else {
      transfer.parts.push(chunk.data);
      transfer.done = end;
      if (end === transfer.size) {
        this.complete(transfer);
      } else {
        if (end - transfer.acked >= transfer.window / 4) {
          transfer.acked = end;
          this.send({ type: 'file_ack', id: transfer.id, offset: end });
        }
        this.progress(transfer);
      }
    }
  }

  async complete(transfer) {
    transfer.state = 'checking';
    this.progress(transfer, true);
    const blob = new Blob(transfer.parts);
    transfer.parts = [];
    const digest = await sha256Hex(blob);
    if (this.receiving.get(transfer.id) !== transfer) return;
    this.receiving.delete(transfer.id);
    if (digest !== transfer.sha256) {
      this.send({
        type: 'file_error', id: transfer.id, by: 'receiver', code: 'hash_mismatch',
        message: `received ${transfer.size} bytes with SHA-256 ${digest}, offered ${transfer.sha256}`,
      });
      this.ui.failed(transfer, 'the bytes that arrived do not have the offered SHA-256; they were discarded');
      return;
    }
    this.send({ type: 'file_done', id: transfer.id });
    transfer.blob = blob;
    this.ui.done(transfer);
  }
}
