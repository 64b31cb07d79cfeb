//! libaom (Debian's 3.6 through `aom-sys`) in realtime mode: the default live encoder.
//!
//! This is the crate's only module with `unsafe` code. The invariants it keeps:
//!
//! 1. `ctx` is initialised by `aom_codec_enc_init_ver` in [`AomEncoder::new`] before the value
//!    exists, is used only through `&mut self` (never from two threads at once), and is destroyed
//!    exactly once, in `Drop`. A failed initialisation destroys nothing (libaom frees its own
//!    state on failure) and never builds the value.
//! 2. `ctx` and `cfg` are boxed so their addresses stay fixed for libaom's lifetime of the context,
//!    whatever happens to the `AomEncoder` value.
//! 3. The `aom_image_t` handed to `aom_codec_encode` points into the caller's `I420` planes only
//!    for the duration of that call: libaom copies the source into its own lookahead buffer
//!    (lag 0), so no pointer outlives the borrow. Plane sizes are checked against the configured
//!    width and height before the call.
//! 4. Packets from `aom_codec_get_cx_data` are copied into owned `Vec`s before the next libaom
//!    call on the context, which may reuse their memory.
//! 5. Control values passed through the variadic `aom_codec_control` have the C types the
//!    control expects (`int` or `unsigned int`, both 32-bit here).
//!
//! Checked under valgrind (memcheck, `--leak-check=full`) with the keyframe/bitrate and the
//! resize round-trip tests, which make, use and drop encoders: no definite or indirect leak, no
//! invalid access.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::ffi::{c_int, c_uint, CStr};
use std::mem::MaybeUninit;
use std::time::Instant;

use aom_sys as sys;

use super::{EncodedFrame, Encoder, EncoderConfig, FrameMeta};
use crate::error::{Error, Result};
use crate::frame::I420;

/// libaom's speed preset for realtime. 9, not 10, with cyclic-refresh AQ off: with
/// cpu-used 10 and AQ 3 (FACTS.md's settings) libaom 3.6 left 16×8 areas stale (a block of the
/// previous picture where small high-contrast cells had changed) in 15–45 of 120 frames at
/// 640×360 and the default bitrate; cpu-used 9 with AQ 0 gave 0 in most runs of 120 (once 24)
/// and 0 at 720p, at the same speed. Measured with the media benchmark's verbose mode.
const CPU_USED: c_int = 9;
/// Adaptive quantization off (see [`CPU_USED`]).
const AQ_MODE: c_int = 0;
/// Quantizer bounds for CBR: 56 keeps the worst frame readable, 10 stops wasting bits on a still one.
const MIN_Q: c_uint = 10;
const MAX_Q: c_uint = 56;
/// Timestamps are in microseconds.
const TIMEBASE_DEN: c_int = 1_000_000;

/// libaom realtime: one pass, no lag, CBR, screen-content tools, keyframes only on request.
pub struct AomEncoder {
    ctx: Box<sys::aom_codec_ctx_t>,
    cfg: Box<sys::aom_codec_enc_cfg_t>,
    width: u32,
    height: u32,
    frame_duration: i64,
    last_capture: Option<Instant>,
    last_pts: Option<i64>,
    ready: VecDeque<EncodedFrame>,
}

// SAFETY: the context is owned exclusively by this value and only touched through `&mut self`;
// libaom contexts have no thread affinity, they only must not be used concurrently.
unsafe impl Send for AomEncoder {}

fn check(result: sys::aom_codec_err_t::Type, what: &str) -> Result<()> {
    if result == sys::aom_codec_err_t::AOM_CODEC_OK {
        return Ok(());
    }
    // SAFETY: aom_codec_err_to_string returns a static NUL-terminated string for any value.
    let text = unsafe { CStr::from_ptr(sys::aom_codec_err_to_string(result)) };
    Err(Error::Encoder(format!(
        "{what}: {}",
        text.to_string_lossy()
    )))
}

