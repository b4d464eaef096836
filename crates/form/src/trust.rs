//! Mutual trust between a joiner and the initiator from a shared passphrase, with no trust on
//! first use: SPAKE2 (Ed25519 group, identities A = the joiner's name, B = the initiator's)
//! followed by key confirmation both ways. Each confirmation is an HMAC-SHA256, under a key
//! derived from the PAKE key with a label of its own direction, over the transcript: the
//! window id, both names, both certificate fingerprints *as this side's TLS connection showed
//! them*, and both PAKE messages. A relay terminating TLS on each leg shows each side a
//! different certificate, so the transcripts differ and confirmation fails; a wrong
//! passphrase gives different keys and fails the same way. A captured exchange is worth one
//! online guess: SPAKE2 lets nobody test a second passphrase against it offline.
//!
//! The state machine knows no transport; the daemon carries the messages (serde structs) in
//! its HTTPS requests to `/internal/form/<id>/…`:
//!
//! ```text
//! joiner                                              initiator
//! Joiner::start(passphrase, view) ──Hello{id, names, pake A}──> respond(passphrase, own, seen fp, hello)
//!                                 <──Challenge{pake B, MAC i→j}── (AwaitingConfirm)
//! Joiner::finish(challenge) checks MAC i→j
//!   -> Trusted (pin the initiator) ──Confirm{MAC j→i}──────────> AwaitingConfirm::finish checks MAC j→i
//!                                                                  -> Trusted (pin the joiner)
//! ```
//!
//! The passphrase lives in a [`Passphrase`], wiped when it is dropped. The `spake2` crate
//! keeps copies of its own while an exchange runs (its `Password` and state are not wiped);
//! they live only as long as one exchange.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

type HmacSha256 = Hmac<Sha256>;

/// The EFF short word list 1, 1296 words for four dice, by the Electronic Frontier
/// Foundation (2016), bundled unchanged: each line is the dice roll, a tab and the word.
/// Source: <https://www.eff.org/files/2016/09/08/eff_short_wordlist_1.txt>, described at
/// <https://www.eff.org/deeplinks/2016/07/new-wordlists-random-passphrases>; licensed under
/// Creative Commons Attribution (<https://www.eff.org/copyright>).
const EFF_SHORT_WORDLIST: &str = include_str!("eff_short_wordlist_1.txt");

/// How many words a generated passphrase has: 4 × log2(1296) ≈ 41 bits.
pub const GENERATED_WORDS: usize = 4;

/// The shortest passphrase a preseed may give, in characters.
pub const MIN_PRESEED_CHARS: usize = 12;

/// Labels keep the keys of this protocol and of each direction apart.
const PROTOCOL: &[u8] = b"rxd form trust v1";
const JOINER_TO_INITIATOR: &[u8] = b"rxd form trust v1: joiner to initiator";
const INITIATOR_TO_JOINER: &[u8] = b"rxd form trust v1: initiator to joiner";

/// The words a generated passphrase is drawn from.
pub fn word_list() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        EFF_SHORT_WORDLIST
            .lines()
            .filter_map(|line| line.split_once('\t').map(|(_, word)| word))
            .collect()
    })
}

/// Why an exchange, or a passphrase, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// A preseed passphrase is too short.
    #[error("The passphrase must be at least {min} characters long, it has {chars}")]
    TooShort {
        /// The least accepted.
        min: usize,
        /// What it has.
        chars: usize,
    },
    /// Nothing was typed.
    #[error("No passphrase provided")]
    Empty,
    /// A fingerprint that is not a SHA-256 in hexadecimal.
    #[error("Invalid certificate fingerprint {0:?}: expected 64 hexadecimal characters")]
    BadFingerprint(String),
    /// A server name breaking the name rule (the rule's sentence).
    #[error("{0}")]
    BadName(String),
    /// A window id that is not 16 hexadecimal characters.
    #[error("Invalid formation window id {0:?}: expected 16 hexadecimal characters")]
    BadWindowId(String),
    /// The joiner addressed another window.
    #[error("The exchange is for formation window {got:?}, this server's window is {expected:?}")]
    WrongWindow {
        /// This server's window.
        expected: String,
        /// The one named.
        got: String,
    },
    /// The joiner expects another initiator.
    #[error("The exchange expects initiator {got:?}, this server is {expected:?}")]
    WrongInitiator {
        /// This server's name.
        expected: String,
        /// The name the joiner expects.
        got: String,
    },
    /// A message field that cannot be read.
    #[error("Invalid {field} in the trust exchange: {reason}")]
    Malformed {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Key confirmation failed: another passphrase, a tampered message or a third party
    /// between the two servers. Nothing is trusted.
    #[error("Cannot confirm the other server: the passphrases differ, or the exchange was changed or relayed by a third party")]
    Confirmation,
}

