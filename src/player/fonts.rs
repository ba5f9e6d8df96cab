//! The bundled Simplified-Chinese fonts.
//!
//! The regular face becomes Bevy's default font, so every text without an
//! explicit font renders with Simplified-Chinese glyph forms; the bold face is
//! used for titles. Loaded from bytes at start-up: a missing font is logged,
//! never fatal (pictures and QR codes still show).

use bevy::prelude::*;
use bevy::text::FontSource;

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
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path)
            .map_err(|e| error!("font {}: {e}; text will not render", path.display()))
            .ok()
    };
    if let Some(bytes) = read("NotoSansCJKsc-Regular.otf") {
        if let Err(e) = fonts.insert(&Handle::<Font>::default(), Font::from_bytes(bytes)) {
            error!("cannot install the default font: {e}");
        }
    }
    let bold = match read("NotoSansCJKsc-Bold.otf") {
        Some(bytes) => FontSource::Handle(fonts.add(Font::from_bytes(bytes))),
        None => FontSource::default(),
    };
    commands.insert_resource(Fonts { bold });
}
