#!/usr/bin/env python3
"""Writes the seed corpora of the manifest, playlist, config and
alert_sequence fuzz targets from the repository's own test inputs.

    python3 fuzz/seeds/make-seeds.py      (needs the `cryptography` package)

The seeds are committed; run this again only when the fixtures change.
Manifests are signed with the fuzz target's key (32 bytes of 7), so they pass
the signature as they are; the target re-signs any JSON anyway.
"""
import base64, hashlib, json, os, re, shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "fuzz" / "seeds"
SEP = b"\n@@next@@\n"  # fuzz_targets/alert_sequence.rs: SEP


def fresh(name):
    d = SEEDS / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


# --- manifest: what `feed build` writes for playlists/, and its refusals ---
KEY = Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
PUB = KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
KEYID = hashlib.sha256(PUB).hexdigest()[:16]


def envelope(signed: dict, keyid=KEYID, key=KEY):
    text = json.dumps(signed, indent=2, ensure_ascii=False)
    sig = base64.b64encode(key.sign(text.encode())).decode()
    # As `manifest::sign` writes it: the signed text verbatim, not re-indented.
    return ('{\n  "signed": ' + text + ',\n  "signatures": [\n    {\n      "keyid": "'
            + keyid + '",\n      "sig": "' + sig + '"\n    }\n  ]\n}\n').encode()


def sha(b):
    return hashlib.sha256(b).hexdigest()


MIME = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".webm": "video/webm", ".ogg": "audio/ogg"}
playlists, media = [], {}
for p in sorted((ROOT / "playlists").rglob("*.toml")):
    text = p.read_bytes()
    refs = {}
    for rel in re.findall(rb'(?:path|background_image) = "([^"]+)"|tracks = \["([^"]+)"', text):
        rel = (rel[0] or rel[1]).decode()
        f = (p.parent / rel).resolve()
        # The digest of a file's name, not its content: the assets are big and
        # only their listing matters here.
        d = sha(f.name.encode())
        media[d] = {"sha256": d, "size": f.stat().st_size, "type": MIME[f.suffix]}
        refs[rel] = d
    playlists.append({"name": p.name, "sha256": sha(text), "size": len(text), "media": refs})
base = {"format": "estation-feed/1", "version": 6, "created": "2026-11-23T08:00:00+08:00",
        "expires": "2026-12-07T08:00:00+08:00", "playlists": playlists, "media": list(media.values()), "alerts": [
            {"sha256": sha(b"cap"), "size": 1796, "type": "application/cap+xml"}]}
d = fresh("manifest")
(d / "feed.json").write_bytes(envelope(base))
(d / "current.json").write_bytes(envelope({**base, "version": 5, "playlists": playlists[:1], "media": [], "alerts": []}))
(d / "rollback.json").write_bytes(envelope({**base, "version": 4}))
(d / "expired.json").write_bytes(envelope({**base, "version": 7, "expires": "2026-11-23T20:00:00+08:00"}))
(d / "bad-name.json").write_bytes(envelope({**base, "playlists": [{**playlists[0], "name": "../x.toml"}]}))
(d / "unknown-field.json").write_bytes(envelope({**base, "extra": 1}))
other = Ed25519PrivateKey.from_private_bytes(bytes([8] * 32))
(d / "other-key.json").write_bytes(envelope(base, keyid="0123456789abcdef", key=other))
(d / "unsigned.json").write_bytes(json.dumps({"signed": base, "signatures": []}).encode())

# --- playlist: the shipped playlists and the test fixtures ---
d = fresh("playlist")
for p in sorted((ROOT / "playlists").rglob("*.toml")) + sorted((ROOT / "tests" / "data").glob("*.toml")):
    shutil.copy(p, d / p.name)
