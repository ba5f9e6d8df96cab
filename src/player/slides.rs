//! Building the on-screen tree for one item, and fading it in.
//!
//! Sizes are fractions of the screen (`vmin`), so the same slide fits 1080p,
//! 4K and portrait screens. Font sizes come from the small fixed set in
//! [`TextSize`]: Bevy keeps a glyph atlas per font and size for the life of
//! the process, so free-form sizes would grow memory without bound.

use bevy::prelude::*;
use bevy::ui::{Overflow, PositionType};

use super::fonts::Fonts;
use crate::core::color::Rgba;
use crate::config::Language;
use crate::core::media;
use crate::core::playlist::{Fit, Item, ItemKind};

/// Height of the ticker band, in percent of the screen height.
pub(crate) const TICKER_BAND_VH: f32 = 7.0;

/// The fixed set of text sizes, in percent of the screen's smaller side.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TextSize {
    Title,
    Body,
    Footer,
    Caption,
    ClockTime,
    ClockLine,
    Ticker,
}

impl TextSize {
    fn vmin(self) -> f32 {
        match self {
            TextSize::Title => 7.0,
            TextSize::Body => 4.4,
            TextSize::Footer => 3.2,
            TextSize::Caption => 4.8,
            TextSize::ClockTime => 20.0,
            TextSize::ClockLine => 5.0,
            TextSize::Ticker => 4.0,
        }
    }

    pub fn font(self, fonts: &Fonts) -> TextFont {
        let font = match self {
            TextSize::Title | TextSize::ClockTime => fonts.bold.clone(),
            _ => default(),
        };
        TextFont {
            font,
            font_size: bevy::text::FontSize::VMin(self.vmin()),
            ..default()
        }
    }
}

pub(crate) fn color(c: Rgba) -> Color {
    let [r, g, b, a] = c.0;
    Color::srgba_u8(r, g, b, a)
}

/// The root of one slide; its alpha is applied to every part.
#[derive(Component)]
pub(crate) struct Slide {
    pub alpha: f32,
}

/// A coloured part of a slide: remembers its own alpha so fades multiply it.
#[derive(Component)]
pub(crate) struct Part {
    root: Entity,
    base_alpha: f32,
    /// Which colour the fade acts on. Every UI node carries a (transparent)
    /// `BackgroundColor`, so fading "whatever is there" would paint text
    /// boxes black; each part names its own.
    paint: Paint,
}

#[derive(Clone, Copy, PartialEq)]
enum Paint {
    Background,
    Text,
    Image,
}

/// A picture placed by `fit` in the slide's content box, in pixels; redone
/// whenever the window size changes.
#[derive(Component)]
pub(crate) struct FitImage {
    width: f32,
    height: f32,
    fit: Fit,
    band: bool,
}

/// A clock text that the clock plugin keeps current.
#[derive(Component, Clone, Copy)]
pub(crate) enum ClockLabel {
    Time { seconds: bool },
    Date,
    Lunar,
}

/// Pictures prepared for an item, already on their way to the GPU.
#[derive(Default, Clone)]
pub(crate) struct Pictures {
    pub main: Option<(Handle<Image>, UVec2)>,
}

/// What a slide shows.
pub(crate) enum Content<'a> {
    Item(&'a Item),
    /// `notice`: one small line, e.g. that the config file cannot be used.
    Idle { name: &'a str, language: Language, notice: Option<&'a str> },
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        (apply_alpha, place_images).in_set(super::Phase::Animate),
    );
}

/// Everything a slide is laid out from.
pub(crate) struct SlideSpec<'a> {
    pub content: &'a Content<'a>,
    pub pictures: &'a Pictures,
    /// A ticker band takes the bottom of the screen.
    pub band: bool,
    /// The window's size in logical pixels.
    pub window: Vec2,
    /// On top of everything spawned with a lower `z`.
    pub z: i32,
    /// The opacity to start at.
    pub alpha: f32,
}

