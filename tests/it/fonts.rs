//! The bundled fonts: the Simplified-Chinese face, covering the rare
//! characters of real place names.

use ttf_parser::{Face, name_id};

fn face(name: &str) -> Vec<u8> {
    // Run-time `CARGO_MANIFEST_DIR`: see `common::root`.
    let root = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let path = std::path::Path::new(&root).join("assets/fonts").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn family(face: &Face) -> String {
    face.names()
        .into_iter()
        .filter(|n| n.name_id == name_id::FAMILY)
        .find_map(|n| n.to_string())
        .unwrap_or_default()
}

/// Place-name characters outside everyday use: county and district names
/// (亳州, 黟县, 埇桥, 浉河, 硚口, 猇亭, 浈江, 氹仔…) and characters of the 2013
/// 通用规范汉字表 that live in CJK Extensions A–E (𬇙, 𫚉, 𬌗…).
const RARE: &str = "亳黟婺邛崃儋郴涪犍鄱濉砀歙埇浉硚栟氹鄞盱眙泸荥猇鄯淖濮漯莒郯鄄茌蠡涞蓟洺汨耒郏浚睢柘鄢泌浈鿍㙟𬇙𫚉𬌗𬍛𫖯𬣙𬱖𫘜𬶐𫍯𬬻𬳶𬸘";

#[test]
fn both_weights_are_the_simplified_chinese_face_and_cover_rare_place_names() {
    for name in ["NotoSansCJKsc-Regular.otf", "NotoSansCJKsc-Bold.otf"] {
        let data = face(name);
        let f = Face::parse(&data, 0).expect("parse font");
        assert!(family(&f).starts_with("Noto Sans CJK SC"), "{name}: family is {:?}", family(&f));
        let missing: Vec<char> = RARE.chars().filter(|&c| f.glyph_index(c).is_none()).collect();
        assert!(missing.is_empty(), "{name} lacks {missing:?}");
        // Full-width punctuation is present (and drawn in the SC forms of this face).
        for c in "，。、；：？！“”（）《》".chars() {
            assert!(f.glyph_index(c).is_some(), "{name} lacks {c}");
        }
    }
}
