// Input protocol v1 (crates/proto/INPUT.md): the binary encoder, and the capture of pointer,
// wheel, keyboard and text events on the video into it.
//
// Pointer moves go on the unordered `pointer` channel; everything else on the reliable `input`
// channel. Coordinates are normalised to the video picture as displayed (object-fit: contain,
// so the letterbox bars are excluded), not to the element's box.

import { keyNumber } from './keycodes.js';

const VERSION = 0x10;
export const Kind = Object.freeze({
  POINTER_MOVE: 0, BUTTON_DOWN: 1, BUTTON_UP: 2, WHEEL: 3, KEY_DOWN: 4, KEY_UP: 5, TEXT: 6,
});
const HEADER = 13;
const MAX_TEXT = 1024;
/** A pointer move is dropped when this much is still waiting to go out on its channel. */
const POINTER_BACKLOG = 16 * 1024;

/** Builds the messages of one session; seq is shared by both channels, as INPUT.md says. */
export class InputEncoder {
  constructor() {
    this.seq = 0;
  }

  header(kind, bodyLength) {
    const buffer = new ArrayBuffer(HEADER + bodyLength);
    const view = new DataView(buffer);
    view.setUint8(0, VERSION | kind);
    view.setUint32(1, this.seq, true);
    this.seq = (this.seq + 1) >>> 0;
    const micros = Math.round((performance.timeOrigin + performance.now()) * 1000);
    view.setBigUint64(5, BigInt(micros), true);
    return { buffer, view };
  }

  pointerMove(x, y) {
    const { buffer, view } = this.header(Kind.POINTER_MOVE, 4);
    view.setUint16(13, x, true);
    view.setUint16(15, y, true);
    return buffer;
  }

  button(down, button, modifiers, x, y) {
    const { buffer, view } = this.header(down ? Kind.BUTTON_DOWN : Kind.BUTTON_UP, 6);
    view.setUint8(13, button);
    view.setUint8(14, modifiers);
    view.setUint16(15, x, true);
    view.setUint16(17, y, true);
    return buffer;
  }

  /** unit 0: 1/120ths of a line; unit 1: pixels of the picture. */
  wheel(unit, x, y, dx, dy) {
    const { buffer, view } = this.header(Kind.WHEEL, 9);
    view.setUint8(13, unit);
    view.setUint16(14, x, true);
    view.setUint16(16, y, true);
    view.setInt16(18, clampI16(dx), true);
    view.setInt16(20, clampI16(dy), true);
    return buffer;
  }

  key(down, code, modifiers) {
    const { buffer, view } = this.header(down ? Kind.KEY_DOWN : Kind.KEY_UP, 3);
    view.setUint16(13, code, true);
    view.setUint8(15, modifiers);
    return buffer;
  }

  /** One message per piece of at most 1024 bytes of UTF-8, split between characters. */
  text(text) {
    const messages = [];
    const encoder = new TextEncoder();
    let piece = '';
    let pieceBytes = 0;
    const flush = () => {
      if (pieceBytes === 0) return;
      const bytes = encoder.encode(piece);
      const { buffer, view } = this.header(Kind.TEXT, 2 + bytes.length);
      view.setUint16(13, bytes.length, true);
      new Uint8Array(buffer, 15).set(bytes);
      messages.push(buffer);
      piece = '';
      pieceBytes = 0;
    };
    for (const char of text) {
      const length = encoder.encode(char).length;
      if (pieceBytes + length > MAX_TEXT) flush();
      piece += char;
      pieceBytes += length;
    }
    flush();
    return messages;
  }
}

function clampI16(value) {
  return Math.max(-32768, Math.min(32767, Math.round(value)));
}

/** INPUT.md's modifier byte, from a DOM event's state (the state after a key event). */
export function modifierByte(event) {
  const state = (name) => (event.getModifierState ? event.getModifierState(name) : false);
  return (event.shiftKey ? 0x01 : 0)
    | (event.ctrlKey ? 0x02 : 0)
    | (event.altKey ? 0x04 : 0)
    | (event.metaKey ? 0x08 : 0)
    | (state('AltGraph') ? 0x10 : 0)
    | (state('CapsLock') ? 0x20 : 0)
    | (state('NumLock') ? 0x40 : 0);
}

