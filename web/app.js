// The browser controller: code entry → `connect` → waiting for the puppet's user → WebRTC as
// the answerer → video, input, stats, chat and files. Speaks only the documented protocols:
// signaling v1 (DESIGN.md), input v1 (crates/proto/INPUT.md) and the control messages
// (crates/proto/src/control.rs); see web/HTTP.md for what the server serves.

import {
  Signaling, signalingUrl, ERROR_TEXT, closeText, normaliseCode, groupCode,
} from './signaling.js';
import { PuppetSession } from './session.js';
import { InputCapture } from './input.js';
import { StatsOverlay } from './stats.js';
import { Control } from './control.js';

const $ = (id) => document.getElementById(id);
const screens = ['connect-screen', 'waiting-screen', 'session-screen', 'ended-screen'];

/** Everything about the current attempt; replaced on each connect. */
let state = null;

function show(screen) {
  for (const id of screens) $(id).hidden = id !== screen;
}

function connectMessage(text) {
  const element = $('connect-message');
  element.textContent = text || '';
  element.hidden = !text;
}

function end(text) {
  if (!state) return;
  const ending = state;
  state = null;
  ending.capture?.detach();
  ending.stats?.stop();
  ending.session?.close();
  ending.signaling.close();
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  $('video').srcObject = null;
  $('ended-text').textContent = text;
  show('ended-screen');
  $('again-button').focus();
}

/** A failure before the session started: back to the form, with the reason. */
function refuse(text) {
  if (state) {
    state.signaling.close();
    state = null;
  }
  show('connect-screen');
  connectMessage(text);
  $('connect-button').disabled = false;
  $('code').focus();
}

async function connect(event) {
  event.preventDefault();
  connectMessage('');
  const code = normaliseCode($('code').value);
  if (!code) {
    const digits = $('code').value.replace(/\D/g, '').length;
    connectMessage(`A control code has 12 digits (the first 9 also work); this has ${digits}.`);
    return;
  }
  const name = $('name').value.trim() || 'Browser';
  try {
    localStorage.setItem('rtcdesk-name', name);
  } catch {
    // Storage may be off; the name is only a convenience.
  }
  $('connect-button').disabled = true;
  const signaling = new Signaling(signalingUrl(window.location));
  state = { signaling, code, name, phase: 'connecting', sessionId: null };
  const mine = state;
  signaling.addEventListener('message', (e) => { if (state === mine) onSignal(e.detail); });
  signaling.addEventListener('close', (e) => { if (state === mine) onSignalingClosed(e.detail); });
  try {
    await signaling.open();
  } catch (error) {
    if (state === mine) refuse(error.message);
    return;
  }
  signaling.send({ type: 'connect', code, name });
  $('waiting-text').textContent = `Calling ${groupCode(code)}…`;
  show('waiting-screen');
}

function onSignal(message) {
  const s = state;
  switch (message.type) {
    case 'ringing':
      s.sessionId = message.session;
      s.phase = 'ringing';
      s.peerName = typeof message.name === 'string' ? message.name : '';
      $('waiting-text').textContent = s.peerName
        ? `Waiting for ${s.peerName} to accept…`
        : 'Waiting for the other side to accept…';
      break;
    case 'accepted':
      if (message.session !== s.sessionId) return;
      startSession(message.ice_servers);
      break;
    case 'rejected':
      if (message.session !== s.sessionId) return;
      refuse(message.reason
        ? `The other side declined: ${message.reason}`
        : 'The other side declined the request.');
      break;
    case 'offer':
    case 'candidate':
      if (message.session === s.sessionId && s.session) s.session.handle(message);
      break;
    case 'left':
      if (message.session !== s.sessionId) return;
      if (s.phase === 'ringing') refuse('The puppet went away before answering (it was closed or lost its connection).');
      else end('The puppet ended the session, or lost its connection.');
      break;
    case 'error':
      onServerError(message);
      break;
    default:
      break;
  }
}

