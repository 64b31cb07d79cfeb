// Drives the page in Debian's headless Chromium against a real `rtcdesk-signal`, with a second
// page playing the puppet (canvas video, the `input`/`pointer`/`control` channels, signaling v1
// over the same server), and checks what a person would: the code-entry screen, the messages
// for a wrong and a short code, pairing, video, the stats overlay, the input bytes (INPUT.md)
// that reach the puppet, chat both ways (the puppet's as a binary message), clipboard text both
// ways, files both ways on the `file` channel (FILES.md; one damaged, refused by its SHA-256),
// the view-only badge, the puppet leaving, and no console errors. Prints one line per check; exits 1 if any failed.
//
// Run from a folder where `npm install playwright-core` was done (no browser is downloaded):
//   RTCDESK_SIGNAL=target/debug/rtcdesk-signal SCREENSHOTS=web/screenshots node web/tests/browser.mjs
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { createHash } from 'node:crypto';

const { chromium } = createRequire(join(process.cwd(), 'noop.js'))('playwright-core');
const binary = process.env.RTCDESK_SIGNAL || 'target/debug/rtcdesk-signal';
const screenshots = process.env.SCREENSHOTS || tmpdir();
const server = spawn(binary, ['--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
const pageUrl = await new Promise((resolve, reject) => {
  readline.createInterface({ input: server.stdout }).on('line', (line) => {
    if (line.startsWith('web page at ')) resolve(line.slice(12));
  });
  server.on('exit', () => reject(new Error('server exited')));
});
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'rtcdesk-chromium-')), {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-features=WebRtcHideLocalIpsWithMdns'],
  viewport: { width: 1280, height: 720 },
});
const problems = [];
const results = [];
const check = (name, ok, detail = '') => { results.push({ name, ok, detail }); };

// The code-entry screen, and what a wrong or short code says.
{
  const entry = await context.newPage();
  entry.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
  entry.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  entry.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  await entry.goto(pageUrl);
  await entry.waitForSelector('#code:focus');
  await entry.fill('#name', 'Ada');
  await entry.screenshot({ path: join(screenshots, 'connect.png') });
  await entry.fill('#code', '123 456 789');
  await entry.click('#connect-button');
  await entry.waitForSelector('#connect-message:not([hidden])', { timeout: 5000 });
  const wrong = await entry.textContent('#connect-message');
  check('a wrong code says so', wrong.startsWith('No puppet has this code'), wrong);
  await entry.fill('#code', '12 34');
  await entry.click('#connect-button');
  const short = await entry.textContent('#connect-message');
  check('a short code says so', short.includes('12 digits') && short.includes('this has 4'), short);
  await entry.close();
}

