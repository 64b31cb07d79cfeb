// The stats overlay: figures from RTCPeerConnection.getStats() once a second.

/** Reads the figures that matter from two getStats() reports taken `previous` → `report`. */
export function summarise(report, previous) {
  let video = null;
  let pair = null;
  const codecs = new Map();
  report.forEach((entry) => {
    if (entry.type === 'inbound-rtp' && entry.kind === 'video') video = entry;
    if (entry.type === 'codec') codecs.set(entry.id, entry.mimeType);
    if (entry.type === 'candidate-pair' && entry.nominated && entry.state === 'succeeded') pair = entry;
  });
  if (!video) return null;
  const before = previous && previous.video;
  const seconds = before ? (video.timestamp - before.timestamp) / 1000 : 0;
  const delta = (field) => (before && seconds > 0 ? (video[field] || 0) - (before[field] || 0) : 0);
  const frames = delta('framesDecoded');
  return {
    video,
    codec: codecs.get(video.codecId) || '',
    size: video.frameWidth ? `${video.frameWidth}×${video.frameHeight}` : '',
    fps: video.framesPerSecond ?? (seconds > 0 ? frames / seconds : 0),
    bitrateKbps: seconds > 0 ? (delta('bytesReceived') * 8) / seconds / 1000 : 0,
    decodeMs: frames > 0 ? (delta('totalDecodeTime') * 1000) / frames : 0,
    jitterMs: (video.jitter || 0) * 1000,
    packetsLost: video.packetsLost || 0,
    framesDecoded: video.framesDecoded || 0,
    rttMs: pair && pair.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null,
  };
}

/** The overlay's text. */
export function format(figures, puppet) {
  if (!figures) return 'waiting for video…';
  const lines = [
    `${figures.codec || 'video'} ${figures.size}`,
    `fps ${figures.fps.toFixed(0)}  decoded ${figures.framesDecoded}`,
    `bitrate ${figures.bitrateKbps.toFixed(0)} kbit/s`,
    `RTT ${figures.rttMs == null ? '–' : `${figures.rttMs.toFixed(1)} ms`}`,
    `decode ${figures.decodeMs.toFixed(1)} ms/frame`,
    `jitter ${figures.jitterMs.toFixed(1)} ms  lost ${figures.packetsLost}`,
  ];
  if (puppet) {
    lines.push(`puppet: fps ${Number(puppet.fps).toFixed(0)}, ${Number(puppet.bitrate_kbps).toFixed(0)} kbit/s`);
  }
  return lines.join('\n');
}

/** Polls `session.getStats()` every second into `element` while `visible()`. */
export class StatsOverlay {
  constructor(element, session, puppetStats) {
    this.element = element;
    this.session = session;
    this.puppetStats = puppetStats;
    this.previous = null;
    this.timer = setInterval(() => this.update(), 1000);
  }

  async update() {
    let report;
    try {
      report = await this.session.getStats();
    } catch {
      return;
    }
    const figures = summarise(report, this.previous);
    if (figures) this.previous = figures;
    this.element.textContent = format(figures, this.puppetStats());
  }

  stop() {
    clearInterval(this.timer);
  }
}
