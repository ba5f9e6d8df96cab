//! An item's narration follows the item on screen: a new item stops the
//! last one's narration and starts its own, unless the programme is silent
//! (quiet hours, a warning), when it is skipped rather than saved for later.
//!
//! Pure: the sound plugin passes the item counter and the mix's level, and
//! opens or stops the sound as told.

use std::path::Path;

/// Which item's narration was last dealt with.
#[derive(Debug, Default)]
pub struct Narration {
    item: u64,
}

/// What to do with the narration sounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue<'a> {
    /// The same item: the narration goes on (or stays silent).
    Same,
    /// A new item without narration to hear: stop the last one's.
    Stop,
    /// A new item: stop the last one's and start this.
    Start(&'a Path),
}

impl Narration {
    /// `item` changes at every item shown (the same narration twice starts
    /// twice); `level` is the narration's level from the mix.
    pub fn follow<'a>(&mut self, item: u64, narration: Option<&'a Path>, level: f32) -> Cue<'a> {
        if item == self.item {
            return Cue::Same;
        }
        self.item = item;
        match narration {
            Some(path) if level > 0.0 => Cue::Start(path),
            _ => Cue::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_starts_its_own_narration_once_and_a_silent_programme_skips_it() {
        let talk = Path::new("talk.ogg");
        let mut n = Narration::default();
        assert_eq!(n.follow(0, None, 0.8), Cue::Same, "nothing shown yet");
        assert_eq!(n.follow(1, Some(talk), 0.8), Cue::Start(talk));
        assert_eq!(n.follow(1, Some(talk), 0.8), Cue::Same, "once an item");
        assert_eq!(n.follow(2, Some(talk), 0.8), Cue::Start(talk), "the same narration on the next item starts again");
        assert_eq!(n.follow(3, None, 0.8), Cue::Stop);
        assert_eq!(n.follow(4, Some(talk), 0.0), Cue::Stop, "quiet hours: skipped, not saved");
        assert_eq!(n.follow(4, Some(talk), 0.8), Cue::Same, "not started when the quiet ends mid-item");
    }
}