// The puppet: a page of the same origin (so it may open the WebSocket), scripted here.
const puppet = await context.newPage();
await puppet.goto(pageUrl + 'puppet');
const code = await puppet.evaluate(async (wsUrl) => {
  window.received = { pointer: [], input: [], control: [], file: [] };
  const ws = new WebSocket(wsUrl);
  await new Promise((r) => ws.addEventListener('open', r));
  window.ws = ws;
  const canvas = document.createElement('canvas');
  canvas.width = 640; canvas.height = 360;
  document.documentElement.append(canvas);
  const g = canvas.getContext('2d');
  let frame = 0;
  setInterval(() => { g.fillStyle = `hsl(${frame++ % 360} 60% 40%)`; g.fillRect(0, 0, 640, 360); }, 33);
  const stream = canvas.captureStream(30);
  return new Promise((resolve) => {
    ws.addEventListener('message', async (event) => {
      const m = JSON.parse(event.data);
      if (m.type === 'registered') resolve(m.code);
      if (m.type === 'incoming') {
        ws.send(JSON.stringify({ type: 'accept', session: m.session }));
        const pc = new RTCPeerConnection();
        window.pc = pc;
        pc.addTrack(stream.getVideoTracks()[0], stream);
        const open = (label, options) => {
          const c = pc.createDataChannel(label, options);
          c.binaryType = 'arraybuffer';
          c.onmessage = (e) => window.received[label].push(
            typeof e.data === 'string' ? e.data : Array.from(new Uint8Array(e.data)));
          window[label] = c;
        };
        open('input', {});
        open('pointer', { ordered: false, maxRetransmits: 0 });
        open('control', {});
        open('file', {});
        // A receiver for files the page sends (FILES.md): acks every chunk, done at the end.
        window.file.addEventListener('message', (e) => {
          const view = new DataView(e.data);
          const id = view.getUint32(1, true);
          const end = Number(view.getBigUint64(5, true)) + e.data.byteLength - 13;
          const offer = window.received.control.map((t) => JSON.parse(t)).find((o) => o.type === 'file_offer' && o.id === id);
          window.control.send(JSON.stringify(end === offer.size ? { type: 'file_done', id } : { type: 'file_ack', id, offset: end }));
        });
        pc.onicecandidate = (e) => ws.send(JSON.stringify({ type: 'candidate', session: m.session,
          candidate: e.candidate ? e.candidate.candidate : '', ...(e.candidate ? { mid: e.candidate.sdpMid } : {}) }));
        await pc.setLocalDescription(await pc.createOffer());
        ws.send(JSON.stringify({ type: 'offer', session: m.session, sdp: pc.localDescription.sdp }));
        window.session = m.session;
      }
      if (m.type === 'answer') await window.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
      if (m.type === 'candidate' && m.candidate) await window.pc.addIceCandidate({ candidate: m.candidate, sdpMid: m.mid });
    });
    ws.send(JSON.stringify({ type: 'register', name: 'Test puppet' }));
  });
}, pageUrl.replace('http', 'ws') + 'signal');
check('puppet registered', /^\d{9}$/.test(code), code);

const page = await context.newPage();
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
await page.goto(pageUrl);
await page.fill('#code', `${code.slice(0, 3)} ${code.slice(3, 6)} ${code.slice(6)}`);
await page.fill('#name', 'Ada');
await page.click('#connect-button');
await page.waitForSelector('#session-screen:not([hidden])', { timeout: 10000 });
await page.waitForFunction(() => document.getElementById('video').videoWidth > 0, null, { timeout: 15000 });
check('video plays', true, await page.evaluate(() => `${video.videoWidth}x${video.videoHeight}`));
await page.waitForFunction(() => !window.document.getElementById('session-status').textContent, null, { timeout: 10000 }).catch(() => {});
await page.click('#stats-button');
await page.waitForTimeout(2500);
check('stats overlay', (await page.textContent('#stats')).includes('fps'), (await page.textContent('#stats')).replace(/\n/g, ' | '));
await page.screenshot({ path: join(screenshots, 'session.png') });