function onServerError(message) {
  const text = ERROR_TEXT[message.code] || `The signaling server reported an error (${message.code}).`;
  if (state.phase === 'session') {
    setStatus(text);
  } else {
    refuse(text);
  }
}

function onSignalingClosed({ code, reason }) {
  const s = state;
  if (s.phase === 'session') {
    // Video and input go peer to peer; only a new negotiation would need signaling again.
    if (s.session?.pc.connectionState !== 'connected') end(closeText(code, reason));
    return;
  }
  refuse(closeText(code, reason));
}

function setStatus(text) {
  const element = $('session-status');
  element.textContent = text || '';
  element.hidden = !text;
}

function startSession(iceServers) {
  const s = state;
  s.phase = 'session';
  s.viewOnly = false;
  s.mode = 'map';
  s.channels = { input: null, pointer: null, control: null, file: null };
  s.puppetStats = null;
  s.session = new PuppetSession(s.sessionId, (m) => s.signaling.send(m), iceServers);
  s.control = new Control(controlUi(s));
  $('peer-name').textContent = s.peerName || groupCode(s.code);
  $('view-only').hidden = true;
  $('mode-button').textContent = 'Keys: position';
  $('chat-log').textContent = '';
  $('transfers').textContent = '';
  setStatus('Connecting to the puppet…');
  show('session-screen');

  s.session.addEventListener('track', (e) => {
    $('video').srcObject = e.detail;
    $('video').play().catch(() => {});
  });
  s.session.addEventListener('channel', (e) => {
    const channel = e.detail;
    if (channel.label in s.channels) s.channels[channel.label] = channel;
    if (channel.label === 'control') s.control.attach(channel);
    if (channel.label === 'file') s.control.attachFile(channel);
  });
  s.session.addEventListener('state', (e) => {
    if (state !== s) return;
    switch (e.detail) {
      case 'connected': setStatus(''); break;
      case 'disconnected': setStatus('The connection to the puppet is interrupted; waiting for it to come back…'); break;
      case 'failed': end('No network path to the puppet could be found, or it was lost.'); break;
      case 'closed': end('The session closed.'); break;
      default: break;
    }
  });
  s.session.addEventListener('error', (e) => setStatus(e.detail));
  s.capture = new InputCapture({
    video: $('video'),
    surface: $('surface'),
    keyboard: $('keys'),
    channels: () => s.channels,
    enabled: () => !s.viewOnly,
    mode: () => s.mode,
  });
  s.stats = new StatsOverlay($('stats'), s.session, () => s.puppetStats);
  $('keys').focus({ preventScroll: true });
}

function controlUi(s) {
  return {
    chat: (text) => addChat(s.peerName || 'Puppet', text),
    clipboard: (text) => {
      $('clipboard-box').value = text;
      clipboardStatus('The puppet\'s clipboard is in the box; “Copy here” puts it on this computer\'s.');
      // Writing needs a secure page and, in most browsers, focus: where it is refused the box
      // and the button remain.
      navigator.clipboard?.writeText(text)
        .then(() => clipboardStatus('The puppet\'s clipboard was copied to this computer\'s.'))
        .catch(() => {});
    },
    stats: (message) => { s.puppetStats = message; },
    mode: () => s.mode,
    viewOnly: (on) => {
      // What is held is released while input may still be sent.
      if (on) s.capture?.releaseAll();
      s.viewOnly = on;
      $('view-only').hidden = !on;
    },
    offer: (transfer) => showOffer(transfer),
    progress: (transfer) => showTransfer(transfer),
    done: (transfer) => showTransfer(transfer, transfer.direction === 'in' ? 'received' : 'sent'),
    failed: (transfer, reason) => showTransfer(transfer, `failed: ${reason}`),
  };
}

