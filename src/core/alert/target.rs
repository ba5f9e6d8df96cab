//! Does an alert concern this screen? By administrative code, polygon or circle.
//!
//! Chinese codes come in two lengths: the 6-digit 行政区划代码 (GB/T 2260,
//! province 2 + city 2 + county 2) and the 12-digit 统计用区划代码 (county 6 +
//! township 3 + village 3), which CMA's `CPEAS Geographic Code` pads with
//! zeros (`130602000000` = the whole county). A code is reduced to its
//! meaningful prefix by dropping trailing all-zero groups; an alert's code
//! concerns the screen when that prefix is a prefix of the screen's own code,
//! whichever length each is written in. Codes are never compared as numbers.

use serde::Serialize;

use super::cap::{Area, Circle, Info, Point, Polygon};

/// geocode `valueName`s that carry Chinese administrative codes.
const CN_SCHEMES: &[&str] = &["cpeas geographic code", "行政区划代码", "区划代码", "gb/t 2260", "gb2260", "gb/t2260", "adcode", "admin code"];

/// Where the screen is, from the config.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Place {
    /// 6 or 12 digits.
    pub region: Option<String>,
    pub point: Option<Point>,
    /// Show every alert from the configured sources, wherever it is for.
    pub everywhere: bool,
}

impl Place {
    /// A screen that knows neither its code nor its coordinates cannot tell
    /// which alerts are for it; it shows them all rather than none.
    pub fn shows_everything(&self) -> bool {
        self.everywhere || (self.region.is_none() && self.point.is_none())
    }

    /// Whether an info block is for this screen: one of its areas contains
    /// the screen. When the screen can judge none of them (a block without
    /// areas, or areas given only in ways this screen cannot check — shapes
    /// for a screen that knows only its code, other code schemes), the block
    /// is shown: it came from a source the operator chose, and a warning
    /// wrongly shown costs less than one wrongly hidden.
    pub fn is_targeted_by(&self, info: &Info) -> bool {
        if self.shows_everything() {
            return true;
        }
        let judged: Vec<bool> = info.areas.iter().filter_map(|a| self.judge(a)).collect();
        judged.is_empty() || judged.contains(&true)
    }

    /// Whether the screen is in `area`, counting an area it cannot judge as in.
    pub fn in_area(&self, area: &Area) -> bool {
        self.shows_everything() || self.judge(area) != Some(false)
    }

    /// Some(in or out) when the screen can tell; None when the area gives
    /// nothing this screen can check.
    pub fn judge(&self, area: &Area) -> Option<bool> {
        let codes: Vec<&str> = area.geocodes.iter().filter(|g| CN_SCHEMES.iter().any(|s| g.name.trim().eq_ignore_ascii_case(s))).map(|g| g.value.as_str()).collect();
        let by_code = match self.region.as_deref() {
            Some(mine) if !codes.is_empty() => Some(codes.iter().any(|c| code_covers(c, mine))),
            _ => None,
        };
        let by_shape = match self.point {
            Some(p) if !area.polygons.is_empty() || !area.circles.is_empty() => {
                Some(area.polygons.iter().any(|poly| contains(poly, p)) || area.circles.iter().any(|c| within(c, p)))
            }
            _ => None,
        };
        match (by_code, by_shape) {
            (None, None) => None,
            (a, b) => Some(a == Some(true) || b == Some(true)),
        }
    }
}

/// The meaningful prefix of a 6- or 12-digit code, or None if it is not one.
pub fn code_prefix(code: &str) -> Option<&str> {
    let code = code.trim();
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let groups: &[usize] = match code.len() {
        6 => &[2, 2, 2],
        9 => &[2, 2, 2, 3],
        12 => &[2, 2, 2, 3, 3],
        _ => return None,
    };
    let mut end = code.len();
    for g in groups.iter().rev() {
        if code[end - g..end].bytes().all(|b| b == b'0') {
            end -= g;
        } else {
            break;
        }
    }
    (end > 0).then(|| &code[..end])
}

/// Whether `alert_code` names the screen's area `mine` or one of its parents.
pub fn code_covers(alert_code: &str, mine: &str) -> bool {
    match (code_prefix(alert_code), code_prefix(mine)) {
        (Some(a), Some(m)) => m.starts_with(a),
        _ => false,
    }
}

/// Point in polygon by ray casting on the lat/lon plane — exact enough for
/// warning areas, which are far smaller than a hemisphere.
pub fn contains(poly: &Polygon, p: Point) -> bool {
    let pts = &poly.0;
    let mut inside = false;
    for (a, b) in pts.iter().zip(pts.iter().skip(1)) {
        if (a.lat > p.lat) != (b.lat > p.lat) {
            let lon = a.lon + (p.lat - a.lat) / (b.lat - a.lat) * (b.lon - a.lon);
            if p.lon < lon {
                inside = !inside;
            }
        }
    }
    inside
}