/**
 * Where the picture is inside a <video> with object-fit: contain: the element's box minus the
 * letterbox bars, in CSS pixels of the viewport. Null until the video has a size.
 */
export function contentRect(video) {
  const box = video.getBoundingClientRect();
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (!width || !height || !box.width || !box.height) return null;
  const scale = Math.min(box.width / width, box.height / height);
  const shownWidth = width * scale;
  const shownHeight = height * scale;
  return {
    left: box.left + (box.width - shownWidth) / 2,
    top: box.top + (box.height - shownHeight) / 2,
    width: shownWidth,
    height: shownHeight,
    videoWidth: width,
    videoHeight: height,
    scale,
  };
}

/**
 * A viewport position → INPUT.md coordinates (0..=65535 across the picture), and whether it
 * lies inside the picture. `x = round(clamp(px / (width - 1), 0, 1) * 65535)`.
 */
export function normalise(rect, clientX, clientY) {
  const px = (clientX - rect.left) / rect.scale;
  const py = (clientY - rect.top) / rect.scale;
  const inside = px >= 0 && py >= 0 && px < rect.videoWidth && py < rect.videoHeight;
  const axis = (p, size) => Math.round(Math.min(1, Math.max(0, p / Math.max(1, size - 1))) * 65535);
  return { x: axis(px, rect.videoWidth), y: axis(py, rect.videoHeight), inside };
}

/**
 * Wheel deltas → INPUT.md: lines as 1/120ths of a line (unit 0), pixels as pixels of the picture
 * (unit 1). Pages (deltaMode 2, rare) count as 3 lines each.
 */
export function wheelDelta(event, scale) {
  switch (event.deltaMode) {
    case 1: return { unit: 0, dx: event.deltaX * 120, dy: event.deltaY * 120 };
    case 2: return { unit: 0, dx: event.deltaX * 360, dy: event.deltaY * 360 };
    default: return { unit: 1, dx: event.deltaX / scale, dy: event.deltaY / scale };
  }
}

/**
 * Captures input on `surface` (the element over the video) and `keyboard` (a focusable text
 * area that receives keys and IME text), and sends it on the session's channels.
 */
export class InputCapture {
  /**
   * @param {object} options
   * @param {HTMLVideoElement} options.video
   * @param {HTMLElement} options.surface
   * @param {HTMLTextAreaElement} options.keyboard
   * @param {() => {input: RTCDataChannel|null, pointer: RTCDataChannel|null}} options.channels
   * @param {() => boolean} options.enabled false while view-only
   * @param {() => 'map'|'translate'} options.mode
   */
  constructor({ video, surface, keyboard, channels, enabled, mode }) {
    this.video = video;
    this.surface = surface;
    this.keyboard = keyboard;
    this.channels = channels;
    this.enabled = enabled;
    this.mode = mode;
    this.encoder = new InputEncoder();
    this.heldKeys = new Map(); // KeyboardEvent.code → protocol number
    this.heldButtons = new Set();
    this.lastPosition = { x: 0, y: 0 };
    this.composing = false;
    this.listeners = [];
    this.attach();
  }

  on(target, type, handler, options) {
    target.addEventListener(type, handler, options);
    this.listeners.push(() => target.removeEventListener(type, handler, options));
  }

  attach() {
    const s = this.surface;
    this.on(s, 'pointermove', (e) => this.onPointerMove(e));
    this.on(s, 'pointerdown', (e) => this.onPointerButton(e, true));
    this.on(s, 'pointerup', (e) => this.onPointerButton(e, false));
    this.on(s, 'pointercancel', () => this.releaseAll());
    this.on(s, 'pointerleave', () => this.releaseAll());
    this.on(s, 'wheel', (e) => this.onWheel(e), { passive: false });
    this.on(s, 'contextmenu', (e) => e.preventDefault());
    const k = this.keyboard;
    this.on(k, 'keydown', (e) => this.onKey(e, true));
    this.on(k, 'keyup', (e) => this.onKey(e, false));
    this.on(k, 'compositionstart', () => { this.composing = true; });
    this.on(k, 'compositionend', (e) => {
      this.composing = false;
      this.sendText(e.data);
      k.value = '';
    });
    this.on(k, 'input', (e) => this.onTextInput(e));
    this.on(k, 'blur', () => this.releaseAll());
    this.on(window, 'blur', () => this.releaseAll());
    this.on(document, 'visibilitychange', () => {
      if (document.hidden) this.releaseAll();
    });
  }