// The video fills 1280 x (720 - toolbar) with a 16:9 picture: letterboxed left and right.
const rect = await page.evaluate(() => { const r = video.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
const scale = Math.min(rect.w / 640, rect.h / 360);
const left = rect.x + (rect.w - 640 * scale) / 2;
const top = rect.y + (rect.h - 360 * scale) / 2;
// The picture's centre, then its last pixel.
await page.mouse.move(left + 320 * scale, top + 180 * scale);
await page.mouse.move(left + 639.5 * scale, top + 359.5 * scale);
await page.mouse.down();
await page.mouse.up();
await page.keyboard.press('KeyA');
await page.keyboard.down('Shift');
await page.keyboard.press('KeyB');
await page.keyboard.up('Shift');
await page.mouse.wheel(0, 120);
await page.click('#panel-button');
await page.fill('#chat-input', 'hello puppet');
await page.press('#chat-input', 'Enter');
await puppet.evaluate(() => window.control.send(new TextEncoder().encode(JSON.stringify({ type: 'chat', text: 'hello browser' }))));
await page.waitForTimeout(1000);
const got = await puppet.evaluate(() => window.received);
const u16 = (b, o) => b[o] | (b[o + 1] << 8);
const moves = got.pointer.map((b) => ({ tag: b[0], x: u16(b, 13), y: u16(b, 15) }));
check('pointer moves on the pointer channel', moves.length >= 2 && moves.every((m) => m.tag === 0x10), JSON.stringify(moves.slice(-2)));
const last = moves[moves.length - 1] || {};
check('last move at the picture\'s last pixel', last.x >= 65400 && last.y >= 65300, `${last.x},${last.y}`);
const centre = moves.find((m) => Math.abs(m.x - 32768) < 200 && Math.abs(m.y - 32768) < 300);
check('centre move at ~32768', !!centre, JSON.stringify(moves[0]));
const tags = got.input.map((b) => b[0].toString(16));
check('button down/up, keys, wheel on input', ['11', '12', '14', '15', '13'].every((t) => tags.includes(t)), tags.join(' '));
const keys = got.input.filter((b) => b[0] === 0x14).map((b) => ({ code: u16(b, 13), mods: b[15] }));
check('KeyA = 20, Shift = 61 with 0x01, KeyB = 21 with Shift', JSON.stringify(keys) === JSON.stringify([{ code: 20, mods: 0 }, { code: 61, mods: 1 }, { code: 21, mods: 1 }]), JSON.stringify(keys));
const wheel = got.input.find((b) => b[0] === 0x13);
check('wheel dy', !!wheel, wheel ? `unit ${wheel[13]} dy ${(wheel[20] | (wheel[21] << 8)) << 16 >> 16}` : '');
check('keyboard mode announced once', got.control.filter((t) => typeof t === 'string' && t.includes('"keyboard"')).length === 1);
check('chat to puppet', got.control.some((t) => typeof t === 'string' && t.includes('hello puppet')), JSON.stringify(got.control));
check('chat from puppet (binary message)', (await page.textContent('#chat-log')).includes('hello browser'));
// Clipboard both ways: the puppet's text fills the box; the box goes to the puppet.
await puppet.evaluate(() => window.control.send(JSON.stringify({ type: 'clipboard', text: 'from the puppet' })));
await page.waitForFunction(() => document.getElementById('clipboard-box').value === 'from the puppet', null, { timeout: 5000 })
  .then(() => check('clipboard from puppet fills the box', true), () => check('clipboard from puppet fills the box', false));
await page.fill('#clipboard-box', 'from the page');
await page.click('#clipboard-send');
const clip = await puppet.waitForFunction(() => window.received.control.some((t) => t.includes('"clipboard"') && t.includes('from the page')), null, { timeout: 5000 }).then(() => true, () => false);
check('clipboard box to puppet', clip);

// A file from the puppet (FILES.md): offer, the page's accept, binary chunks, then file_done and
// a save link; then one with a damaged byte, which the page must refuse by its SHA-256.
const fileBytes = Buffer.from('x'.repeat(40000) + 'the end');
const fileSha = createHash('sha256').update(fileBytes).digest('hex');
const sendFromPuppet = (id, name, damage) => puppet.evaluate(async ([id, name, bytes, sha256, damage]) => {
  window.control.send(JSON.stringify({ type: 'file_offer', id, name, size: bytes.length, sha256 }));
  const accepted = () => window.received.control.some((t) => t.includes('"file_accept"') && JSON.parse(t).id === id);
  // Woken by each control message (recorded by the onmessage handler, which runs first).
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`file ${id} not accepted within 5 s`)), 5000);
    const on = () => {
      if (!accepted()) return;
      clearTimeout(timer);
      window.control.removeEventListener('message', on);
      resolve();
    };
    window.control.addEventListener('message', on);
    on();
  });
  for (let at = 0; at < bytes.length; at += 16384) {
    const data = bytes.slice(at, at + 16384);
    const chunk = new Uint8Array(13 + data.length);
    const view = new DataView(chunk.buffer);
    view.setUint8(0, 0x18); view.setUint32(1, id, true); view.setBigUint64(5, BigInt(at), true);
    chunk.set(data, 13);
    if (damage && at === 0) chunk[13] ^= 1;
    window.file.send(chunk);
  }
}, [id, name, [...fileBytes], fileSha, damage]);
const acceptOffer = async (id) => {
  await page.click(`#transfer-in-${id} button:text("Accept")`, { timeout: 5000 });
};
const firstFile = sendFromPuppet(1, 'notes.txt', false);
await acceptOffer(1);
await firstFile;
const saved = await page.waitForSelector('#transfer-in-1 a[download]', { timeout: 5000 }).then((a) => a.getAttribute('download'), () => null);
check('file from puppet: save link', saved === 'notes.txt', String(saved));
const done = await puppet.waitForFunction(() => window.received.control.some((t) => t === '{"type":"file_done","id":1}'), null, { timeout: 5000 }).then(() => true, () => false);
check('file from puppet: file_done after the SHA-256 matched', done);
const secondFile = sendFromPuppet(2, 'damaged.txt', true);
await acceptOffer(2);
await secondFile;
const mismatch = await page.waitForFunction(() => document.getElementById('transfer-in-2')?.textContent.includes('do not have the offered SHA-256'), null, { timeout: 5000 }).then(() => true, () => false);
const refused = await puppet.waitForFunction(() => window.received.control.some((t) => t.includes('"hash_mismatch"')), null, { timeout: 5000 }).then(() => true, () => false);
check('damaged file from puppet: mismatch said and sent', mismatch && refused, await page.textContent('#transfer-in-2'));