/// Spawns a slide as `spec` says.
pub(crate) fn spawn(commands: &mut Commands, spec: &SlideSpec, fonts: &Fonts) -> Entity {
    let &SlideSpec { content, pictures, band, window, z, alpha } = spec;
    let background = match content {
        Content::Item(item) => item.background,
        Content::Idle { .. } => Rgba::rgb(0x0d, 0x2b, 0x4e),
    };
    let root = commands
        .spawn((
            Slide { alpha },
            Node {
                position_type: PositionType::Absolute,
                left: Val::Px(0.0),
                right: Val::Px(0.0),
                top: Val::Px(0.0),
                bottom: if band { Val::Vh(TICKER_BAND_VH) } else { Val::Px(0.0) },
                overflow: Overflow::clip(),
                ..default()
            },
            GlobalZIndex(z),
        ))
        .id();
    let mut b = Builder {
        commands,
        root,
        fonts,
        alpha,
    };
    b.paint(root, BackgroundColor(color(background)), background.0[3]);
    match content {
        Content::Item(item) => match &item.kind {
            ItemKind::Image { fit, .. } | ItemKind::Video(crate::core::playlist::Video { fit, .. }) => {
                if let Some((handle, size)) = &pictures.main {
                    b.picture(root, handle.clone(), *size, *fit, band, window);
                }
            }
            ItemKind::Text { title, body, footer, .. } => {
                if let Some((handle, size)) = &pictures.main {
                    b.picture(root, handle.clone(), *size, Fit::Cover, band, window);
                    // Darken the picture so text stays readable on any photo.
                    let shade = b.node(root, full_cover());
                    b.paint(shade, BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.45)), 115);
                }
                let column = b.node(
                    root,
                    Node {
                        width: Val::Percent(100.0),
                        height: Val::Percent(100.0),
                        flex_direction: FlexDirection::Column,
                        padding: UiRect::all(Val::VMin(6.0)),
                        row_gap: Val::VMin(3.0),
                        ..default()
                    },
                );
                if let Some(t) = title {
                    b.text(column, t, TextSize::Title, item.color, Justify::Left);
                }
                if let Some(t) = body {
                    b.text(column, t, TextSize::Body, item.color, Justify::Left);
                }
                if let Some(t) = footer {
                    // Pushes the footer to the bottom of the card.
                    b.node(column, Node { flex_grow: 1.0, ..default() });
                    let mut c = item.color;
                    c.0[3] = (u16::from(c.0[3]) * 200 / 255) as u8;
                    b.text(column, t, TextSize::Footer, c, Justify::Left);
                }
            }
            ItemKind::Qr { caption, .. } => {
                let portrait = window.y > window.x;
                let row = b.node(
                    root,
                    Node {
                        width: Val::Percent(100.0),
                        height: Val::Percent(100.0),
                        flex_direction: if portrait { FlexDirection::Column } else { FlexDirection::Row },
                        justify_content: JustifyContent::Center,
                        align_items: AlignItems::Center,
                        column_gap: Val::VMin(6.0),
                        row_gap: Val::VMin(4.0),
                        padding: UiRect::all(Val::VMin(5.0)),
                        ..default()
                    },
                );
                if let Some((handle, size)) = &pictures.main {
                    let img = b.node(
                        row,
                        Node {
                            width: Val::Px(size.x as f32),
                            height: Val::Px(size.y as f32),
                            flex_shrink: 0.0,
                            ..default()
                        },
                    );
                    b.image(img, handle.clone());
                }
                if let Some(c) = caption {
                    let holder = b.node(
                        row,
                        Node {
                            max_width: if portrait { Val::Percent(90.0) } else { Val::Percent(45.0) },
                            ..default()
                        },
                    );
                    b.text(holder, c, TextSize::Caption, item.color, Justify::Center);
                }
            }
            ItemKind::Clock { lunar, seconds, title } => {
                let column = b.centered_column(root);
                if let Some(t) = title {
                    b.text(column, t, TextSize::ClockLine, item.color, Justify::Center);
                }
                b.clock(column, ClockLabel::Time { seconds: *seconds }, TextSize::ClockTime, item.color);
                b.clock(column, ClockLabel::Date, TextSize::ClockLine, item.color);
                if *lunar {
                    b.clock(column, ClockLabel::Lunar, TextSize::ClockLine, item.color);
                }
            }
        },
        Content::Idle { name, language, notice } => {
            let column = b.centered_column(root);
            let white = Rgba::WHITE;
            b.text(column, name, TextSize::Title, white, Justify::Center);
            b.clock(column, ClockLabel::Time { seconds: false }, TextSize::ClockTime, white);
            b.clock(column, ClockLabel::Date, TextSize::ClockLine, white);
            let idle = match language {
                Language::ZhCn => "暂无节目",
                Language::En => "No programme scheduled",
            };
            b.text(column, idle, TextSize::ClockLine, Rgba([255, 255, 255, 190]), Justify::Center);
            if let Some(n) = notice {
                b.text(column, n, TextSize::Footer, Rgba([255, 255, 255, 140]), Justify::Center);
            }
        }
    }
    root
}

pub(crate) fn full_cover() -> Node {
    Node {
        position_type: PositionType::Absolute,
        left: Val::Px(0.0),
        right: Val::Px(0.0),
        top: Val::Px(0.0),
        bottom: Val::Px(0.0),
        ..default()
    }
}

