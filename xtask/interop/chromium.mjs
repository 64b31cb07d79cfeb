// The Chromium cell of `cargo xtask interop` (xtask/INTEROP.md): Debian's headless Chromium,
// driven by playwright-core, loads the controller page from PAGE_URL, types the control code
// CODE as a person would, and checks what that person would see of a puppet on the synthetic
// desktop: AV1 video decoding, the puppet's pointer marker following the page's pointer (read
// back from the decoded video in a canvas), typed text appearing in the video, and how long a
// pointer move takes to show (input to photon). It also saves the SDP Chromium produced and a
// screenshot of the page controlling the puppet.
//
// The xtask starts the puppet (and the signaling and TURN servers) and reads this script's
// stdout: one `RESULT <check> PASS|FAIL <detail>` line per check (check names have no spaces) and `FIGURE <name> <value>`
// lines for measurements. Anything else on stdout or stderr is log. Exit status: 0 when every
// check passed.
//
// Environment: PAGE_URL (the page, e.g. http://127.0.0.1:8443/), CODE (the 12 digits the puppet shows; the page keeps the first 9), CELL (prefix
// of the check names), OUT (folder for the screenshot and the SDP), EXPECT_PATH (`relay` when
// the session must go through the TURN server), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT (file name, default `<CELL>.png`), SDP_OUT (folder for the SDP, default OUT),
// SDP_PREFIX (default `<CELL>`), CHAT (`1`: chat both ways, with the xtask typing on the
// puppet's stdin), FILE_CHECK (`1`: send a 5 MiB file; the puppet must accept files),
// VIEW_ONLY (`1`: the puppet runs with --view-only; only pairing, video and the badge are checked).
import { chromium } from 'playwright-core';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';

const env = (name, fallback) => process.env[name] || fallback;
const pageUrl = env('PAGE_URL');
const code = env('CODE');
const cell = env('CELL', 'chromium');
const out = env('OUT', tmpdir());
const expectPath = env('EXPECT_PATH', '');
mkdirSync(out, { recursive: true });

let failed = false;
function result(name, ok, detail = '') {
  if (!ok) failed = true;
  const clean = String(detail).replace(/\s+/g, ' ').trim();
  console.log(`RESULT ${cell}.${name} ${ok ? 'PASS' : 'FAIL'} ${clean}`);
}
function figure(name, value) {
  console.log(`FIGURE ${cell}.${name} ${value}`);
}

// Every RTCPeerConnection the page makes, so the driver can read its descriptions and stats.
// The page itself is not changed.
function recordPeerConnections() {
  const Original = window.RTCPeerConnection;
  window.__rtcdeskPeerConnections = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      window.__rtcdeskPeerConnections.push(this);
    }
  };
}