function addChat(who, text) {
  const item = document.createElement('li');
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const name = document.createElement('span');
  name.className = 'who';
  name.textContent = who;
  item.append(time, name, document.createTextNode(text));
  $('chat-log').append(item);
  item.scrollIntoView({ block: 'nearest' });
  if ($('panel').hidden && who !== 'You') {
    const unread = $('unread');
    unread.textContent = String(Number(unread.textContent || 0) + 1);
    unread.hidden = false;
  }
}

function transferItem(transfer) {
  const key = `transfer-${transfer.direction}-${transfer.id}`;
  let item = document.getElementById(key);
  if (!item) {
    item = document.createElement('li');
    item.id = key;
    $('transfers').append(item);
  }
  return item;
}

/** One transfer's line: name, size, then a progress bar with bytes and rate, or its outcome. */
function showTransfer(transfer, outcome) {
  const item = transferItem(transfer);
  item.textContent = '';
  item.dataset.state = outcome ? (outcome === 'received' || outcome === 'sent' ? 'done' : 'failed') : (transfer.state || '');
  const label = document.createElement('div');
  const arrow = transfer.direction === 'in' ? '↓' : '↑';
  label.textContent = `${arrow} ${transfer.name} (${formatSize(transfer.size)})${outcome ? ` — ${outcome}` : ''}`;
  item.append(label);
  if (!outcome) {
    const bar = document.createElement('progress');
    bar.max = Math.max(1, transfer.size);
    bar.value = transfer.done;
    const figures = document.createElement('div');
    figures.className = 'figures';
    const what = {
      hashing: 'computing its SHA-256…',
      offered: 'waiting for the puppet to accept…',
      checking: 'checking its SHA-256…',
    }[transfer.state];
    figures.textContent = what
      || `${formatSize(transfer.done)} of ${formatSize(transfer.size)} · ${formatSize(transfer.rate || 0)}/s`;
    item.append(bar, figures);
    if (transfer.cancel) {
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.className = 'secondary';
      cancel.textContent = 'Cancel';
      cancel.addEventListener('click', () => transfer.cancel());
      item.append(cancel);
    }
  }
  if (outcome === 'received' && transfer.blob) {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(transfer.blob);
    link.download = transfer.name;
    link.textContent = 'Save (SHA-256 checked)';
    item.append(link);
  }
}

function showOffer(transfer) {
  const item = transferItem(transfer);
  item.textContent = `↓ ${transfer.name} (${formatSize(transfer.size)}) offered by the puppet `;
  item.dataset.state = 'offer';
  const accept = document.createElement('button');
  accept.type = 'button';
  accept.textContent = 'Accept';
  accept.addEventListener('click', () => transfer.accept());
  const decline = document.createElement('button');
  decline.type = 'button';
  decline.className = 'secondary';
  decline.textContent = 'Decline';
  decline.addEventListener('click', () => {
    transfer.decline();
    showTransfer(transfer, 'declined');
  });
  item.append(accept, decline);
  if ($('panel').hidden) togglePanel();
}

/** The clipboard message's limit (FILES.md): 131072 bytes of UTF-8. */
const MAX_CLIPBOARD = 131072;

function sendClipboard(text) {
  if (!text || !state?.control) return;
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_CLIPBOARD) {
    clipboardStatus(`Too long to send: ${bytes} bytes, at most ${MAX_CLIPBOARD}.`);
    return;
  }
  if (state.control.send({ type: 'clipboard', text })) clipboardStatus('Sent to the puppet\'s clipboard.');
}