impl AomEncoder {
    /// Opens a libaom encoder with the realtime screen-content settings measured in FACTS.md.
    pub fn new(config: &EncoderConfig) -> Result<AomEncoder> {
        let mut cfg = Box::new(MaybeUninit::<sys::aom_codec_enc_cfg_t>::uninit());
        // SAFETY: aom_codec_av1_cx returns a static interface; cfg points to writable memory of
        // the right type, fully written by the call when it succeeds.
        let result = unsafe {
            sys::aom_codec_enc_config_default(
                sys::aom_codec_av1_cx(),
                cfg.as_mut_ptr(),
                sys::AOM_USAGE_REALTIME,
            )
        };
        check(result, "default configuration")?;
        // SAFETY: initialised by the successful call above.
        let mut cfg: Box<sys::aom_codec_enc_cfg_t> =
            unsafe { Box::from_raw(Box::into_raw(cfg).cast()) };
        cfg.g_w = config.width;
        cfg.g_h = config.height;
        cfg.g_timebase.num = 1;
        cfg.g_timebase.den = TIMEBASE_DEN;
        cfg.g_threads = config.threads.max(1);
        cfg.g_lag_in_frames = 0;
        cfg.g_pass = sys::aom_enc_pass::AOM_RC_ONE_PASS;
        cfg.g_error_resilient = 0;
        cfg.rc_end_usage = sys::aom_rc_mode::AOM_CBR;
        cfg.rc_target_bitrate = config.bitrate_kbps.max(1);
        cfg.rc_min_quantizer = MIN_Q;
        cfg.rc_max_quantizer = MAX_Q;
        cfg.rc_dropframe_thresh = 0;
        cfg.rc_undershoot_pct = 50;
        cfg.rc_overshoot_pct = 50;
        cfg.rc_buf_sz = 1000;
        cfg.rc_buf_initial_sz = 600;
        cfg.rc_buf_optimal_sz = 600;
        cfg.kf_mode = sys::aom_kf_mode::AOM_KF_DISABLED;
        cfg.kf_max_dist = u32::MAX / 2;

        let mut ctx = Box::new(MaybeUninit::<sys::aom_codec_ctx_t>::uninit());
        // SAFETY: ctx points to writable memory for a context; cfg is a valid configuration;
        // the ABI version is the one the bindings were generated from (Debian's headers).
        let result = unsafe {
            sys::aom_codec_enc_init_ver(
                ctx.as_mut_ptr(),
                sys::aom_codec_av1_cx(),
                &*cfg,
                0,
                sys::AOM_ENCODER_ABI_VERSION as c_int,
            )
        };
        check(result, "encoder initialisation")?;
        // SAFETY: initialised by the successful call above.
        let ctx: Box<sys::aom_codec_ctx_t> = unsafe { Box::from_raw(Box::into_raw(ctx).cast()) };
        let mut encoder = AomEncoder {
            ctx,
            cfg,
            width: config.width,
            height: config.height,
            frame_duration: (TIMEBASE_DEN as u32 / config.fps.max(1)) as i64,
            last_capture: None,
            last_pts: None,
            ready: VecDeque::new(),
        };
        encoder.apply_controls()?;
        Ok(encoder)
    }

    fn control(&mut self, id: sys::aome_enc_control_id::Type, value: c_int) -> Result<()> {
        // SAFETY: ctx is initialised (invariant 1); every control used here takes an int or
        // unsigned int, passed as a 32-bit int (invariant 5).
        let result = unsafe { sys::aom_codec_control(&mut *self.ctx, id as c_int, value) };
        check(result, "control")
    }

    fn apply_controls(&mut self) -> Result<()> {
        use sys::aome_enc_control_id as id;
        self.control(id::AOME_SET_CPUUSED, CPU_USED)?;
        self.control(
            id::AV1E_SET_TUNE_CONTENT,
            sys::aom_tune_content::AOM_CONTENT_SCREEN as c_int,
        )?;
        self.control(id::AV1E_SET_ENABLE_PALETTE, 1)?;
        self.control(id::AV1E_SET_ROW_MT, 1)?;
        self.control(id::AV1E_SET_TILE_COLUMNS, 1)?;
        self.control(id::AV1E_SET_AQ_MODE, AQ_MODE)?;
        self.control(id::AV1E_SET_ENABLE_CDEF, 1)?;
        self.control(id::AV1E_SET_ENABLE_TPL_MODEL, 0)?;
        self.control(id::AV1E_SET_DELTAQ_MODE, 0)?;
        self.control(id::AV1E_SET_ENABLE_ORDER_HINT, 0)?;
        self.control(id::AV1E_SET_ENABLE_OBMC, 0)?;
        self.control(id::AV1E_SET_ENABLE_WARPED_MOTION, 0)?;
        self.control(id::AV1E_SET_ENABLE_GLOBAL_MOTION, 0)?;
        // Tag the stream as what our conversion produces: BT.709, limited range.
        self.control(id::AV1E_SET_COLOR_PRIMARIES, 1)?;
        self.control(id::AV1E_SET_TRANSFER_CHARACTERISTICS, 1)?;
        self.control(id::AV1E_SET_MATRIX_COEFFICIENTS, 1)?;
        self.control(id::AV1E_SET_COLOR_RANGE, 0)?;
        Ok(())
    }

    /// Timestamp and duration for a frame. Rate control budgets bits per frame from durations,
    /// so they follow the capture times but never drop below the nominal frame interval (a burst
    /// of frames must not starve each of bits) nor exceed ten intervals (a long still period must
    /// not make one frame huge).
    fn timing_of(&mut self, meta: &FrameMeta) -> (i64, i64) {
        let nominal = self.frame_duration;
        let Some(last_pts) = self.last_pts else {
            self.last_capture = Some(meta.captured_at);
            self.last_pts = Some(0);
            return (0, nominal);
        };
        let gap = self
            .last_capture
            .map(|last| meta.captured_at.saturating_duration_since(last).as_micros() as i64)
            .unwrap_or(nominal);
        let duration = gap.clamp(nominal, 10 * nominal);
        self.last_capture = Some(meta.captured_at);
        self.last_pts = Some(last_pts + duration);
        (last_pts + duration, duration)
    }
}

