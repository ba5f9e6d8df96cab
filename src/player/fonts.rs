//! The bundled Simplified-Chinese fonts.
//!
//! The regular face becomes Bevy's default font, so every text without an
//! explicit font renders with Simplified-Chinese glyph forms; the bold face is
//! used for titles. Mapped at start-up: a missing font is logged, never
//! fatal (pictures and QR codes still show).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use bevy::prelude::*;
use bevy::text::FontSource;
use linebender_resource_handle::Blob;
use memmap2::Mmap;

use super::Settings;

#[derive(Resource, Clone)]
pub(crate) struct Fonts {
    pub bold: FontSource,
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(PreStartup, load_fonts);
}

fn load_fonts(mut commands: Commands, settings: Res<Settings>, mut fonts: ResMut<Assets<Font>>) {
    let dir = settings.assets.join("fonts");
    let open = |name: &str| {
        let path = dir.join(name);
        map(&path)
            .map_err(|e| error!("font {}: {e}; text will not render", path.display()))
            .ok()
    };
    if let Some(data) = open("NotoSansCJKsc-Regular.otf")
        && let Err(e) = fonts.insert(&Handle::<Font>::default(), Font { data, alias: String::new() }) {
            error!("cannot install the default font: {e}");
        }
    let bold = match open("NotoSansCJKsc-Bold.otf") {
        Some(data) => FontSource::Handle(fonts.add(Font { data, alias: String::new() })),
        None => FontSource::default(),
    };
    commands.insert_resource(Fonts { bold });
}

/// Maps a font file read-only. A CJK face is 16 MB, of which a screen of text
/// touches a few hundred kilobytes; mapped, only those pages are ever loaded.
fn map(path: &Path) -> std::io::Result<Blob<u8>> {
    let file = File::open(path)?;
    // SAFETY: the mapping is read-only and the font files belong to the
    // package: upgrades replace them by rename, which leaves this mapping on
    // the old file. Only truncating the file in place could fault, and that
    // is a broken installation, not an input we accept.
    let map = unsafe { Mmap::map(&file)? };
    Ok(Blob::new(Arc::new(map)))
}