// In the page: draws decoded video frames into a canvas and finds the synthetic desktop's
// markers. `pointer`: the centre of the pure red pointer marker. `field`: the text field
// (light yellow) and the right edge of its dark ink (the typed text and the `_` cursor).
function installProbe() {
  const video = document.getElementById('video');
  const canvas = document.createElement('canvas');
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const probe = { frames: 0, last: null, waiters: [] };
  window.__rtcdeskProbe = probe;
  const analyse = () => {
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) return null;
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    g.drawImage(video, 0, 0, w, h);
    const data = g.getImageData(0, 0, w, h).data;
    let sx = 0; let sy = 0; let n = 0;
    let fx0 = w; let fy0 = h; let fx1 = -1; let fy1 = -1; let fieldCount = 0;
    for (let y = 0; y < h; y += 1) {
      for (let x = 0; x < w; x += 1) {
        const i = (y * w + x) * 4;
        const r = data[i]; const gr = data[i + 1]; const b = data[i + 2];
        if (r > 190 && gr < 80 && b < 80) { sx += x; sy += y; n += 1; }
        if (r > 230 && gr > 225 && b > 170 && b < 225) {
          fieldCount += 1;
          if (x < fx0) fx0 = x;
          if (x > fx1) fx1 = x;
          if (y < fy0) fy0 = y;
          if (y > fy1) fy1 = y;
        }
      }
    }
    let inkRight = -1; let ink = 0;
    if (fieldCount > 100) {
      for (let y = fy0; y <= fy1; y += 1) {
        for (let x = fx0; x <= fx1; x += 1) {
          const i = (y * w + x) * 4;
          if (data[i] < 110 && data[i + 1] < 110 && data[i + 2] < 110) {
            ink += 1;
            if (x > inkRight) inkRight = x;
          }
        }
      }
    }
    return {
      width: w,
      height: h,
      pointer: n > 20 ? { x: sx / n, y: sy / n, pixels: n } : null,
      field: fieldCount > 100 ? { x0: fx0, y0: fy0, x1: fx1, y1: fy1, ink, inkRight } : null,
    };
  };
  const onFrame = (now, metadata) => {
    probe.frames += 1;
    const seen = analyse();
    if (seen) {
      seen.at = now;
      seen.presented = metadata.presentationTime ?? now;
      probe.last = seen;
      probe.waiters = probe.waiters.filter((w) => !w(seen));
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

// In the page: resolves with the first analysed frame for which `test` (source text of a
// function of the frame) is true, or null after `ms`.
function waitForFrame([testSource, ms]) {
  // eslint-disable-next-line no-new-func
  const test = new Function('seen', `return (${testSource})(seen);`);
  const probe = window.__rtcdeskProbe;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    probe.waiters.push((seen) => {
      if (!test(seen)) return false;
      clearTimeout(timer);
      resolve(seen);
      return true;
    });
  });
}

async function statsOf(page) {
  return page.evaluate(async () => {
    const pc = window.__rtcdeskPeerConnections[0];
    const report = await pc.getStats();
    let video = null; let pair = null;
    const codecs = new Map(); const candidates = new Map();
    report.forEach((e) => {
      if (e.type === 'inbound-rtp' && e.kind === 'video') video = e;
      if (e.type === 'codec') codecs.set(e.id, e.mimeType);
      if (e.type === 'local-candidate' || e.type === 'remote-candidate') candidates.set(e.id, e);
      if (e.type === 'candidate-pair' && e.nominated && e.state === 'succeeded') pair = e;
    });
    const local = pair && candidates.get(pair.localCandidateId);
    const remote = pair && candidates.get(pair.remoteCandidateId);
    return {
      framesDecoded: video ? video.framesDecoded || 0 : 0,
      codec: video ? codecs.get(video.codecId) || '' : '',
      size: video ? `${video.frameWidth}x${video.frameHeight}` : '',
      packetsLost: video ? video.packetsLost || 0 : 0,
      path: pair ? `${local.candidateType}/${local.protocol} -> ${remote.candidateType} ${remote.address}:${remote.port}` : 'none',
      localType: local ? local.candidateType : '',
      remoteType: remote ? remote.candidateType : '',
      rttMs: pair && pair.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null,
    };
  });
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
};

// Where on the page a point of the video picture is (the picture is letterboxed in the element).
function pictureToPage(box, seen, px, py) {
  const scale = Math.min(box.w / seen.width, box.h / seen.height);
  const left = box.x + (box.w - seen.width * scale) / 2;
  const top = box.y + (box.h - seen.height * scale) / 2;
  return { x: left + (px + 0.5) * scale, y: top + (py + 0.5) * scale };
}