struct Builder<'a, 'w, 's> {
    commands: &'a mut Commands<'w, 's>,
    root: Entity,
    fonts: &'a Fonts,
    alpha: f32,
}

impl Builder<'_, '_, '_> {
    fn node(&mut self, parent: Entity, node: Node) -> Entity {
        let id = self.commands.spawn(node).id();
        self.commands.entity(parent).add_child(id);
        id
    }

    fn part(&self, base_alpha: u8, paint: Paint) -> Part {
        Part {
            root: self.root,
            base_alpha: f32::from(base_alpha) / 255.0,
            paint,
        }
    }

    fn paint(&mut self, e: Entity, mut bg: BackgroundColor, base_alpha: u8) {
        bg.0.set_alpha(f32::from(base_alpha) / 255.0 * self.alpha);
        let part = self.part(base_alpha, Paint::Background);
        self.commands.entity(e).insert((bg, part));
    }

    fn image(&mut self, e: Entity, handle: Handle<Image>) {
        let part = self.part(255, Paint::Image);
        let mut node = ImageNode::new(handle);
        node.color.set_alpha(self.alpha);
        self.commands.entity(e).insert((node, part));
    }

    fn picture(&mut self, parent: Entity, handle: Handle<Image>, size: UVec2, fit: Fit, band: bool, window: Vec2) {
        let fit_image = FitImage {
            width: size.x as f32,
            height: size.y as f32,
            fit,
            band,
        };
        let node = fit_image.node(window);
        let e = self.node(parent, node);
        self.image(e, handle);
        self.commands.entity(e).insert(fit_image);
    }

    fn text(&mut self, parent: Entity, s: &str, size: TextSize, c: Rgba, justify: Justify) -> Entity {
        let mut col = color(c);
        col.set_alpha(f32::from(c.0[3]) / 255.0 * self.alpha);
        let part = self.part(c.0[3], Paint::Text);
        let id = self
            .commands
            .spawn((
                Text::new(s),
                size.font(self.fonts),
                TextColor(col),
                TextLayout::new(justify, LineBreak::WordBoundary),
                part,
            ))
            .id();
        self.commands.entity(parent).add_child(id);
        id
    }

    fn clock(&mut self, parent: Entity, label: ClockLabel, size: TextSize, c: Rgba) {
        // The clock plugin fills the text in on the same frame.
        let id = self.text(parent, "", size, c, Justify::Center);
        self.commands.entity(id).insert(label);
    }

    fn centered_column(&mut self, parent: Entity) -> Entity {
        self.node(
            parent,
            Node {
                width: Val::Percent(100.0),
                height: Val::Percent(100.0),
                flex_direction: FlexDirection::Column,
                justify_content: JustifyContent::Center,
                align_items: AlignItems::Center,
                row_gap: Val::VMin(2.0),
                padding: UiRect::all(Val::VMin(4.0)),
                ..default()
            },
        )
    }
}

impl FitImage {
    fn node(&self, window: Vec2) -> Node {
        let box_h = if self.band { window.y * (1.0 - TICKER_BAND_VH / 100.0) } else { window.y };
        let (x, y, w, h) = media::place(self.width, self.height, window.x, box_h, self.fit);
        Node {
            position_type: PositionType::Absolute,
            left: Val::Px(x),
            top: Val::Px(y),
            width: Val::Px(w),
            height: Val::Px(h),
            ..default()
        }
    }
}

/// Multiplies every part's own alpha by its slide's alpha.
/// What a slide's fade touches on each of its parts.
type PaintTargets = (&'static Part, Option<&'static mut BackgroundColor>, Option<&'static mut TextColor>, Option<&'static mut ImageNode>);

fn apply_alpha(
    slides: Query<&Slide, Changed<Slide>>,
    mut parts: Query<PaintTargets>,
) {
    if slides.is_empty() {
        return;
    }
    for (part, bg, text, image) in &mut parts {
        let Ok(slide) = slides.get(part.root) else { continue };
        let a = part.base_alpha * slide.alpha;
        match (part.paint, bg, text, image) {
            (Paint::Background, Some(mut bg), _, _) => bg.0.set_alpha(a),
            (Paint::Text, _, Some(mut t), _) => t.0.set_alpha(a),
            (Paint::Image, _, _, Some(mut i)) => i.color.set_alpha(a),
            _ => {}
        }
    }
}

/// Re-places pictures when the window changes size (rotation, hot-plug).
fn place_images(
    window: Single<&Window, Changed<Window>>,
    mut images: Query<(&FitImage, &mut Node)>,
) {
    let size = window.size();
    for (fit, mut node) in &mut images {
        let placed = fit.node(size);
        if node.left != placed.left || node.width != placed.width || node.top != placed.top {
            *node = placed;
        }
    }
}