/// A formation passphrase, wiped from memory when dropped. Whitespace is normalised (trimmed,
/// runs of it made one space), so a typed passphrase matches however it was spaced.
pub struct Passphrase(String);

impl Passphrase {
    /// A new passphrase of [`GENERATED_WORDS`] words from the EFF short word list, drawn with
    /// the operating system's random generator.
    pub fn generate() -> Passphrase {
        use rand::Rng;
        let words = word_list();
        let mut rng = rand::rng();
        let mut text = String::with_capacity(GENERATED_WORDS * 6);
        for i in 0..GENERATED_WORDS {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(words[rng.random_range(0..words.len())]);
        }
        Passphrase(text)
    }

    /// The passphrase of a preseed's `passphrase_file` (its text, with the trailing newline
    /// or not): at least [`MIN_PRESEED_CHARS`] characters.
    pub fn from_preseed(text: &str) -> Result<Passphrase, TrustError> {
        let p = Passphrase::entered(text)?;
        let chars = p.0.chars().count();
        if chars < MIN_PRESEED_CHARS {
            return Err(TrustError::TooShort {
                min: MIN_PRESEED_CHARS,
                chars,
            });
        }
        Ok(p)
    }

    /// A passphrase a joiner typed (the initiator's, so any length).
    pub fn entered(text: &str) -> Result<Passphrase, TrustError> {
        // Sized once so no reallocation leaves an unwiped copy behind.
        let mut out = String::with_capacity(text.len());
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
        if out.is_empty() {
            return Err(TrustError::Empty);
        }
        Ok(Passphrase(out))
    }

    /// The passphrase, to show the operator once.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    fn password(&self) -> Password {
        Password::new(self.0.as_bytes())
    }
}

impl Zeroize for Passphrase {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for Passphrase {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for Passphrase {}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(hidden)")
    }
}

/// The first message, joiner to initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The window the joiner addresses.
    pub window_id: String,
    /// The joiner's name (SPAKE2 identity A).
    pub joiner_name: String,
    /// The initiator's name as the joiner expects it (SPAKE2 identity B).
    pub initiator_name: String,
    /// SPAKE2 message A, hexadecimal.
    pub pake: String,
}

/// The second message, initiator to joiner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// SPAKE2 message B, hexadecimal.
    pub pake: String,
    /// The initiator's confirmation, hexadecimal.
    pub confirm: String,
}

/// The third message, joiner to initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirm {
    /// The joiner's confirmation, hexadecimal.
    pub confirm: String,
}

/// What one side knows of an exchange: the window, both names and both certificate
/// fingerprints as its own TLS connection showed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    window_id: String,
    joiner_name: String,
    initiator_name: String,
    joiner_fingerprint: String,
    initiator_fingerprint: String,
}

impl View {
    /// Checks and normalises (fingerprints in lower case) what a side knows.
    pub fn new(
        window_id: &str,
        joiner_name: &str,
        initiator_name: &str,
        joiner_fingerprint: &str,
        initiator_fingerprint: &str,
    ) -> Result<View, TrustError> {
        Ok(View {
            window_id: window_id_checked(window_id)?,
            joiner_name: name_checked(joiner_name)?,
            initiator_name: name_checked(initiator_name)?,
            joiner_fingerprint: fingerprint_checked(joiner_fingerprint)?,
            initiator_fingerprint: fingerprint_checked(initiator_fingerprint)?,
        })
    }