async function run(context) {
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.addInitScript(recordPeerConnections);

  // A person opens the page and types the code.
  await page.goto(pageUrl);
  await page.fill('#name', 'Chromium');
  await page.fill('#code', `${code.slice(0, 3)} ${code.slice(3, 6)} ${code.slice(6)}`);
  await page.click('#connect-button');
  await page.waitForSelector('#session-screen:not([hidden])', { timeout: 15000 });
  result('paired', true, `code ${code}`);
  await page.waitForFunction(() => document.getElementById('video').videoWidth > 0, null, { timeout: 20000 });
  await page.evaluate(installProbe);
  await page.evaluate(`window.__rtcdeskWaitForFrame = ${waitForFrame.toString()};`);
  const first = await page.evaluate(waitForFrame, ['(s) => s.pointer !== null', 10000]);
  result('video_shows_puppet', first !== null,
    first ? `${first.width}x${first.height}, pointer marker at ${first.pointer.x.toFixed(0)},${first.pointer.y.toFixed(0)}` : 'no frame with the pointer marker');
  if (!first) return page;
  if (env('VIEW_ONLY', '') === '1') {
    // A puppet started with --view-only says so on `control`; the page shows its badge.
    const badge = await page.waitForSelector('#view-only:not([hidden])', { timeout: 10000 }).then(() => true, () => false);
    result('view_only_badge', badge, badge ? await page.textContent('#view-only') : 'no view-only badge within 10 s');
    // And the pointer stays where it was: a move from the page must not reach the puppet.
    const box = await page.evaluate(() => {
      const r = document.getElementById('video').getBoundingClientRect();
      return { x: r.x, y: r.y, w: r.width, h: r.height };
    });
    const px = Math.round(0.2 * (first.width - 1));
    const py = Math.round(0.3 * (first.height - 1));
    const at = pictureToPage(box, first, px, py);
    const near = `(s) => s.pointer && Math.abs(s.pointer.x - ${px}) < 20 && Math.abs(s.pointer.y - ${py}) < 20`;
    const moved = page.evaluate(waitForFrame, [near, 3000]);
    await page.mouse.move(at.x, at.y);
    const seen = await moved;
    result('view_only_pointer_ignored', seen === null,
      seen ? `the marker moved to ${seen.pointer.x.toFixed(0)},${seen.pointer.y.toFixed(0)}` : `no frame in 3 s showed the marker near ${px},${py}`);
    result('no_console_errors', problems.length === 0, problems.length ? JSON.stringify(problems.slice(0, 3)) : '');
    return page;
  }
  const box = await page.evaluate(() => {
    const r = document.getElementById('video').getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height };
  });
  await page.click('#stats-button');

  // Pointer: each move from the page must bring the marker there in the decoded video; the
  // time from the pointer event to the frame showing it is input to photon.
  const marker = Math.max(12, Math.floor(first.height / 45));
  const latencies = [];
  const misses = [];
  const targets = [[0.2, 0.3], [0.7, 0.6], [0.4, 0.8], [0.85, 0.25], [0.3, 0.5], [0.6, 0.4],
    [0.15, 0.7], [0.75, 0.75], [0.5, 0.2], [0.25, 0.35], [0.65, 0.55], [0.45, 0.65]];
  for (const [fx, fy] of targets) {
    const px = Math.round(fx * (first.width - 1));
    const py = Math.round(fy * (first.height - 1));
    const at = pictureToPage(box, first, px, py);
    const expectX = px + marker / 2;
    const expectY = py + marker / 2;
    const tolerance = Math.max(6, first.width / 100);
    // Both watchers are in place before the move is dispatched.
    await page.evaluate(([testSource, ms]) => {
      window.__rtcdeskSent = new Promise((resolve) => {
        window.addEventListener('pointermove', (e) => resolve(e.timeStamp), { once: true, capture: true });
      });
      window.__rtcdeskShown = window.__rtcdeskWaitForFrame([testSource, ms]);
    }, [`(s) => s.pointer && Math.abs(s.pointer.x - ${expectX}) < ${tolerance} && Math.abs(s.pointer.y - ${expectY}) < ${tolerance}`, 5000]);
    await page.mouse.move(at.x, at.y);
    const [sentAt, seen] = await page.evaluate(() => Promise.all([window.__rtcdeskSent, window.__rtcdeskShown]));
    if (seen) latencies.push(seen.presented - sentAt);
    else misses.push(`${px},${py}`);
  }
  result('pointer_moves_marker', misses.length === 0,
    misses.length ? `marker never reached ${misses.join(' ')}` : `${targets.length} of ${targets.length} moves seen in the decoded video`);
  if (latencies.length) {
    figure('input_to_photon_ms_p50', median(latencies).toFixed(1));
    figure('input_to_photon_ms_max', Math.max(...latencies).toFixed(1));
  }

  // A sweep across the picture, so the puppet sends a steady stream of frames to decode.
  for (let i = 0; i < 150; i += 1) {
    const t = i / 149;
    const at = pictureToPage(box, first, Math.round((0.1 + 0.8 * t) * (first.width - 1)), Math.round((0.5 + 0.3 * Math.sin(t * 6.28)) * (first.height - 1)));
    await page.mouse.move(at.x, at.y);
    await page.waitForTimeout(16);
  }

  // Typing: in character mode (the toolbar's "Keys" button) the text reaches the puppet's
  // text field, whose cursor moves right by one glyph (6 pixels × scale) per character.
  await page.click('#mode-button');
  const before = await page.evaluate(() => window.__rtcdeskProbe.last);
  const typed = 'hello';
  await page.focus('#keys');
  await page.keyboard.type(typed);
  const scale = Math.max(1, Math.floor(first.height / 360));
  const advance = typed.length * 6 * scale;
  const fieldBefore = before && before.field;
  const typedSeen = fieldBefore ? await page.evaluate(waitForFrame, [
    `(s) => s.field && s.field.inkRight >= ${fieldBefore.inkRight + advance - 3} && s.field.ink > ${fieldBefore.ink}`, 5000]) : null;
  result('typed_text_in_video', typedSeen !== null,
    fieldBefore
      ? (typedSeen ? `text field ink ${fieldBefore.ink} -> ${typedSeen.field.ink} px, cursor ${fieldBefore.inkRight} -> ${typedSeen.field.inkRight} (expected +${advance})`
        : `cursor stayed near ${fieldBefore.inkRight}, expected +${advance}`)
      : 'the text field was not found in the picture');

  const stats = await statsOf(page);
  result('av1_decoded', stats.codec === 'video/AV1' && stats.framesDecoded >= 100,
    `${stats.codec || 'no codec'}, framesDecoded ${stats.framesDecoded}, ${stats.size}, lost ${stats.packetsLost}`);
  figure('frames_decoded', stats.framesDecoded);
  if (stats.rttMs != null) figure('rtt_ms', stats.rttMs.toFixed(1));
  console.log(`path: ${stats.path}`);
  if (expectPath) {
    result(`path_is_${expectPath}`, stats.localType === expectPath || stats.remoteType === expectPath, stats.path);
  }

  // The SDP Chromium produced: its answer to the puppet's offer, the offer as it saw it, and
  // an offer of its own (a receive-only AV1 transceiver and a data channel, like the page's).
  const sdp = await page.evaluate(async () => {
    const pc = window.__rtcdeskPeerConnections[0];
    const own = new RTCPeerConnection();
    own.addTransceiver('video', { direction: 'recvonly' });
    own.createDataChannel('input');
    await own.setLocalDescription(await own.createOffer());
    await new Promise((resolve) => {
      if (own.iceGatheringState === 'complete') resolve();
      own.addEventListener('icegatheringstatechange', () => { if (own.iceGatheringState === 'complete') resolve(); });
      setTimeout(resolve, 3000);
    });
    const offer = own.localDescription.sdp;
    own.close();
    return { answer: pc.localDescription.sdp, remoteOffer: pc.remoteDescription.sdp, offer };
  });
  const prefix = env('SDP_PREFIX', cell);
  const sdpOut = env('SDP_OUT', out);
  mkdirSync(sdpOut, { recursive: true });
  writeFileSync(join(sdpOut, `${prefix}-answer.sdp`), sdp.answer);
  writeFileSync(join(sdpOut, `${prefix}-offer.sdp`), sdp.offer);
  writeFileSync(join(sdpOut, `${prefix}-puppet-offer.sdp`), sdp.remoteOffer);
  console.log(`SDP written to ${sdpOut}/${prefix}-{answer,offer,puppet-offer}.sdp`);

  // Wait for the overlay to show figures, then the screenshot of the page controlling the puppet.
  await page.waitForFunction(() => document.getElementById('stats').textContent.includes('AV1'), null, { timeout: 5000 }).catch(() => {});
  const shot = join(out, env('SCREENSHOT', `${cell}.png`));
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);

  // After the screenshot, which shows the picture without the panel these open.
  if (env('CHAT', '') === '1') await chat(page);
  if (env('FILE_CHECK', '') === '1') await sendFile(page);
  result('no_console_errors', problems.length === 0, problems.length ? JSON.stringify(problems.slice(0, 3)) : '');
  return page;
}

