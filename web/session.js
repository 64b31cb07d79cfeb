// One WebRTC session with a puppet, as the answerer: after `accepted` the puppet sends the
// offer (video track, and the `input`, `pointer` and `control` data channels it opens); this
// page answers, and candidates are trickled both ways as `candidate` messages (an empty
// candidate means end of candidates).

/**
 * Events: `track` (detail: MediaStream), `channel` (detail: RTCDataChannel, binaryType
 * arraybuffer), `state` (detail: the connection state), `error` (detail: text).
 */
export class PuppetSession extends EventTarget {
  /**
   * @param {string} session the session id from `ringing`
   * @param {(message: object) => boolean} signal sends one signaling message
   * @param {RTCIceServer[]} iceServers from `accepted`, if the server gave any
   */
  constructor(session, signal, iceServers) {
    super();
    this.session = session;
    this.signal = signal;
    this.pendingCandidates = [];
    this.pc = new RTCPeerConnection({ iceServers: validIceServers(iceServers) });
    this.pc.addEventListener('icecandidate', (event) => {
      const candidate = event.candidate;
      this.signal({
        type: 'candidate',
        session: this.session,
        candidate: candidate ? candidate.candidate : '',
        ...(candidate && candidate.sdpMid != null ? { mid: candidate.sdpMid } : {}),
      });
    });
    this.pc.addEventListener('track', (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      this.dispatchEvent(new CustomEvent('track', { detail: stream }));
    });
    this.pc.addEventListener('datachannel', (event) => {
      event.channel.binaryType = 'arraybuffer';
      this.dispatchEvent(new CustomEvent('channel', { detail: event.channel }));
    });
    this.pc.addEventListener('connectionstatechange', () => {
      this.dispatchEvent(new CustomEvent('state', { detail: this.pc.connectionState }));
    });
  }

  /** Handles a relayed `offer`, `answer` (not expected) or `candidate` for this session. */
  async handle(message) {
    try {
      if (message.type === 'offer') {
        await this.pc.setRemoteDescription({ type: 'offer', sdp: String(message.sdp) });
        const answer = await this.pc.createAnswer();
        await this.pc.setLocalDescription(answer);
        this.signal({ type: 'answer', session: this.session, sdp: this.pc.localDescription.sdp });
        const pending = this.pendingCandidates;
        this.pendingCandidates = [];
        for (const candidate of pending) await this.addCandidate(candidate);
      } else if (message.type === 'candidate') {
        if (this.pc.remoteDescription) {
          await this.addCandidate(message);
        } else if (this.pendingCandidates.length < 256) {
          this.pendingCandidates.push(message);
        }
      }
    } catch (error) {
      this.dispatchEvent(new CustomEvent('error', {
        detail: `The puppet's ${message.type} could not be used: ${error.message}`,
      }));
    }
  }

  async addCandidate(message) {
    let line = String(message.candidate || '').trim();
    if (line.startsWith('a=')) line = line.slice(2);
    if (line === '') return; // end of candidates: nothing more will come
    const init = { candidate: line };
    if (typeof message.mid === 'string') init.sdpMid = message.mid;
    else init.sdpMLineIndex = 0;
    try {
      await this.pc.addIceCandidate(init);
    } catch (error) {
      // One unusable candidate (an unresolvable name, say) does not end the session.
      console.debug('candidate skipped', line, error);
    }
  }

  /** Statistics for the overlay. */
  getStats() {
    return this.pc.getStats();
  }

  close() {
    this.pc.close();
  }
}

/** Keeps only entries shaped like RTCIceServer, so a bad list cannot make the constructor throw. */
function validIceServers(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((server) => server && (typeof server.urls === 'string' || Array.isArray(server.urls)))
    .map((server) => ({
      urls: server.urls,
      ...(typeof server.username === 'string' ? { username: server.username } : {}),
      ...(typeof server.credential === 'string' ? { credential: server.credential } : {}),
    }));
}