    /// The transcript both confirmations cover, each field length-prefixed so no two
    /// different views give the same bytes.
    fn transcript(&self, pake_a: &[u8], pake_b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for field in [
            PROTOCOL,
            self.window_id.as_bytes(),
            self.joiner_name.as_bytes(),
            self.initiator_name.as_bytes(),
            self.joiner_fingerprint.as_bytes(),
            self.initiator_fingerprint.as_bytes(),
            pake_a,
            pake_b,
        ] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        out
    }
}

/// The other server, authenticated: pin its certificate fingerprint from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    /// Its name.
    pub peer_name: String,
    /// Its certificate's fingerprint (lower-case hexadecimal SHA-256).
    pub peer_fingerprint: String,
}

/// The joiner, between its [`Hello`] and the initiator's [`Challenge`].
pub struct Joiner {
    view: View,
    spake: Spake2<Ed25519Group>,
    pake_a: Vec<u8>,
}

impl Joiner {
    /// Starts an exchange: the joiner's state and its first message.
    pub fn start(passphrase: &Passphrase, view: View) -> (Joiner, Hello) {
        let (spake, pake_a) = Spake2::<Ed25519Group>::start_a(
            &passphrase.password(),
            &Identity::new(view.joiner_name.as_bytes()),
            &Identity::new(view.initiator_name.as_bytes()),
        );
        let hello = Hello {
            window_id: view.window_id.clone(),
            joiner_name: view.joiner_name.clone(),
            initiator_name: view.initiator_name.clone(),
            pake: hex::encode(&pake_a),
        };
        (
            Joiner {
                view,
                spake,
                pake_a,
            },
            hello,
        )
    }

    /// Checks the initiator's confirmation; on success the initiator is trusted and the
    /// returned [`Confirm`] goes back to it.
    pub fn finish(self, challenge: &Challenge) -> Result<(Confirm, Trusted), TrustError> {
        let trusted = Trusted {
            peer_name: self.view.initiator_name.clone(),
            peer_fingerprint: self.view.initiator_fingerprint.clone(),
        };
        let keys = self.keys(challenge)?;
        let theirs = unhex("confirm", &challenge.confirm)?;
        verify(&keys.initiator_to_joiner, &keys.transcript, &theirs)?;
        let confirm = Confirm {
            confirm: hex::encode(mac(&keys.joiner_to_initiator, &keys.transcript)),
        };
        Ok((confirm, trusted))
    }

    fn keys(self, challenge: &Challenge) -> Result<Keys, TrustError> {
        let pake_b = unhex("pake", &challenge.pake)?;
        let key = self
            .spake
            .finish(&pake_b)
            .map_err(|e| TrustError::Malformed {
                field: "pake",
                reason: e.to_string(),
            })?;
        Ok(Keys::derive(
            Zeroizing::new(key),
            self.view.transcript(&self.pake_a, &pake_b),
        ))
    }
}

/// What the initiator knows of itself before any joiner speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Own {
    window_id: String,
    name: String,
    fingerprint: String,
}

impl Own {
    /// The initiator's window, name and certificate fingerprint.
    pub fn new(window_id: &str, name: &str, fingerprint: &str) -> Result<Own, TrustError> {
        Ok(Own {
            window_id: window_id_checked(window_id)?,
            name: name_checked(name)?,
            fingerprint: fingerprint_checked(fingerprint)?,
        })
    }
}

/// The initiator, between its [`Challenge`] and the joiner's [`Confirm`].
pub struct AwaitingConfirm {
    view: View,
    keys: Keys,
}