// Chat both ways. Page → puppet: a line sent from the chat box; the driver prints
// `CHAT_SENT <text>` and the xtask looks for it in the puppet's output. Puppet → page: the
// driver prints `PUPPET_TYPE <text>`, the xtask types that line on the puppet's stdin, and the
// line must appear in the page's chat log.
async function chat(page) {
  const nonce = Math.random().toString(36).slice(2, 10);
  if (await page.isHidden('#panel')) await page.click('#panel-button');
  const mine = `hello puppet from the page ${nonce}`;
  await page.fill('#chat-input', mine);
  await page.press('#chat-input', 'Enter');
  const shown = await page.waitForFunction(
    (text) => [...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes(text)),
    mine, { timeout: 5000 },
  ).then(() => true, () => false);
  if (!shown) {
    result('chat_page_sent', false, 'the page did not show its own line (control channel not open?)');
    return;
  }
  console.log(`CHAT_SENT ${mine}`);
  const theirs = `hello page from the puppet ${nonce}`;
  const seen = page.waitForFunction(
    (text) => [...document.querySelectorAll('#chat-log li')].some((li) => li.textContent.includes(text)
      && !li.querySelector('.who')?.textContent.startsWith('You')),
    theirs, { timeout: 10000 },
  ).then(() => true, () => false);
  console.log(`PUPPET_TYPE ${theirs}`);
  const ok = await seen;
  const log = await page.$$eval('#chat-log li', (items) => items.map((li) => li.textContent));
  result('chat_puppet_to_page', ok, ok ? `chat log: ${JSON.stringify(log)}` : `not in the chat log within 10 s: ${JSON.stringify(log)}`);
}