// A file from the page: the fake puppet grants the smallest window (16384), so the page must
// wait for each ack; it must send header-framed chunks in order and end at file_done.
const upload = Buffer.alloc(50000, 7);
await page.setInputFiles('#file-input', { name: 'up.bin', mimeType: 'application/octet-stream', buffer: upload });
await puppet.waitForFunction(() => window.received.control.some((t) => t.includes('"file_offer"')), null, { timeout: 5000 });
await puppet.evaluate(() => {
  const offer = window.received.control.map((t) => JSON.parse(t)).find((o) => o.type === 'file_offer');
  window.control.send(JSON.stringify({ type: 'file_accept', id: offer.id, offset: 0, window: 16384 }));
});
const sentOk = await page.waitForFunction(() => document.querySelector('#transfers li[id^="transfer-out-"]')?.textContent.includes('— sent'), null, { timeout: 10000 }).then(() => true, () => false);
const chunks = await puppet.evaluate(() => window.received.file);
const offsets = chunks.map((b) => b.slice(5, 13).reduce((n, x, i) => n + x * 2 ** (8 * i), 0));
const total = chunks.reduce((n, b) => n + b.length - 13, 0);
check('file to puppet: chunks in order, tag 0x18, whole file, sent', sentOk && total === upload.length
  && chunks.every((b) => b[0] === 0x18) && offsets.every((o, i) => i === 0 || o === offsets[i - 1] + chunks[i - 1].length - 13),
`${chunks.length} chunks, ${total} bytes, offsets ${offsets.join(',')}`);

await page.screenshot({ path: join(screenshots, 'panel.png') });

// A view-only puppet says so: the badge shows.
await puppet.evaluate(() => window.control.send(JSON.stringify({ type: 'view_only', on: true })));
const badge = await page.waitForSelector('#view-only:not([hidden])', { timeout: 5000 }).then(() => true, () => false);
check('view_only shows the badge', badge);

// The puppet leaves: the page says so.
await puppet.evaluate(() => window.ws.send(JSON.stringify({ type: 'leave', session: window.session })));
await page.waitForSelector('#ended-screen:not([hidden])', { timeout: 5000 });
check('puppet left is shown', true, await page.textContent('#ended-text'));
check('no console errors', problems.length === 0, JSON.stringify(problems));
for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.detail ? `: ${r.detail}` : ''}`);
await context.close();
server.kill();
process.exit(results.every((r) => r.ok) ? 0 : 1);