/// Answers a joiner's [`Hello`]; `joiner_fingerprint` is the client certificate its TLS
/// connection showed.
pub fn respond(
    passphrase: &Passphrase,
    own: &Own,
    joiner_fingerprint: &str,
    hello: &Hello,
) -> Result<(AwaitingConfirm, Challenge), TrustError> {
    if hello.window_id != own.window_id {
        return Err(TrustError::WrongWindow {
            expected: own.window_id.clone(),
            got: hello.window_id.clone(),
        });
    }
    if hello.initiator_name != own.name {
        return Err(TrustError::WrongInitiator {
            expected: own.name.clone(),
            got: hello.initiator_name.clone(),
        });
    }
    let view = View::new(
        &own.window_id,
        &hello.joiner_name,
        &own.name,
        joiner_fingerprint,
        &own.fingerprint,
    )?;
    let pake_a = unhex("pake", &hello.pake)?;
    let (spake, pake_b) = Spake2::<Ed25519Group>::start_b(
        &passphrase.password(),
        &Identity::new(view.joiner_name.as_bytes()),
        &Identity::new(view.initiator_name.as_bytes()),
    );
    let key = spake.finish(&pake_a).map_err(|e| TrustError::Malformed {
        field: "pake",
        reason: e.to_string(),
    })?;
    let keys = Keys::derive(Zeroizing::new(key), view.transcript(&pake_a, &pake_b));
    let challenge = Challenge {
        pake: hex::encode(&pake_b),
        confirm: hex::encode(mac(&keys.initiator_to_joiner, &keys.transcript)),
    };
    Ok((AwaitingConfirm { view, keys }, challenge))
}

impl AwaitingConfirm {
    /// Checks the joiner's confirmation; on success the joiner is trusted.
    pub fn finish(self, confirm: &Confirm) -> Result<Trusted, TrustError> {
        let theirs = unhex("confirm", &confirm.confirm)?;
        verify(
            &self.keys.joiner_to_initiator,
            &self.keys.transcript,
            &theirs,
        )?;
        Ok(Trusted {
            peer_name: self.view.joiner_name.clone(),
            peer_fingerprint: self.view.joiner_fingerprint.clone(),
        })
    }

    /// The joiner's name, as its [`Hello`] gave it.
    pub fn joiner_name(&self) -> &str {
        &self.view.joiner_name
    }
}

/// The confirmation keys of one exchange, wiped when dropped.
struct Keys {
    joiner_to_initiator: Zeroizing<Vec<u8>>,
    initiator_to_joiner: Zeroizing<Vec<u8>>,
    transcript: Vec<u8>,
}

impl Keys {
    fn derive(pake_key: Zeroizing<Vec<u8>>, transcript: Vec<u8>) -> Keys {
        Keys {
            joiner_to_initiator: Zeroizing::new(mac(&pake_key, JOINER_TO_INITIATOR)),
            initiator_to_joiner: Zeroizing::new(mac(&pake_key, INITIATOR_TO_JOINER)),
            transcript,
        }
    }
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Compares in constant time.
fn verify(key: &[u8], data: &[u8], tag: &[u8]) -> Result<(), TrustError> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.verify_slice(tag).map_err(|_| TrustError::Confirmation)
}

fn unhex(field: &'static str, text: &str) -> Result<Vec<u8>, TrustError> {
    hex::decode(text).map_err(|e| TrustError::Malformed {
        field,
        reason: e.to_string(),
    })
}

fn name_checked(name: &str) -> Result<String, TrustError> {
    rxd_api::names::check("cluster member", name).map_err(TrustError::BadName)?;
    Ok(name.to_string())
}

fn fingerprint_checked(fp: &str) -> Result<String, TrustError> {
    if fp.len() == 64 && fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(fp.to_ascii_lowercase())
    } else {
        Err(TrustError::BadFingerprint(fp.to_string()))
    }
}

