// The page's file transfer (web/control.js) without a browser: the chunk codec against FILES.md's
// example, and two Control objects wired back to back (fake `control` and `file` channels with a
// bufferedAmount), one sending a 5 MiB file to the other, which checks its SHA-256; then a
// damaged byte, which the receiver must answer with `hash_mismatch`. Node 20:
//   node web/tests/files.mjs
import assert from 'node:assert/strict';
import { encodeChunk, decodeChunk, Control, FILE_BUFFER_LIMIT } from '../control.js';

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const example = Buffer.from('180102030405060708090a0b0c616263', 'hex');
// FILES.md's example offset is above 2^53: a page refuses it rather than misplace bytes.
assert.match(decodeChunk(example.buffer.slice(example.byteOffset, example.byteOffset + 16)).error, /2\^53/);
const chunk = encodeChunk(0x04030201, 0x0605040302, new TextEncoder().encode('abc'));
assert.equal(hex(chunk), '18010203040203040506000000616263');
const back = decodeChunk(chunk.buffer);
assert.deepEqual([back.id, back.offset, hex(back.data)], [0x04030201, 0x0605040302, '616263']);
assert.ok(decodeChunk(new Uint8Array([0x18, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).buffer).error, 'no data');
assert.ok(decodeChunk(new Uint8Array(14).fill(0x17).buffer).error, 'wrong tag');
assert.ok(decodeChunk(new Uint8Array(13 + 16385).fill(0x18).buffer).error, 'too long');

/** Two ends; `damage` changes bytes on their way. Resolves with what each end's UI saw. */
function transfer(bytes, damage = (d) => d) {
  return new Promise((resolve) => {
    const seen = { sender: [], receiver: [], maxBuffered: 0, maxInFlight: 0, controls: [] };
    let finished = 0;
    const end = () => { finished += 1; if (finished === 2) resolve(seen); };
    const ui = (who) => ({
      chat() {}, clipboard() {}, stats() {}, viewOnly() {}, mode: () => 'map', progress() {},
      offer: (t) => t.accept(),
      done: (t) => { seen[who].push(['done', t.blob ? t.blob.size : t.size]); end(); },
      failed: (t, why) => { seen[who].push(['failed', why]); end(); },
    });
    const sender = new Control(ui('sender'));
    const receiver = new Control(ui('receiver'));
    const control = (to) => Object.assign(new EventTarget(), {
      readyState: 'open',
      send: (text) => { seen.controls.push(JSON.parse(text)); setTimeout(() => to.handle(JSON.parse(text)), 0); },
    });
    const file = (to) => {
      const channel = Object.assign(new EventTarget(), { readyState: 'open', bufferedAmount: 0 });
      channel.send = (data) => {
        channel.bufferedAmount += data.length;
        seen.maxBuffered = Math.max(seen.maxBuffered, channel.bufferedAmount);
        const inFlight = sender.sending.size ? [...sender.sending.values()][0] : null;
        if (inFlight) seen.maxInFlight = Math.max(seen.maxInFlight, inFlight.sent + data.length - 13 - inFlight.acked);
        setTimeout(() => {
          channel.bufferedAmount -= data.length;
          to.chunk(damage(data.slice()).buffer);
          if (channel.bufferedAmount <= channel.bufferedAmountLowThreshold) channel.dispatchEvent(new Event('bufferedamountlow'));
        }, 0);
      };
      return channel;
    };
    sender.channel = control(receiver);
    receiver.channel = control(sender);
    sender.attachFile(file(receiver));
    receiver.attachFile(file(sender));
    sender.sendFile(new File([bytes], 'five.bin'));
  });
}

const bytes = new Uint8Array(5 * 1024 * 1024 + 123);
for (let i = 0; i < bytes.length; i += 1) bytes[i] = (i * 2654435761) >>> 24;
const good = await transfer(bytes);
assert.deepEqual(good.receiver, [['done', bytes.length]]);
assert.deepEqual(good.sender, [['done', bytes.length]]);
assert.ok(good.maxBuffered <= FILE_BUFFER_LIMIT, `buffered ${good.maxBuffered}`);
assert.ok(good.maxInFlight <= 4 * 1024 * 1024, `in flight ${good.maxInFlight}`);
assert.ok(good.controls.filter((m) => m.type === 'file_ack').length >= 4, 'acks every quarter window');

const bad = await transfer(bytes, (data) => { if (data.length > 100) data[100] ^= 1; return data; });
assert.match(bad.receiver[0][1], /SHA-256/);
assert.ok(bad.controls.some((m) => m.type === 'file_error' && m.code === 'hash_mismatch' && m.by === 'receiver'));
assert.match(bad.sender[0][1], /hash_mismatch/);
console.log('files: ok');