/// Great-circle distance check (haversine, mean Earth radius).
pub fn within(c: &Circle, p: Point) -> bool {
    const R_KM: f64 = 6371.0088;
    let (la1, la2) = (c.center.lat.to_radians(), p.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (p.lon - c.center.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    let d = 2.0 * R_KM * h.sqrt().min(1.0).asin();
    d <= c.radius_km + 1e-9
}

#[cfg(test)]
mod tests {
    use super::super::cap::{NameValue, parse_circle, parse_polygon};
    use super::*;

    #[test]
    fn code_prefixes_drop_trailing_zero_groups() {
        assert_eq!(code_prefix("330000"), Some("33"));
        assert_eq!(code_prefix("330500"), Some("3305"));
        assert_eq!(code_prefix("330522"), Some("330522"));
        assert_eq!(code_prefix("130602000000"), Some("130602"));
        assert_eq!(code_prefix("330522101000"), Some("330522101"));
        assert_eq!(code_prefix("330522101201"), Some("330522101201"));
        assert_eq!(code_prefix("110101"), Some("110101"));
        assert_eq!(code_prefix("000000"), None);
        assert_eq!(code_prefix("33052"), None);
        assert_eq!(code_prefix("33O522"), None);
    }

    #[test]
    fn codes_match_parents_across_both_lengths() {
        // Screen configured with a 6-digit county code.
        assert!(code_covers("330522", "330522"));
        assert!(code_covers("330500", "330522"), "city covers county");
        assert!(code_covers("330000", "330522"), "province covers county");
        assert!(code_covers("330522000000", "330522"), "CMA's padded 12-digit form");
        assert!(code_covers("330500000000", "330522"));
        assert!(!code_covers("330522101000", "330522"), "a township warning is not for the whole county");
        assert!(!code_covers("330523", "330522"), "a neighbouring county");
        assert!(!code_covers("330502", "330522"));
        // Screen configured with a 12-digit village code.
        let village = "330522101201";
        for parent in ["330522", "330500", "330000", "330522000000", "330522101000", village] {
            assert!(code_covers(parent, village), "{parent}");
        }
        assert!(!code_covers("330522102000", village));
        assert!(!code_covers("3305221", village), "not a code");
    }

    fn area(codes: &[(&str, &str)], polygon: Option<&str>, circle: Option<&str>) -> Area {
        Area {
            desc: "x".into(),
            polygons: polygon.map(|p| parse_polygon(p).unwrap()).into_iter().collect(),
            circles: circle.map(|c| parse_circle(c).unwrap()).into_iter().collect(),
            geocodes: codes.iter().map(|(n, v)| NameValue { name: n.to_string(), value: v.to_string() }).collect(),
        }
    }

    #[test]
    fn unknown_schemes_are_ignored_and_shapes_use_the_point() {
        let screen = Place { region: Some("330522".into()), point: Some(Point { lat: 31.02, lon: 119.91 }), everywhere: false };
        assert!(screen.in_area(&area(&[("CPEAS Geographic Code", "330522000000")], None, None)));
        assert_eq!(screen.judge(&area(&[("SAME", "330522")], None, None)), None, "other schemes are not Chinese codes");
        assert_eq!(screen.judge(&area(&[("SAME", "330522"), ("CPEAS Geographic Code", "110101")], None, None)), Some(false));
        let around = "31.0,119.8 31.1,119.9 31.0,120.0 30.9,119.9 31.0,119.8";
        assert!(screen.in_area(&area(&[], Some(around), None)));
        assert!(!screen.in_area(&area(&[], Some("40,10 41,10 41,11 40,10"), None)));
        assert!(screen.in_area(&area(&[], None, Some("31.0,119.9 5"))), "about 2 km away");
        assert!(!screen.in_area(&area(&[], None, Some("31.0,119.9 1"))));
        let nowhere = Place::default();
        assert!(nowhere.in_area(&area(&[("SAME", "006109")], None, None)), "no location: show everything");
        let all = Place { everywhere: true, ..screen.clone() };
        assert!(all.in_area(&area(&[], Some("40,10 41,10 41,11 40,10"), None)));
    }

    #[test]
    fn what_a_screen_cannot_judge_is_shown() {
        let info = |areas: Vec<Area>| {
            let mut i = crate::core::alert::cap::parse(std::path::Path::new("t"), format!(
                "<alert xmlns=\"{}\"><identifier>a</identifier><sender>s</sender><sent>2026-07-01T08:00:00+08:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>e</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty></info></alert>",
                crate::core::alert::cap::NS_12
            ).as_bytes()).unwrap().alert.infos.remove(0);
            i.areas = areas;
            i
        };
        let code_only = Place { region: Some("330522".into()), ..Place::default() };
        let point_only = Place { point: Some(Point { lat: 31.02, lon: 119.91 }), ..Place::default() };
        let macau = || area(&[], Some("22.1,113.5 22.2,113.5 22.2,113.6 22.1,113.5"), None);
        let beijing = || area(&[("CPEAS Geographic Code", "110101000000")], None, None);
        assert!(code_only.is_targeted_by(&info(vec![macau()])), "shapes only: a code-only screen cannot judge");
        assert!(point_only.is_targeted_by(&info(vec![beijing()])), "codes only: a point-only screen cannot judge");
        assert!(!code_only.is_targeted_by(&info(vec![beijing(), macau()])), "judged out by the code");
        assert!(!point_only.is_targeted_by(&info(vec![macau()])));
        assert!(code_only.is_targeted_by(&info(vec![])), "no area: the sender's whole area");
    }

    #[test]
    fn polygon_edges_and_concave_shapes() {
        // A U shape: the notch is outside.
        let u = parse_polygon("0,0 0,3 3,3 3,2 1,2 1,1 3,1 3,0 0,0").unwrap();
        assert!(contains(&u, Point { lat: 0.5, lon: 1.5 }));
        assert!(!contains(&u, Point { lat: 2.0, lon: 1.5 }), "inside the notch");
        assert!(contains(&u, Point { lat: 2.5, lon: 2.5 }));
    }
}