fn window_id_checked(id: &str) -> Result<String, TrustError> {
    if crate::window::is_window_id(id) {
        Ok(id.to_string())
    } else {
        Err(TrustError::BadWindowId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: &str = "0123456789abcdef";
    const J_FP: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const I_FP: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const RELAY_TO_J: &str = "3333333333333333333333333333333333333333333333333333333333333333";
    const RELAY_TO_I: &str = "4444444444444444444444444444444444444444444444444444444444444444";

    fn pass(text: &str) -> Passphrase {
        Passphrase::entered(text).unwrap()
    }

    fn joiner_view(initiator_fp_seen: &str) -> View {
        View::new(WINDOW, "node2", "node1", J_FP, initiator_fp_seen).unwrap()
    }

    fn own() -> Own {
        Own::new(WINDOW, "node1", I_FP).unwrap()
    }

    /// One whole exchange: each side's outcome.
    fn exchange(
        joiner_pass: &str,
        initiator_pass: &str,
        initiator_fp_seen_by_joiner: &str,
        joiner_fp_seen_by_initiator: &str,
    ) -> (Result<Trusted, TrustError>, Result<Trusted, TrustError>) {
        let (joiner, hello) =
            Joiner::start(&pass(joiner_pass), joiner_view(initiator_fp_seen_by_joiner));
        let (waiting, challenge) = respond(
            &pass(initiator_pass),
            &own(),
            joiner_fp_seen_by_initiator,
            &hello,
        )
        .unwrap();
        // The joiner's own confirmation is what it would send even when it could not check
        // the initiator's, so the initiator's check is exercised on its own.
        let keys = Joiner {
            view: joiner.view.clone(),
            spake: joiner.spake,
            pake_a: joiner.pake_a.clone(),
        }
        .keys(&challenge)
        .unwrap();
        let joiner_result = verify(
            &keys.initiator_to_joiner,
            &keys.transcript,
            &hex::decode(&challenge.confirm).unwrap(),
        )
        .map(|_| Trusted {
            peer_name: "node1".into(),
            peer_fingerprint: initiator_fp_seen_by_joiner.into(),
        });
        let confirm = Confirm {
            confirm: hex::encode(mac(&keys.joiner_to_initiator, &keys.transcript)),
        };
        (joiner_result, waiting.finish(&confirm))
    }

    #[test]
    fn the_same_passphrase_makes_both_sides_trust_each_other() {
        let (joiner, hello) = Joiner::start(&pass("acid acorn acre acts"), joiner_view(I_FP));
        let (waiting, challenge) =
            respond(&pass("acid  acorn acre acts\n"), &own(), J_FP, &hello).unwrap();
        assert_eq!(waiting.joiner_name(), "node2");
        let (confirm, initiator) = joiner.finish(&challenge).unwrap();
        assert_eq!(
            initiator,
            Trusted {
                peer_name: "node1".into(),
                peer_fingerprint: I_FP.into()
            }
        );
        let joiner = waiting.finish(&confirm).unwrap();
        assert_eq!(
            joiner,
            Trusted {
                peer_name: "node2".into(),
                peer_fingerprint: J_FP.into()
            }
        );
        // The messages travel as JSON.
        let again: Hello = serde_json::from_str(&serde_json::to_string(&hello).unwrap()).unwrap();
        assert_eq!(again, hello);
    }

    #[test]
    fn a_wrong_passphrase_fails_on_both_sides_with_no_key_agreed() {
        let (joiner, hello) = Joiner::start(&pass("acid acorn acre acts"), joiner_view(I_FP));
        let (waiting, challenge) =
            respond(&pass("acid acorn acre zoom"), &own(), J_FP, &hello).unwrap();
        let joiner_keys = Joiner {
            view: joiner.view.clone(),
            spake: joiner.spake,
            pake_a: joiner.pake_a.clone(),
        }
        .keys(&challenge)
        .unwrap();
        assert_ne!(
            *joiner_keys.joiner_to_initiator, *waiting.keys.joiner_to_initiator,
            "no key is agreed"
        );
        assert_eq!(
            exchange("acid acorn acre acts", "acid acorn acre zoom", I_FP, J_FP),
            (Err(TrustError::Confirmation), Err(TrustError::Confirmation))
        );
    }

    #[test]
    fn a_relay_showing_each_side_another_certificate_fails_confirmation() {
        // The relay terminates TLS on each leg: the joiner sees the relay's certificate
        // instead of the initiator's, the initiator the relay's client certificate instead of
        // the joiner's. It passes every message on unchanged, knowing no passphrase.
        assert_eq!(
            exchange(
                "acid acorn acre acts",
                "acid acorn acre acts",
                RELAY_TO_J,
                RELAY_TO_I
            ),
            (Err(TrustError::Confirmation), Err(TrustError::Confirmation))
        );
        // One leg changed is enough.
        assert_eq!(
            exchange(
                "acid acorn acre acts",
                "acid acorn acre acts",
                I_FP,
                RELAY_TO_I
            ),
            (Err(TrustError::Confirmation), Err(TrustError::Confirmation))
        );
        assert_eq!(
            exchange(
                "acid acorn acre acts",
                "acid acorn acre acts",
                RELAY_TO_J,
                J_FP
            ),
            (Err(TrustError::Confirmation), Err(TrustError::Confirmation))
        );
        // And the same fingerprints succeed, so the failures above are the relay's.
        let (j, i) = exchange("acid acorn acre acts", "acid acorn acre acts", I_FP, J_FP);
        assert!(j.is_ok() && i.is_ok());
    }

    fn flip(hex_text: &str, at: usize) -> String {
        let mut bytes = hex::decode(hex_text).unwrap();
        bytes[at] ^= 0x01;
        hex::encode(bytes)
    }

    /// Where a third party changes the exchange.
    enum Tamper {
        Hello(fn(&mut Hello)),
        Challenge(fn(&mut Challenge)),
        Confirm(fn(&mut Confirm)),
    }

    #[test]
    fn tampered_messages_fail() {
        let p = "acid acorn acre acts";
        let cases: Vec<(&str, Tamper)> = vec![
            ("joiner pake", Tamper::Hello(|h| h.pake = flip(&h.pake, 5))),
            (
                "joiner pake from another run",
                Tamper::Hello(|h| {
                    h.pake = Joiner::start(&pass("acid acorn acre acts"), joiner_view(I_FP))
                        .1
                        .pake
                }),
            ),
            (
                "joiner name",
                Tamper::Hello(|h| h.joiner_name = "node3".into()),
            ),
            (
                "initiator pake",
                Tamper::Challenge(|c| c.pake = flip(&c.pake, 5)),
            ),
            (
                "initiator pake from another run",
                Tamper::Challenge(|c| {
                    let (_, hello) =
                        Joiner::start(&pass("acid acorn acre acts"), joiner_view(I_FP));
                    c.pake = respond(&pass("acid acorn acre acts"), &own(), J_FP, &hello)
                        .unwrap()
                        .1
                        .pake
                }),
            ),
            (
                "initiator confirmation",
                Tamper::Challenge(|c| c.confirm = flip(&c.confirm, 0)),
            ),
            (
                "joiner confirmation",
                Tamper::Confirm(|f| f.confirm = flip(&f.confirm, 31)),
            ),
            (
                "truncated confirmation",
                Tamper::Confirm(|f| f.confirm.truncate(62)),
            ),
        ];
        let refused = |r: &Result<Trusted, TrustError>| {
            matches!(
                r,
                Err(TrustError::Confirmation | TrustError::Malformed { .. })
            )
        };
        for (what, tamper) in cases {
            let (joiner, mut hello) = Joiner::start(&pass(p), joiner_view(I_FP));
            if let Tamper::Hello(f) = &tamper {
                f(&mut hello);
            }
            let (waiting, mut challenge) = match respond(&pass(p), &own(), J_FP, &hello) {
                Ok(answer) => answer,
                // A changed PAKE message may not even be a point of the curve.
                Err(e) => {
                    assert!(refused(&Err(e.clone())), "{what}: {e:?}");
                    continue;
                }
            };
            if let Tamper::Challenge(f) = &tamper {
                f(&mut challenge);
            }
            match joiner.finish(&challenge) {
                Ok((mut confirm, _)) => {
                    let Tamper::Confirm(f) = &tamper else {
                        panic!("{what}: the joiner trusted a changed exchange");
                    };
                    f(&mut confirm);
                    let done = waiting.finish(&confirm);
                    assert!(
                        refused(&done),
                        "{what}: the initiator accepted it: {done:?}"
                    );
                }
                // The joiner stops here and sends nothing the initiator could accept.
                Err(e) => assert!(refused(&Err(e.clone())), "{what}: {e:?}"),
            }
        }
    }

    #[test]
    fn hellos_for_another_window_or_initiator_are_refused_before_any_pake() {
        let (_, hello) = Joiner::start(
            &pass("x"),
            View::new("fedcba9876543210", "node2", "node1", J_FP, I_FP).unwrap(),
        );
        assert!(matches!(
            respond(&pass("x"), &own(), J_FP, &hello),
            Err(TrustError::WrongWindow { .. })
        ));
        let (_, hello) = Joiner::start(
            &pass("x"),
            View::new(WINDOW, "node2", "node9", J_FP, I_FP).unwrap(),
        );
        assert!(matches!(
            respond(&pass("x"), &own(), J_FP, &hello),
            Err(TrustError::WrongInitiator { .. })
        ));
        let (_, mut hello) = Joiner::start(&pass("x"), joiner_view(I_FP));
        hello.joiner_name = "../x".into();
        assert!(matches!(
            respond(&pass("x"), &own(), J_FP, &hello),
            Err(TrustError::BadName(_))
        ));
        hello.joiner_name = "node2".into();
        hello.pake = "zz".into();
        assert!(matches!(
            respond(&pass("x"), &own(), J_FP, &hello),
            Err(TrustError::Malformed { field: "pake", .. })
        ));
        assert!(matches!(
            respond(&pass("x"), &own(), "abc", &hello),
            Err(TrustError::BadFingerprint(_))
        ));
    }

    #[test]
    fn the_word_list_is_the_eff_short_list() {
        let words = word_list();
        assert_eq!(words.len(), 1296);
        assert_eq!(words[0], "acid");
        assert_eq!(words[1295], "zoom");
        let unique: std::collections::BTreeSet<_> = words.iter().collect();
        assert_eq!(unique.len(), 1296, "no word twice");
        // Every dice roll from 1111 to 6666 appears once, in order.
        let rolls: Vec<&str> = EFF_SHORT_WORDLIST
            .lines()
            .map(|l| l.split_once('\t').unwrap().0)
            .collect();
        assert_eq!(rolls.first(), Some(&"1111"));
        assert_eq!(rolls.last(), Some(&"6666"));
        // Byte for byte the published file.
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(EFF_SHORT_WORDLIST.as_bytes())),
            "8f5ca830b8bffb6fe39c9736c024a00a6a6411adb3f83a9be8bfeeb6e067ae69"
        );
    }

    #[test]
    fn generated_passphrases_are_four_list_words() {
        let words = word_list();
        let a = Passphrase::generate();
        let b = Passphrase::generate();
        for p in [&a, &b] {
            let got: Vec<&str> = p.reveal().split(' ').collect();
            assert_eq!(got.len(), GENERATED_WORDS, "{got:?}");
            assert!(got.iter().all(|w| words.contains(w)), "{got:?}");
            assert!(Passphrase::from_preseed(p.reveal()).is_ok(), "long enough");
        }
        // 2^-41 odds of a false failure.
        assert_ne!(a.reveal(), b.reveal());
    }

    #[test]
    fn passphrase_rules() {
        let cases: &[(&str, Result<&str, TrustError>)] = &[
            ("correct horse battery\n", Ok("correct horse battery")),
            ("  twelve-chars  ", Ok("twelve-chars")),
            (
                "elevenchars",
                Err(TrustError::TooShort {
                    min: MIN_PRESEED_CHARS,
                    chars: 11,
                }),
            ),
            // Whitespace runs count once.
            (
                "a    b      c",
                Err(TrustError::TooShort {
                    min: MIN_PRESEED_CHARS,
                    chars: 5,
                }),
            ),
            ("\n \t", Err(TrustError::Empty)),
        ];
        for (text, want) in cases {
            let got = Passphrase::from_preseed(text);
            assert_eq!(
                got.as_ref().map(Passphrase::reveal).map_err(Clone::clone),
                want.clone(),
                "{text:?}"
            );
        }
        assert!(Passphrase::entered("short").is_ok(), "a joiner types any");
    }

    #[test]
    fn the_passphrase_is_wiped_and_never_printed() {
        fn wiped_on_drop<T: ZeroizeOnDrop>(_: &T) {}
        let mut p = Passphrase::entered("acid acorn acre acts").unwrap();
        wiped_on_drop(&p);
        assert_eq!(format!("{p:?}"), "Passphrase(hidden)");
        // What drop runs.
        p.zeroize();
        assert_eq!(p.reveal(), "");
    }
}