(d / "lookup.toml").write_text('id = "l"\n[music]\ntracks = ["m.mp3", "x.mp3"]\n[[items]]\nkind = "image"\npath = "a.png"\nnarration = "n.ogg"\n'
                               '[[items]]\nkind = "video"\npath = "v.mp4"\nloop = true\n[[items]]\nkind = "image"\npath = "gone.png"\n'
                               '[[items]]\nkind = "text"\ntitle = "t"\nbackground_image = "b.jpg"\n[[items]]\nkind = "qr"\ndata = "https://example.org"\n')

# --- config: the example, the tests' configs, and encodings ---
d = fresh("config")
shutil.copy(ROOT / "packaging" / "config.example.toml", d / "example.toml")
src = (ROOT / "src" / "config.rs").read_text()
full = src[src.index('let text = format!(r#"') + len('let text = format!(r#"'):]
full = full[: full.index('"#);')]
(d / "full.toml").write_text(full.replace("{key}", "ed25519:" + base64.b64encode(PUB).decode()))
bad = re.search(r'fn bad_values_are_reported_and_defaults_kept\(\) \{\n\s*let text = "(.*?)";', src).group(1)
(d / "bad-values.toml").write_bytes(bad.encode().decode("unicode_escape").encode())
name = '[screen]\nname = "一号屏"\n'
(d / "bom.toml").write_bytes(b"\xef\xbb\xbf" + name.encode())
(d / "gbk.toml").write_bytes(name.encode("gbk"))
(d / "utf16.toml").write_bytes(name.encode("utf-16"))
(d / "sources.toml").write_text('[alerts]\naddresses = ["cx-001"]\n[[alerts.source]]\nurl = "https://a.example/cap.atom"\n'
                                'authority_for = ["Changxing_Meteorological_Observatory"]\n')

# --- alert_sequence: fixture chains, each message led by its control byte ---
# control & 3: 0 feed, 1 upstream A (authority for Changxing), 2 upstream B;
# control >> 2: arrival, in 20-minute steps from 07:00+08:00.
cap = ROOT / "tests" / "data" / "cap"
def seq(*msgs):
    return SEP.join(bytes([ctl]) + (cap / f).read_bytes() for f, ctl in msgs)
FEED, A, B = 0, 1, 2
def at(step, src):
    return step << 2 | src
red, upd, cancel, clear = "zh-rainstorm-red-330522.xml", "zh-rainstorm-red-update.xml", "zh-rainstorm-red-cancel.xml", "zh-allclear-update.xml"
d = fresh("alert_sequence")
chains = {
    "in-order-feed": [(red, at(3, FEED)), (upd, at(12, FEED)), (cancel, at(33, FEED))],
    "cancel-first": [(cancel, at(33, FEED)), (red, at(34, FEED)), (upd, at(35, FEED))],
    "upstream-cancels-feed": [(red, at(3, FEED)), (cancel, at(33, B)), (cancel, at(34, A))],
    "granted-upstream-updates": [(red, at(3, FEED)), (upd, at(12, A)), (red, at(13, B))],
    "allclear": [(red, at(3, FEED)), (clear, at(6, B)), (clear, at(7, A))],
    "mixed": [("zh-heat-yellow-6digit.xml", at(2, FEED)), ("zh-typhoon-orange-circle.xml", at(4, A)), ("zh-exercise.xml", at(5, B)),
              ("zh-test.xml", at(6, FEED)), ("zh-system.xml", at(7, FEED)), ("no-expires.xml", at(8, B)), ("cap11-zulu.xml", at(9, A))],
    "replay": [(red, at(3, A)), (red, at(3, A)), (upd, at(12, B)), (red, at(40, FEED))],
    "foreign": [("multi-info-en-zh.xml", at(1, FEED)), ("prefixed-ns.xml", at(2, A)), ("belize-small-craft-signed-prefixed.xml", at(3, B))],
}
for name, msgs in chains.items():
    (d / name).write_bytes(seq(*msgs))

for name in ("manifest", "playlist", "config", "alert_sequence"):
    size = sum(f.stat().st_size for f in (SEEDS / name).iterdir())
    print(f"fuzz/seeds/{name}: {len(list((SEEDS / name).iterdir()))} files, {size} bytes")
