// The `control` channel: JSON messages (crates/proto/src/control.rs): chat, clipboard, stats,
// keyboard mode, and a small file transfer (offer → accept → base64 chunks, each acknowledged
// → done). The native side may send them with the binary PPID, so both string and ArrayBuffer
// messages are read, as UTF-8.

const CHUNK = 16 * 1024; // MAX_FILE_CHUNK
const WINDOW = 16 * CHUNK; // bytes sent ahead of the last acknowledgement
const MAX_RECEIVE = 512 * 1024 * 1024; // a received file is kept in memory until saved

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

function toBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function sha256Hex(blobOrBytes) {
  if (!globalThis.crypto || !crypto.subtle) return null; // only in secure contexts
  const bytes = blobOrBytes instanceof Blob ? await blobOrBytes.arrayBuffer() : blobOrBytes;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Speaks the control protocol on one channel. The UI passes callbacks:
 * chat(text), clipboard(text), stats(message), viewOnly(bool), mode() for the keyboard mode
 * to announce, offer(transfer) for a received
 * offer (call transfer.accept() / transfer.decline()), progress(transfer), done(transfer),
 * failed(transfer, reason).
 */
export class Control {
  constructor(ui) {
    this.ui = ui;
    this.channel = null;
    this.nextId = 1;
    this.sending = new Map();
    this.receiving = new Map();
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
        this.ui.viewOnly(message.on === true);
        break;
      case 'file_offer':
        this.received(message);
        break;
      case 'file_chunk':
        this.chunk(message);
        break;
      case 'file_done':
        this.finish(message.id);
        break;
      case 'file_accept':
        this.pump(message.id, Number(message.offset) || 0, true);
        break;
      case 'file_ack':
        this.pump(message.id, Number(message.offset) || 0, false);
        break;
      case 'file_cancel':
        this.cancelled(message.id, String(message.reason || 'cancelled'));
        break;
      default:
        break;
    }
  }

  setKeyboardMode(mode) {
    this.send({ type: 'keyboard', mode });
  }

  // Sending a file to the puppet.

  async sendFile(file) {
    const sha256 = await sha256Hex(file);
    if (!sha256) {
      this.ui.failed({ name: file.name, size: file.size, direction: 'out' },
        'sending files needs a secure page (https:// or localhost) for its SHA-256');
      return;
    }
    const id = this.nextId;
    this.nextId += 1;
    const transfer = { id, name: file.name, size: file.size, done: 0, direction: 'out', file, sent: 0 };
    this.sending.set(id, transfer);
    this.send({ type: 'file_offer', id, name: file.name.slice(0, 255), size: file.size, sha256 });
    this.ui.progress(transfer);
  }

  async pump(id, acknowledged, accepted) {
    const transfer = this.sending.get(id);
    if (!transfer) return;
    if (accepted) transfer.sent = Math.min(acknowledged, transfer.size);
    transfer.done = Math.min(acknowledged, transfer.size);
    this.ui.progress(transfer);
    if (transfer.done >= transfer.size) {
      this.sending.delete(id);
      this.ui.done(transfer);
      return;
    }
    if (transfer.pumping) return;
    transfer.pumping = true;
    try {
      while (transfer.sent < transfer.size && transfer.sent - transfer.done < WINDOW) {
        const end = Math.min(transfer.size, transfer.sent + CHUNK);
        const bytes = new Uint8Array(await transfer.file.slice(transfer.sent, end).arrayBuffer());
        if (!this.send({ type: 'file_chunk', id, offset: transfer.sent, data: toBase64(bytes) })) return;
        transfer.sent = end;
      }
      if (transfer.sent >= transfer.size && !transfer.doneSent) {
        transfer.doneSent = true;
        this.send({ type: 'file_done', id });
      }
    } finally {
      transfer.pumping = false;
    }
  }

  cancel(transfer, reason) {
    this.send({ type: 'file_cancel', id: transfer.id, reason });
    this.sending.delete(transfer.id);
    this.receiving.delete(transfer.id);
    this.ui.failed(transfer, reason);
  }

  cancelled(id, reason) {
    const transfer = this.sending.get(id) || this.receiving.get(id);
    if (!transfer) return;
    this.sending.delete(id);
    this.receiving.delete(id);
    this.ui.failed(transfer, `the puppet cancelled: ${reason}`);
  }

  // Receiving a file from the puppet.

  received(offer) {
    const id = Number(offer.id);
    const size = Number(offer.size);
    const name = String(offer.name || 'file').split(/[\\/]/).pop() || 'file';
    if (!Number.isInteger(id) || !Number.isFinite(size) || size < 0) return;
    const transfer = {
      id, name, size, done: 0, direction: 'in', parts: [], sha256: String(offer.sha256 || ''),
      accept: () => {
        if (size > MAX_RECEIVE) {
          this.cancel(transfer, 'too large for a browser to keep in memory');
          return;
        }
        this.receiving.set(id, transfer);
        this.send({ type: 'file_accept', id, offset: 0 });
        this.ui.progress(transfer);
      },
      decline: () => this.send({ type: 'file_cancel', id, reason: 'declined' }),
    };
    this.ui.offer(transfer);
  }

  chunk(message) {
    const transfer = this.receiving.get(message.id);
    if (!transfer) return;
    let bytes;
    try {
      bytes = fromBase64(String(message.data));
    } catch {
      this.cancel(transfer, 'a chunk was not base64');
      return;
    }
    if (Number(message.offset) !== transfer.done || transfer.done + bytes.length > transfer.size) {
      this.cancel(transfer, 'a chunk did not fit the offer');
      return;
    }
    transfer.parts.push(bytes);
    transfer.done += bytes.length;
    this.send({ type: 'file_ack', id: transfer.id, offset: transfer.done });
    this.ui.progress(transfer);
  }

  async finish(id) {
    const transfer = this.receiving.get(id);
    if (!transfer) return;
    this.receiving.delete(id);
    if (transfer.done !== transfer.size) {
      this.ui.failed(transfer, 'the puppet stopped before the end of the file');
      return;
    }
    const blob = new Blob(transfer.parts);
    transfer.parts = [];
    const digest = await sha256Hex(blob);
    if (digest !== null && digest !== transfer.sha256.toLowerCase()) {
      this.ui.failed(transfer, 'the file arrived damaged (SHA-256 differs); it was discarded');
      return;
    }
    transfer.verified = digest !== null;
    transfer.blob = blob;
    this.ui.done(transfer);
  }
}