impl Encoder for AomEncoder {
    fn name(&self) -> &'static str {
        "aom"
    }

    fn send_frame(&mut self, image: &I420, meta: FrameMeta, keyframe: bool) -> Result<()> {
        if image.width != self.width || image.height != self.height {
            return Err(Error::UnsupportedSize {
                width: image.width,
                height: image.height,
                reason: "differs from the size the encoder was made for",
            });
        }
        let (cw, ch) = crate::frame::chroma_size(image.width, image.height);
        if image.y.len() < (self.width * self.height) as usize
            || image.u.len() < cw * ch
            || image.v.len() < cw * ch
        {
            return Err(Error::Encoder(
                "image planes shorter than the picture".into(),
            ));
        }
        let (pts, duration) = self.timing_of(&meta);

        let mut img = MaybeUninit::<sys::aom_image_t>::zeroed();
        // SAFETY: img is writable; with a non-null data pointer aom_img_wrap only fills in the
        // descriptor (no allocation). The data pointer is replaced below per plane.
        let wrapped = unsafe {
            sys::aom_img_wrap(
                img.as_mut_ptr(),
                sys::aom_img_fmt::AOM_IMG_FMT_I420,
                self.width,
                self.height,
                1,
                image.y.as_ptr().cast_mut(),
            )
        };
        if wrapped.is_null() {
            return Err(Error::Encoder("aom_img_wrap refused the picture".into()));
        }
        // SAFETY: aom_img_wrap succeeded, so the descriptor is initialised.
        let mut img = unsafe { img.assume_init() };
        img.planes[0] = image.y.as_ptr().cast_mut();
        img.planes[1] = image.u.as_ptr().cast_mut();
        img.planes[2] = image.v.as_ptr().cast_mut();
        img.stride[0] = self.width as c_int;
        img.stride[1] = cw as c_int;
        img.stride[2] = cw as c_int;
        let flags = if keyframe {
            sys::AOM_EFLAG_FORCE_KF as sys::aom_enc_frame_flags_t
        } else {
            0
        };
        // SAFETY: ctx is initialised (1); img's planes point into `image`, borrowed for this call
        // and checked to be large enough (3); libaom does not keep the pointers (lag 0).
        let result =
            unsafe { sys::aom_codec_encode(&mut *self.ctx, &img, pts, duration as _, flags) };
        check(result, "encode")?;
        self.collect(meta)
    }

    fn poll_packet(&mut self) -> Result<Option<EncodedFrame>> {
        Ok(self.ready.pop_front())
    }

    fn set_bitrate(&mut self, kbps: u32) {
        self.cfg.rc_target_bitrate = kbps.max(1);
        // SAFETY: ctx initialised (1); cfg is the configuration it was made with, changed only
        // in the target bitrate, which libaom allows between frames.
        let result = unsafe { sys::aom_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
        // A refused change leaves the old rate in force; nothing else depends on it.
        let _ = check(result, "set bitrate");
    }

    fn bitrate(&self) -> u32 {
        self.cfg.rc_target_bitrate
    }

    fn flush(&mut self) -> Result<()> {
        // Realtime with lag 0 holds nothing back: every packet is out when send_frame returns.
        Ok(())
    }
}

impl AomEncoder {
    /// Moves the packets of the frame just encoded out of libaom into one owned temporal unit.
    fn collect(&mut self, meta: FrameMeta) -> Result<()> {
        let mut data = Vec::new();
        let mut keyframe = false;
        let mut iter: sys::aom_codec_iter_t = std::ptr::null();
        loop {
            // SAFETY: ctx initialised (1); iter starts null as libaom requires and is only
            // advanced by libaom.
            let packet = unsafe { sys::aom_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            if packet.is_null() {
                break;
            }
            // SAFETY: a non-null packet is valid until the next call on ctx (4).
            let packet = unsafe { &*packet };
            if packet.kind != sys::aom_codec_cx_pkt_kind::AOM_CODEC_CX_FRAME_PKT {
                continue;
            }
            // SAFETY: kind says the union holds a frame; buf/sz describe libaom's output
            // buffer, copied before the next libaom call (4).
            let frame = unsafe { &packet.data.frame };
            if !frame.buf.is_null() && frame.sz > 0 {
                // SAFETY: libaom guarantees buf points to sz readable bytes until the next call
                // on ctx; they are copied out at once (4).
                let bytes = unsafe { std::slice::from_raw_parts(frame.buf as *const u8, frame.sz) };
                data.extend_from_slice(bytes);
            }
            keyframe |= frame.flags & sys::AOM_FRAME_IS_KEY != 0;
        }
        if data.is_empty() {
            return Ok(());
        }
        self.ready.push_back(EncodedFrame {
            data,
            keyframe,
            meta,
            produced_at: Instant::now(),
            frames_held: 0,
            repeat: false,
            width: self.width,
            height: self.height,
        });
        Ok(())
    }
}

impl Drop for AomEncoder {
    fn drop(&mut self) {
        // SAFETY: ctx was initialised (1) and is destroyed only here, once.
        unsafe {
            sys::aom_codec_destroy(&mut *self.ctx);
        }
    }
}