function clipboardStatus(text) {
  $('clipboard-status').textContent = text;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function togglePanel() {
  const panel = $('panel');
  panel.hidden = !panel.hidden;
  $('panel-button').setAttribute('aria-pressed', String(!panel.hidden));
  if (!panel.hidden) {
    $('unread').hidden = true;
    $('unread').textContent = '';
  }
}

async function fullscreen() {
  const stage = $('stage');
  if (document.fullscreenElement) {
    await document.exitFullscreen().catch(() => {});
    return;
  }
  try {
    await stage.requestFullscreen({ navigationUI: 'hide' });
    // Alt+Tab, Esc, Ctrl+W and the like then reach the puppet (Chromium; elsewhere a no-op).
    await navigator.keyboard?.lock?.();
  } catch (error) {
    setStatus(`Fullscreen is not available: ${error.message}`);
  }
  $('keys').focus({ preventScroll: true });
}

function wire() {
  try {
    $('name').value = localStorage.getItem('rtcdesk-name') || '';
  } catch {
    // No storage: start with an empty name.
  }
  $('connect-form').addEventListener('submit', connect);
  $('code').addEventListener('input', () => connectMessage(''));
  $('cancel-button').addEventListener('click', () => {
    if (state?.sessionId) state.signaling.send({ type: 'leave', session: state.sessionId });
    refuse('');
    connectMessage('');
  });
  $('again-button').addEventListener('click', () => {
    show('connect-screen');
    $('connect-button').disabled = false;
    connectMessage('');
    $('code').select();
  });
  $('leave-button').addEventListener('click', () => {
    if (state?.sessionId) state.signaling.send({ type: 'leave', session: state.sessionId });
    end('You ended the session.');
  });
  $('fullscreen-button').addEventListener('click', fullscreen);
  document.addEventListener('fullscreenchange', () => {
    if (!document.fullscreenElement) navigator.keyboard?.unlock?.();
  });
  $('keyboard-button').addEventListener('click', () => {
    const keys = $('keys');
    keys.style.pointerEvents = 'auto';
    keys.focus();
    keys.style.pointerEvents = '';
  });
  $('mode-button').addEventListener('click', () => {
    if (!state?.control) return;
    state.mode = state.mode === 'map' ? 'translate' : 'map';
    state.control.setKeyboardMode(state.mode);
    $('mode-button').textContent = state.mode === 'map' ? 'Keys: position' : 'Keys: character';
  });
  $('stats-button').addEventListener('click', () => {
    const stats = $('stats');
    stats.hidden = !stats.hidden;
    $('stats-button').setAttribute('aria-pressed', String(!stats.hidden));
  });
  $('panel-button').addEventListener('click', togglePanel);
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text || !state?.control) return;
    if (state.control.send({ type: 'chat', text })) {
      addChat('You', text);
      input.value = '';
    }
  });
  $('clipboard-send').addEventListener('click', () => sendClipboard($('clipboard-box').value));
  if (window.isSecureContext && navigator.clipboard?.readText) {
    $('clipboard-paste').hidden = false;
    $('clipboard-paste').addEventListener('click', async () => {
      try {
        const text = await navigator.clipboard.readText();
        $('clipboard-box').value = text;
        sendClipboard(text);
      } catch (error) {
        clipboardStatus(`The browser did not let the page read the clipboard (${error.message}); paste into the box instead.`);
      }
    });
  } else {
    clipboardStatus('Paste into the box (Ctrl+V) and send: this page cannot read the clipboard itself.');
  }
  $('clipboard-copy').addEventListener('click', () => {
    const box = $('clipboard-box');
    const copied = navigator.clipboard?.writeText(box.value);
    if (!copied) {
      box.select();
      clipboardStatus('Selected: copy it with Ctrl+C.');
      return;
    }
    copied.then(() => clipboardStatus('Copied to this computer\'s clipboard.')).catch(() => {
      box.select();
      clipboardStatus('Selected: copy it with Ctrl+C.');
    });
  });
  $('file-input').addEventListener('change', (event) => {
    for (const file of event.target.files) state?.control?.sendFile(file);
    event.target.value = '';
  });
  const stage = $('stage');
  stage.addEventListener('dragover', (event) => {
    event.preventDefault();
    stage.classList.add('dragging');
  });
  stage.addEventListener('dragleave', () => stage.classList.remove('dragging'));
  stage.addEventListener('drop', (event) => {
    event.preventDefault();
    stage.classList.remove('dragging');
    for (const file of event.dataTransfer.files) state?.control?.sendFile(file);
  });
  show('connect-screen');
  $('code').focus();
}

wire();
