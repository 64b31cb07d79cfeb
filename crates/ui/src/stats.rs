//! The stats panel: this side's figures and, once the other side sent its `stats` control
//! message, the other side's, in one table so a slow link or a slow encoder shows at a glance.

use egui::Ui;

/// One side's figures; `None` where that side does not know (yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsView {
    /// Pictures per second.
    pub fps: Option<f64>,
    /// Round-trip time, ms.
    pub rtt_ms: Option<f64>,
    /// Bits per second (received on the controller, sent on the puppet).
    pub bitrate_bps: Option<u64>,
    /// Glass-to-glass latency (or decode/encode time), ms.
    pub latency_ms: Option<f64>,
    /// Packet loss, percent.
    pub loss_percent: Option<f64>,
    /// Video codec, e.g. "AV1 (libaom)".
    pub codec: Option<String>,
    /// Picture size.
    pub resolution: Option<(u32, u32)>,
}

/// The panel: ours, and the other side's once known.
#[derive(Debug, Clone, Default)]
pub struct StatsPanel {
    /// This side's figures.
    pub local: StatsView,
    /// The other side's, from its `stats` control message.
    pub remote: Option<StatsView>,
    /// What to call the two columns, e.g. ("controller", "puppet").
    pub sides: (String, String),
}

fn cell<T>(value: &Option<T>, format: impl Fn(&T) -> String) -> String {
    value.as_ref().map_or_else(|| "—".to_owned(), format)
}

fn rows(view: &StatsView) -> [String; 7] {
    [
        cell(&view.fps, |v| format!("{v:.0}")),
        cell(&view.rtt_ms, |v| format!("{v:.1} ms")),
        cell(&view.bitrate_bps, |v| {
            if *v >= 1_000_000 {
                format!("{:.1} Mbit/s", *v as f64 / 1e6)
            } else {
                format!("{} kbit/s", v / 1000)
            }
        }),
        cell(&view.latency_ms, |v| format!("{v:.1} ms")),
        cell(&view.loss_percent, |v| format!("{v:.1} %")),
        cell(&view.codec, Clone::clone),
        cell(&view.resolution, |(w, h)| format!("{w}×{h}")),
    ]
}

const NAMES: [&str; 7] = [
    "fps",
    "RTT",
    "bitrate",
    "latency",
    "loss",
    "codec",
    "resolution",
];

impl StatsPanel {
    /// Draws the table.
    pub fn show(&self, ui: &mut Ui) {
        ui.strong("Stats");
        let local = rows(&self.local);
        let remote = self.remote.as_ref().map(rows);
        egui::Grid::new("stats")
            .striped(true)
            .num_columns(3)
            .show(ui, |ui| {
                ui.label("");
                ui.strong(&self.sides.0);
                ui.strong(&self.sides.1);
                ui.end_row();
                for (i, name) in NAMES.iter().enumerate() {
                    ui.label(*name);
                    ui.label(&local[i]);
                    match &remote {
                        Some(remote) => ui.label(&remote[i]),
                        None => ui.label("—"),
                    };
                    ui.end_row();
                }
            });
    }
}
