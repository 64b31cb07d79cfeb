// Drives the page in Debian's headless Chromium against the real native puppet (synthetic
// desktop, its embedded signaling server, every controller accepted): the page is loaded from
// the puppet's own port, pairs by code, and must show the puppet's AV1 video; pointer, click,
// keys and wheel are sent (the screenshot shows the synthetic desktop's pointer marker where
// the page moved it); there must be no console errors. Prints one line per check; exits 1
// if any failed.
//
// Run from a folder where `npm install playwright-core` was done (no browser is downloaded):
//   PUPPET=target/debug/puppet SCREENSHOTS=web/screenshots node web/tests/puppet.mjs
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';

const { chromium } = createRequire(join(process.cwd(), 'noop.js'))('playwright-core');
const binary = process.env.PUPPET || 'target/debug/puppet';
const screenshots = process.env.SCREENSHOTS || tmpdir();
const puppet = spawn(binary, ['--source', 'synthetic', '--accept-all', '--listen', '127.0.0.1:0'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const lines = [];
const { code, signal } = await new Promise((resolve, reject) => {
  let code = null;
  readline.createInterface({ input: puppet.stdout }).on('line', (line) => {
    lines.push(line);
    if (line.startsWith('Control code: ')) code = line.slice(14).trim();
    if (line.startsWith('Signaling: ') && code) resolve({ code, signal: line.slice(11).trim() });
  });
  puppet.on('exit', (status) => reject(new Error(`puppet exited (${status}): ${lines.join('\n')}`)));
});
const pageUrl = signal.replace(/^ws/, 'http').replace(/\/signal$/, '/');
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
const page = await context.newPage();
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
try {
  await page.goto(pageUrl);
  await page.fill('#code', code);
  await page.fill('#name', 'Browser');
  await page.click('#connect-button');
  await page.waitForSelector('#session-screen:not([hidden])', { timeout: 10000 });
  check('accepted', true);
  await page.waitForFunction(() => document.getElementById('video').videoWidth > 0, null, { timeout: 20000 });
  check('video plays', true, await page.evaluate(() => `${video.videoWidth}x${video.videoHeight}`));
  await page.click('#stats-button');
  const box = await page.evaluate(() => { const r = video.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
  for (let i = 0; i < 20; i += 1) await page.mouse.move(box.x + box.w * (0.3 + i / 50), box.y + box.h * 0.5);
  await page.mouse.down();
  await page.mouse.up();
  await page.keyboard.type('hello');
  await page.mouse.wheel(0, 120);
  await page.waitForTimeout(3000);
  const stats = await page.textContent('#stats');
  check('AV1 decoded', stats.includes('video/AV1'), stats.replace(/\n/g, ' | '));
  const decoded = Number((stats.match(/decoded (\d+)/) || [])[1] || 0);
  // The puppet sends a frame only when its screen changed, so a few frames are all there is.
  check('frames decoded', decoded >= 2, String(decoded));
  await page.screenshot({ path: join(screenshots, 'puppet-session.png') });
} catch (error) {
  check('session', false, error.message.split('\n')[0]);
}
check('no console errors', problems.length === 0, JSON.stringify(problems));
for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.detail ? `: ${r.detail}` : ''}`);
await context.close();
puppet.kill('SIGINT');
process.exit(results.every((r) => r.ok) ? 0 : 1);