  detach() {
    this.releaseAll();
    for (const remove of this.listeners) remove();
    this.listeners = [];
  }

  send(message, channel = 'input') {
    const channels = this.channels();
    const target = channels[channel];
    if (!target || target.readyState !== 'open' || !this.enabled()) return false;
    target.send(message);
    return true;
  }

  position(event) {
    const rect = contentRect(this.video);
    return rect ? { rect, ...normalise(rect, event.clientX, event.clientY) } : null;
  }

  onPointerMove(event) {
    const at = this.position(event);
    if (!at) return;
    // Outside the picture only a drag is followed (clamped to the edge), as the native
    // controller does.
    if (!at.inside && this.heldButtons.size === 0) return;
    this.lastPosition = { x: at.x, y: at.y };
    const pointer = this.channels().pointer;
    if (pointer && pointer.bufferedAmount > POINTER_BACKLOG) return; // a newer move follows
    this.send(this.encoder.pointerMove(at.x, at.y), 'pointer');
  }

  onPointerButton(event, down) {
    const button = event.button;
    if (button < 0 || button > 4) return;
    const at = this.position(event);
    if (!at) return;
    if (down) {
      if (!at.inside) return;
      event.preventDefault();
      this.keyboard.focus({ preventScroll: true });
      this.surface.setPointerCapture?.(event.pointerId);
      this.heldButtons.add(button);
    } else {
      if (!this.heldButtons.has(button)) return;
      this.heldButtons.delete(button);
    }
    this.lastPosition = { x: at.x, y: at.y };
    this.send(this.encoder.button(down, button, modifierByte(event), at.x, at.y));
  }

  onWheel(event) {
    const at = this.position(event);
    if (!at || !at.inside) return;
    event.preventDefault();
    const { unit, dx, dy } = wheelDelta(event, at.rect.scale);
    if (Math.round(dx) === 0 && Math.round(dy) === 0) return;
    this.send(this.encoder.wheel(unit, at.x, at.y, dx, dy));
  }

  onKey(event, down) {
    // While an input method composes, its keys are its own; the committed text follows.
    if (event.isComposing || this.composing || event.keyCode === 229) return;
    const number = keyNumber(event.code);
    if (number === undefined) return; // virtual keyboards: the text arrives as `input`
    event.preventDefault();
    const translate = this.mode() === 'translate';
    if (down) {
      const types = event.key.length > 0 && [...event.key].length === 1
        && !event.ctrlKey && !event.metaKey && !(event.altKey && !event.getModifierState('AltGraph'));
      if (!event.repeat) {
        this.heldKeys.set(event.code, number);
        this.send(this.encoder.key(true, number, modifierByte(event)));
      }
      // In translate mode the puppet drops layout keys and types the text instead.
      if (translate && types) this.sendText(event.key);
    } else if (this.heldKeys.has(event.code)) {
      this.heldKeys.delete(event.code);
      this.send(this.encoder.key(false, number, modifierByte(event)));
    }
  }

  /** Text typed into the key catcher that no key event carried (phones, some IMEs). */
  onTextInput(event) {
    if (this.composing || event.isComposing) return;
    const k = this.keyboard;
    switch (event.inputType) {
      case 'insertText':
      case 'insertReplacementText':
        if (event.data) this.sendText(event.data);
        break;
      case 'deleteContentBackward':
        this.tap('Backspace');
        break;
      case 'insertLineBreak':
      case 'insertParagraph':
        this.tap('Enter');
        break;
      default:
        break;
    }
    k.value = '';
  }

  tap(code) {
    const number = keyNumber(code);
    this.send(this.encoder.key(true, number, 0));
    this.send(this.encoder.key(false, number, 0));
  }

  sendText(text) {
    if (!text) return;
    for (const message of this.encoder.text(text)) this.send(message);
  }

  /** Sends a release for every key and button this page sent as pressed. */
  releaseAll() {
    const { x, y } = this.lastPosition;
    for (const button of this.heldButtons) this.send(this.encoder.button(false, button, 0, x, y));
    this.heldButtons.clear();
    for (const number of this.heldKeys.values()) this.send(this.encoder.key(false, number, 0));
    this.heldKeys.clear();
  }
}