// A 5 MiB file of random bytes given to the page's file input, as a person picking it would.
// The page must report it sent (the puppet's `file_done`, FILES.md); the driver prints
// `FILE_SENT <name> <size> <sha256>` and the xtask checks the puppet's download folder.
async function sendFile(page) {
  const size = 5 * 1024 * 1024;
  const bytes = randomBytes(size);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const name = `interop-5mib-${sha256.slice(0, 8)}.bin`;
  if (await page.isHidden('#panel')) await page.click('#panel-button');
  const started = performance.now();
  await page.setInputFiles('#file-input', { name, mimeType: 'application/octet-stream', buffer: bytes });
  console.log(`FILE_SENT ${name} ${size} ${sha256}`);
  const outcome = await page.waitForFunction(() => {
    const item = document.querySelector('#transfers li[id^="transfer-out-"]');
    return item && (item.dataset.state === 'done' || item.dataset.state === 'failed') ? item.textContent : null;
  }, null, { timeout: 60000 }).then((h) => h.jsonValue(), () => null);
  const seconds = (performance.now() - started) / 1000;
  const sent = outcome !== null && outcome.includes('— sent');
  result('file_5mib_sent', sent, outcome === null ? 'the page showed no outcome within 60 s' : outcome);
  if (sent) figure('file_5mib_mbit_s', ((size * 8) / seconds / 1e6).toFixed(1));
}

const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'rtcdesk-interop-chromium-')), {
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-features=WebRtcHideLocalIpsWithMdns'],
  viewport: { width: 1280, height: 720 },
});
try {
  const page = await run(context);
  await page.click('#leave-button').catch(() => {});
} catch (error) {
  result('session', false, error.message.split('\n')[0]);
} finally {
  await context.close().catch(() => {});
}
process.exit(failed ? 1 : 0);
